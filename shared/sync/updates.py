"""R19: read/unread, starred, trash and deletion in Gmail reach every logged copy of the message.

History records of label changes carry the message's labelIds and its
threadId, and deletions its id and threadId: no `messages.get` per change.
Where the copies are is known without scanning: a logged Gmail message is in
`accounts/{a}/conversations/{c}/messages/` with `c` the conversation its thread
maps to in account `a` (`sync_threads`, which lists every account the thread
reached, R10/R14), and names this mailbox's Gmail id in `gmailIds` (R25: the
document is the account's one record of a Message-ID, which a label change does
not carry; mail without one is `gm_<gmailMessageId>`). So one `get_all` of the
thread maps, then side by side one `get_all` of the `gm_` candidates and one
query per mapped conversation find every copy; messages whose thread was never
logged (most label changes) cost nothing more. Several reps' mailboxes hold one
document: the latest change in any of them is what it shows.

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
from shared.core.roundtrips import ContextPool
from shared.crm import paths
from shared.crm.paths import message_ref
from shared.crm.threads import get_threads
from shared.gmail.fetch import LabelChange
from shared.sync.flags import DELETED, MessageFlags, changed_fields, flags_from_labels

MAX_BATCH = 450
MAX_IN = 30  # Firestore's limit of values in one `in` filter


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
    legacy: list[_Copy] = []
    by_conversation: dict[tuple[str, str], list[LabelChange]] = {}
    for ch in last.values():
        tm = threads.get(ch.thread_id)
        for account_id, conversation_id in sorted((tm.conversations if tm else {}).items()):
            ref = message_ref(account_id, conversation_id, paths.gmail_message_doc_id(ch.gmail_id))
            legacy.append(_Copy(ref, account_id, conversation_id, ch))
            by_conversation.setdefault((account_id, conversation_id), []).append(ch)
    if not legacy:
        return 0
    db = firestore_client()
    found: dict[str, tuple[_Copy, Any]] = {}
    with ContextPool(max_workers=min(8, 1 + len(by_conversation))) as pool:
        queries = [pool.submit(_named_here, mailbox_id, acct, conv, chs[i:i + MAX_IN])
                   for (acct, conv), chs in by_conversation.items() for i in range(0, len(chs), MAX_IN)]
        by_path = {c.ref.path: c for c in legacy}
        for snap in db.get_all([c.ref for c in legacy]):
            if snap.exists:
                found[snap.reference.path] = (by_path[snap.reference.path], snap)
        for q in queries:
            for copy, snap in q.result():
                found[snap.reference.path] = (copy, snap)
    writes: list[tuple[_Copy, dict[str, Any], dict[str, Any]]] = []
    for copy, snap in found.values():
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


def _named_here(mailbox_id: str, account_id: str, conversation_id: str,
                changes: list[LabelChange]) -> list[tuple[_Copy, Any]]:
    """The documents of one conversation that name these Gmail ids as this mailbox's copy (R25 `gmailIds`)."""
    from google.cloud.firestore_v1.base_query import FieldFilter  # lazy: Firestore library (cold start)
    from google.cloud.firestore_v1.field_path import FieldPath  # lazy: Firestore library (cold start)

    by_id = {ch.gmail_id: ch for ch in changes}
    field = FieldPath("gmailIds", mailbox_id).to_api_repr()
    coll = paths.conversation_ref(account_id, conversation_id).collection(paths.MESSAGES)
    out: list[tuple[_Copy, Any]] = []
    for snap in coll.where(filter=FieldFilter(field, "in", sorted(by_id))).stream():
        gid = ((snap.to_dict() or {}).get("gmailIds") or {}).get(mailbox_id)
        if gid in by_id:
            out.append((_Copy(snap.reference, account_id, conversation_id, by_id[gid]), snap))
    return out


def _event(copy: _Copy, doc: dict[str, Any]) -> CrmEvent:
    return CrmEvent(type="message.updated", accountId=copy.account_id, userId=doc.get("userId"),
                    contactId=doc.get("contactId"), conversationId=copy.conversation_id,
                    messageId=copy.ref.id, direction=doc.get("direction"), source=doc.get("source"),
                    gmailMessageId=copy.change.gmail_id, gmailThreadId=copy.change.thread_id,
                    read=doc.get("read"), starred=doc.get("starred"), trashed=doc.get("trashed"),
                    deletedInGmail=doc.get("deletedInGmail"))
