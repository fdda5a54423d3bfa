"""Writes to CRM conversations and their messages, safe under retries and races.

A message document is created only if absent (its id is deterministic: the
account's one record of a Message-ID, `rfc_…`, R25; `gm_<gmailMessageId>` or
`ab_<hash>` for mail without one), so a redelivered notification, a
crashed-and-retried function, the Gmail notification of a CRM send (R9) or a
second rep's copy of the same mail cannot log a message twice; a copy that finds
it joins it (`join_document`). The conversation's `lastMessageAt` only moves
forward, in a transaction, so two writers never undo each other.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.core.clients import firestore_client
from shared.core.models import Message
from shared.core.roundtrips import ContextPool  # threads metered with their caller
from shared.core.times import aware as _aware
from shared.crm import visibility
from shared.crm.paths import conversation_ref, message_ref

SNIPPET_MAX = 200
TOUCH_ROUNDS = 5
TOUCH_WORKERS = 8
TOUCH_ATTEMPTS = 30


def store_message(account_id: str, conversation_id: str, message_id: str, msg: Message) -> bool:
    """Create the message document if absent; True when this call created it."""
    return store_document(account_id, conversation_id, message_id, msg.to_doc())


def store_document(account_id: str, conversation_id: str, message_id: str, doc: dict[str, Any]) -> bool:
    """`store_message` for a document already built (and fitted, R22); True when this call created it."""
    from google.api_core.exceptions import AlreadyExists  # lazy: Firestore library (cold start)

    doc = dict(doc)
    if doc.get("createdAt") is None:
        doc["createdAt"] = datetime.now(UTC)
    try:
        message_ref(account_id, conversation_id, message_id).create(doc)
    except AlreadyExists:
        return False
    return True


JOIN_ATTEMPTS = 10


@dataclass(frozen=True)
class Joined:
    """What `join_document` found: the stored document (as it was read) and whether this call wrote."""

    stored: dict[str, Any]
    written: bool


def join_document(account_id: str, conversation_id: str, message_id: str, mailbox_id: str, gmail_id: str,
                  copy: dict[str, Any]) -> Joined | None:
    """R25: the message is already logged in this account (another rep's mailbox, a CRM send, an Auto BCC copy,
    or this mailbox's interrupted pass): add this mailbox to `mailboxIds` with its Gmail id, and, when `copy`
    (the document as this mailbox's rep would store it) is more open, its content (R31). None: no document.

    Guarded by the update time it read, so two mailboxes joining at once both end up listed and the most open
    content wins whatever the order. A mailbox already listed writes nothing (a replayed pass)."""
    from google.api_core.exceptions import FailedPrecondition, NotFound  # lazy: Firestore library (cold start)
    from google.cloud.firestore_v1.field_path import FieldPath  # lazy: Firestore library (cold start)

    ref = message_ref(account_id, conversation_id, message_id)
    for attempt in range(JOIN_ATTEMPTS):
        snap = ref.get()
        if not snap.exists:
            return None
        stored = snap.to_dict() or {}
        listed = list(stored.get("mailboxIds") or ([stored["mailboxId"]] if stored.get("mailboxId") else []))
        fields: dict[str, Any] = {}
        if mailbox_id not in listed:
            fields["mailboxIds"] = [*listed, mailbox_id]
            fields[FieldPath("gmailIds", mailbox_id).to_api_repr()] = gmail_id
            if not stored.get("mailboxId"):
                fields["mailboxId"] = mailbox_id
            more = visibility.upgrade(stored, copy)
            if more.get("attachments"):  # their ids are this mailbox's (R20 fetches them here)
                more["attachments"] = [{**a, "mailboxId": mailbox_id} for a in more["attachments"]]
            fields.update(more)
        if not fields:
            return Joined(stored, False)
        try:
            ref.update(fields, option=firestore_client().write_option(last_update_time=snap.update_time))
        except (FailedPrecondition, NotFound):
            time.sleep(random.uniform(0, min(0.02 * 2 ** attempt, 0.5)))
            continue
        return Joined(stored, True)
    raise RuntimeError(f"message {message_id} kept changing; mailbox not joined")


def touch_conversation(account_id: str, conversation_id: str, contact_id: str, at: datetime,
                       snippet: str, direction: str, snapshot: Any = None) -> Any:
    """Create the conversation if needed and move lastMessageAt (and its snippet) forward only.

    `snapshot`: the conversation as the caller already read it (the send path reads it in its first
    batch), used for the first attempt instead of a read. Returns the update time of this call's
    write, or None when the stored lastMessageAt was already as new (nothing written).

    Optimistic concurrency instead of a transaction: read, then write guarded by
    the document's update time (or create-if-absent); a concurrent writer makes
    the guard fail at once and we read again. A transaction would serialise
    concurrent writers of this hot document (many sends to one contact, a sync
    pass at the same time), and the emulator makes each conflicting one wait
    about 2 s, after 5 attempts failing the whole call.
    """
    from google.api_core.exceptions import (  # lazy: Firestore library (cold start)
        AlreadyExists,
        FailedPrecondition,
        NotFound,
    )

    ref = conversation_ref(account_id, conversation_id)
    for attempt in range(TOUCH_ATTEMPTS):
        if attempt == 0 and snapshot is not None:
            snap = snapshot
        else:
            snap = ref.get()
        change = summary_change(snap, contact_id, at, snippet, direction)
        if change is None:
            return None
        create, fields = change
        try:
            if create:
                result = ref.create(fields)
            else:
                result = ref.update(fields, option=firestore_client().write_option(last_update_time=snap.update_time))
            return result.update_time
        except (AlreadyExists, FailedPrecondition, NotFound):
            time.sleep(random.uniform(0, min(0.02 * 2 ** attempt, 0.5)))
    raise RuntimeError(f"conversation {conversation_id} kept changing; lastMessageAt not updated")


def summary_change(snap: Any, contact_id: str, at: datetime, snippet: str,
                   direction: str) -> tuple[bool, dict[str, Any]] | None:
    """What to write to a conversation (as `snap` shows it) for a message at `at`: (create?, fields), or
    None when its lastMessageAt is already as new. An update must be guarded by `snap.update_time`."""
    at = _aware(at) or datetime.now(UTC)
    update: dict[str, Any] = {
        "lastMessageAt": at,
        "lastMessageSnippet": (snippet or "")[:SNIPPET_MAX],
        "lastMessageDirection": direction,
    }
    if snap is None or not snap.exists:
        return True, {**update, "contactId": contact_id, "channel": "email", "createdAt": datetime.now(UTC)}
    data = snap.to_dict() or {}
    last = _aware(data.get("lastMessageAt"))
    if last is not None and last >= at:
        return None
    if not data.get("contactId"):
        update["contactId"] = contact_id
    return False, update


@dataclass(frozen=True)
class Touch:
    account_id: str
    conversation_id: str
    contact_id: str
    at: datetime
    snippet: str
    direction: str


def touch_conversations(touches: list[Touch]) -> int:
    """`touch_conversation` for many conversations: one read of them all, then one conditional
    write per conversation that needs it, in parallel; returns the documents written.

    Optimistic instead of a transaction: a write carries the update time it
    read (or is a create), so a concurrent writer makes it fail and only that
    conversation is read and decided again. Transactions here would lock
    every conversation of a chunk at once and make several mailboxes of one
    account queue behind each other.
    """
    from google.api_core.exceptions import (  # lazy: Firestore library (cold start)
        AlreadyExists,
        Conflict,
        FailedPrecondition,
    )

    db = firestore_client()
    pending = {(t.account_id, t.conversation_id): t for t in touches}
    written = 0
    for _ in range(TOUCH_ROUNDS):
        if not pending:
            return written
        refs = {k: conversation_ref(*k) for k in pending}
        snaps = {s.reference.path: s for s in db.get_all(list(refs.values()))}
        jobs: list[tuple[tuple[str, str], Any, dict[str, Any], Any]] = []
        for key, t in pending.items():
            ref = refs[key]
            snap = snaps.get(ref.path)
            exists = snap is not None and snap.exists
            data = (snap.to_dict() or {}) if exists and snap is not None else {}
            last = _aware(data.get("lastMessageAt"))
            at = _aware(t.at) or datetime.now(UTC)
            if exists and last is not None and last >= at:
                continue
            update: dict[str, Any] = {"lastMessageAt": at, "lastMessageSnippet": (t.snippet or "")[:SNIPPET_MAX],
                                      "lastMessageDirection": t.direction}
            if not exists:
                update.update({"contactId": t.contact_id, "channel": "email", "createdAt": datetime.now(UTC)})
            elif not data.get("contactId"):
                update["contactId"] = t.contact_id
            jobs.append((key, ref, update, snap.update_time if exists and snap is not None else None))

        def write(job: tuple[tuple[str, str], Any, dict[str, Any], Any]) -> tuple[str, str] | None:
            key, ref, update, update_time = job
            try:
                if update_time is None:
                    ref.create(update)
                else:
                    ref.update(update, option=db.write_option(last_update_time=update_time))
            except (AlreadyExists, Conflict, FailedPrecondition):
                return key  # someone wrote it meanwhile: read and decide again
            return None

        if len(jobs) <= 1:
            results = [write(j) for j in jobs]
        else:
            with ContextPool(max_workers=min(TOUCH_WORKERS, len(jobs))) as pool:
                results = list(pool.map(write, jobs))
        retry = {k for k in results if k is not None}
        written += len(jobs) - len(retry)
        pending = {k: t for k, t in pending.items() if k in retry}
    if pending:  # pathological contention: the transactional path always finishes
        for t in pending.values():
            touch_conversation(t.account_id, t.conversation_id, t.contact_id, t.at, t.snippet, t.direction)
            written += 1
    return written
