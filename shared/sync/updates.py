"""R19: read/unread, starred, trash and deletion in Gmail reach every logged copy of the message.

History records of label changes carry the message's labelIds and its
threadId, and deletions its id and threadId: no `messages.get` per change.
Where the copies are is known without scanning: a logged Gmail message is
always `accounts/{a}/conversations/{c}/messages/gm_<gmailMessageId>` with
`c` the conversation its thread maps to in account `a` (`sync_threads`, which
lists every account the thread reached, R10/R14). So one `get_all` of the
thread maps and one of the candidate documents find every copy; messages that
were never logged (most label changes) cost nothing more.

A change is written only when it differs from what the document says (a
replayed pass writes nothing and announces nothing), and is announced as a
`message.updated` event after the write. Deletion is final: the document stays,
marked `deletedInGmail`, and later records cannot undo it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from shared.core import log
from shared.core.clients import firestore_client
from shared.core.events import CrmEvent, publish
from shared.crm import paths
from shared.crm.paths import message_ref
from shared.crm.threads import get_threads
from shared.gmail.fetch import LabelChange
from shared.sync.flags import DELETED, MessageFlags, changed_fields, flags_from_labels

MAX_BATCH = 450


@dataclass(frozen=True)
class _Copy:
    ref: Any
    account_id: str
    conversation_id: str
    change: LabelChange


def latest(changes: Iterable[LabelChange]) -> dict[str, LabelChange]:
    """The last change per message, in history order (a deletion stays the last word)."""
    out: dict[str, LabelChange] = {}
    for ch in changes:
        prev = out.get(ch.gmail_id)
        if prev is not None and prev.deleted:
            continue
        out[ch.gmail_id] = ch
    return out


def target_flags(change: LabelChange) -> MessageFlags:
    return DELETED if change.deleted else flags_from_labels(change.label_ids)


def apply_changes(mailbox_id: str, changes: Iterable[LabelChange]) -> int:
    """Write the changes to every logged copy and announce them; returns the documents written."""
    last = latest(changes)
    if not last:
        return 0
    threads = get_threads(mailbox_id, sorted({ch.thread_id for ch in last.values()}))
    copies: list[_Copy] = []
    for ch in last.values():
        tm = threads.get(ch.thread_id)
        for account_id, conversation_id in sorted((tm.conversations if tm else {}).items()):
            ref = message_ref(account_id, conversation_id, paths.gmail_message_doc_id(ch.gmail_id))
            copies.append(_Copy(ref, account_id, conversation_id, ch))
    if not copies:
        return 0
    db = firestore_client()
    by_path = {c.ref.path: c for c in copies}
    writes: list[tuple[_Copy, dict[str, Any], dict[str, Any]]] = []
    for snap in db.get_all([c.ref for c in copies]):
        if not snap.exists:
            continue
        copy = by_path[snap.reference.path]
        stored = snap.to_dict() or {}
        fields = changed_fields(stored, target_flags(copy.change))
        if fields:
            writes.append((copy, fields, stored))
    for start in range(0, len(writes), MAX_BATCH):
        batch = db.batch()
        for copy, fields, _ in writes[start:start + MAX_BATCH]:
            batch.update(copy.ref, fields)
        batch.commit()
    if writes:
        publish(_event(copy, {**stored, **fields}) for copy, fields, stored in writes)
        log.info("gmail changes applied", mailboxId=mailbox_id, messages=len(last), written=len(writes))
    return len(writes)


def _event(copy: _Copy, doc: dict[str, Any]) -> CrmEvent:
    return CrmEvent(type="message.updated", accountId=copy.account_id, userId=doc.get("userId"),
                    contactId=doc.get("contactId"), conversationId=copy.conversation_id,
                    messageId=copy.ref.id, direction=doc.get("direction"), source=doc.get("source"),
                    gmailMessageId=copy.change.gmail_id, gmailThreadId=copy.change.thread_id,
                    read=doc.get("read"), starred=doc.get("starred"), trashed=doc.get("trashed"),
                    deletedInGmail=doc.get("deletedInGmail"))
