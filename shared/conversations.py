"""Writes to CRM conversations and their messages, safe under retries and races.

A message document is created only if absent (its id is deterministic:
`gm_<gmailMessageId>` or `ab_<hash>`), so a redelivered notification, a
crashed-and-retried function, or the Gmail notification of a CRM send (R9)
cannot log a message twice. The conversation's `lastMessageAt` only moves
forward, in a transaction, so two writers never undo each other.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shared import paths
from shared.clients import firestore_client
from shared.models import Message

SNIPPET_MAX = 200
TOUCH_ATTEMPTS = 30


def message_ref(account_id: str, conversation_id: str, message_id: str) -> Any:
    return firestore_client().document(paths.message_path(account_id, conversation_id, message_id))


def conversation_ref(account_id: str, conversation_id: str) -> Any:
    return firestore_client().document(paths.conversation_path(account_id, conversation_id))


def store_message(account_id: str, conversation_id: str, message_id: str, msg: Message) -> bool:
    """Create the message document if absent; True when this call created it."""
    from google.api_core.exceptions import AlreadyExists

    doc = msg.to_doc()
    if doc.get("createdAt") is None:
        doc["createdAt"] = datetime.now(UTC)
    try:
        message_ref(account_id, conversation_id, message_id).create(doc)
    except AlreadyExists:
        return False
    return True


def _aware(t: Any) -> datetime | None:
    if not isinstance(t, datetime):
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def touch_conversation(account_id: str, conversation_id: str, contact_id: str, at: datetime,
                       snippet: str, direction: str) -> None:
    """Create the conversation if needed and move lastMessageAt (and its snippet) forward only.

    Optimistic concurrency instead of a transaction: read, then write guarded by
    the document's update time (or create-if-absent); a concurrent writer makes
    the guard fail at once and we read again. A transaction would serialise
    concurrent writers of this hot document (many sends to one contact, a sync
    pass at the same time), and the emulator makes each conflicting one wait
    about 2 s, after 5 attempts failing the whole call.
    """
    import random
    import time

    from google.api_core.exceptions import AlreadyExists, FailedPrecondition, NotFound

    ref = conversation_ref(account_id, conversation_id)
    at = _aware(at) or datetime.now(UTC)
    update: dict[str, Any] = {
        "lastMessageAt": at,
        "lastMessageSnippet": (snippet or "")[:SNIPPET_MAX],
        "lastMessageDirection": direction,
    }
    for attempt in range(TOUCH_ATTEMPTS):
        snap = ref.get()
        data = (snap.to_dict() or {}) if snap.exists else {}
        last = _aware(data.get("lastMessageAt"))
        if snap.exists and last is not None and last >= at:
            return
        try:
            if not snap.exists:
                ref.create({**update, "contactId": contact_id, "channel": "email", "createdAt": datetime.now(UTC)})
            else:
                fields = dict(update)
                if not data.get("contactId"):
                    fields["contactId"] = contact_id
                ref.update(fields, option=firestore_client().write_option(last_update_time=snap.update_time))
            return
        except (AlreadyExists, FailedPrecondition, NotFound):
            time.sleep(random.uniform(0, min(0.02 * 2 ** attempt, 0.5)))
    raise RuntimeError(f"conversation {conversation_id} kept changing; lastMessageAt not updated")
