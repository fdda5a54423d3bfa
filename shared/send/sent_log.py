"""After Gmail accepted the message: log it once (R9), claim its thread (R10, R14), keep the answer (R18).

One commit writes the thread map, the message (named by the Message-ID it
generated, R25, so gmail_push's later notification of the same message finds
it, and a colleague's copy of it joins it), the
idempotency record's result, the mark that spares the sync a messages.get of
it (shared/crm/crm_sent.py; not for a send with attachments, R20) and the
conversation summary. The summary's
`lastMessageAt` only moves forward, so its write is guarded by the update
time it was read at; many sends to one contact contend for it. Sends of one
instance to one conversation therefore take turns (a lock per conversation)
and each guards its write with the update time the previous one wrote
(`_written`, validated by that guard), so they never conflict with each
other. When the commit meets a change it did not expect (another instance or
the sync wrote the summary or the thread map), nothing of it was written:
those documents are read again and the commit decided again. When the
message itself is already there (the sync logged it first), the writes go
one at a time through the shared, race-safe helpers.

The message must fit in a Firestore document (1 MiB): text and html are cut
at a UTF-8 character boundary to fit, `truncated: true` (R23); the whole
message stays in Gmail.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.core import log
from shared.core.budget import fit_strings
from shared.core.clients import firestore_client
from shared.core.models import Message, ThreadMap
from shared.core.text import make_snippet
from shared.crm import crm_sent, paths
from shared.crm.conversations import store_message, summary_change, touch_conversation
from shared.crm.paths import conversation_ref, idempotency_ref, message_ref, thread_ref
from shared.crm.threads import map_conversation
from shared.send import idempotency
from shared.send.context import SendContext, read_batch
from shared.storage.logged import keep_sent

COMMIT_ATTEMPTS = 5

@dataclass(frozen=True)
class Sent:
    """What Gmail answered for our message."""

    rfc822_id: str
    gmail_id: str
    thread_id: str


def result_of(sent: Sent, conversation_id: str) -> dict[str, Any]:
    return {"messageId": paths.message_doc_id(sent.rfc822_id, sent.gmail_id), "gmailMessageId": sent.gmail_id,
            "gmailThreadId": sent.thread_id, "conversationId": conversation_id}


def message_doc(ctx: SendContext, sent: Sent, conversation_id: str, now: datetime) -> dict[str, Any]:
    """The message document as it will be stored: bodies cut to fit Firestore's limit (R23)."""
    req = ctx.req
    parent = ctx.parent
    msg = Message(
        direction="outbound", source="crm", contactId=req.contact_id, userId=req.user_id, from_=ctx.address,
        to=[ctx.to_address], cc=list(req.cc), bcc=list(req.bcc), subject=ctx.subject, text=req.text, html=req.html,
        snippet=make_snippet(None, req.text, req.html), sentAt=now, gmailMessageId=sent.gmail_id,
        gmailThreadId=sent.thread_id, rfc822MessageId=sent.rfc822_id, mailboxId=ctx.mailbox_id,
        mailboxIds=[ctx.mailbox_id], gmailIds={ctx.mailbox_id: sent.gmail_id},
        inReplyTo=parent.in_reply_to if parent else None, references=list(parent.references) if parent else [],
        attachments=[{"filename": a.filename, "mimeType": a.mime_type or "application/octet-stream",
                      "size": len(a.content)} for a in req.attachments],
        createdAt=now)
    path = paths.message_path(req.account_id, conversation_id, paths.message_doc_id(sent.rfc822_id, sent.gmail_id))
    doc, truncated = fit_strings(path, msg.to_doc(), ("text", "html"))
    doc["truncated"] = truncated
    keep_sent(doc, req.account_id, conversation_id, paths.gmail_message_doc_id(sent.gmail_id), req.text, req.html,
              [a.content for a in req.attachments])  # R32: the whole message in storage, references on doc
    return doc


def thread_change(ctx: SendContext, thread_id: str, snap: Any) -> tuple[str, dict[str, Any] | None, bool]:
    """(conversation, fields to write or None, whether the map exists) for the thread, from `snap`
    (the map as read, or None when not read: a new send starts a thread Gmail just created)."""
    account = ctx.req.account_id
    if snap is None or not snap.exists:
        fresh = ThreadMap(mailboxId=ctx.mailbox_id, gmailThreadId=thread_id, ownerAccountId=account,
                          conversations={account: ctx.conversation_id})
        return ctx.conversation_id, fresh.to_doc(), False
    tm = ThreadMap.from_doc(snap.to_dict())
    conversation_id = tm.conversations.get(account, ctx.conversation_id)
    if account in tm.conversations and tm.ownerAccountId is not None:
        return conversation_id, None, True
    return conversation_id, {"conversations": {**tm.conversations, account: conversation_id},
                             "ownerAccountId": tm.ownerAccountId or account}, True


def log_sent(ctx: SendContext, claim: idempotency.Claim, sent: Sent, thread_snap: Any = None,
             announce: Callable[[dict[str, Any]], None] = lambda result: None) -> dict[str, Any]:
    """Write the message, the thread map, the result and the summary; returns the result (the answer).

    `announce(result)` runs as soon as the message is durable (the CRM event).
    """
    from google.api_core.exceptions import (  # lazy: Firestore library (cold start)
        AlreadyExists,
        FailedPrecondition,
        NotFound,
    )

    req = ctx.req
    now = datetime.now(UTC)
    if thread_snap is not None and thread_snap.id != paths.thread_doc_id(ctx.mailbox_id, sent.thread_id):
        thread_snap = None  # Gmail put the reply in a new thread (the parent's was not in this mailbox)
    conversation_id, _, _ = thread_change(ctx, sent.thread_id, thread_snap)
    doc = message_doc(ctx, sent, conversation_id, now)
    summary = ctx.conversation if conversation_id == ctx.conversation_id else None

    first_choice = conversation_id
    result: dict[str, Any] | None = None
    with _turn(req.account_id, conversation_id) as remembered:
        summary = remembered.freshest(summary)
        for _ in range(COMMIT_ATTEMPTS):
            plan = _plan(ctx, claim, sent, doc, thread_snap, summary, now)
            if plan.conversation_id != first_choice:
                break  # the thread was mapped elsewhere meanwhile: let the shared helpers sort it out
            try:
                written = plan.batch.commit()
            except (AlreadyExists, FailedPrecondition, NotFound):
                # Something changed meanwhile: read what this commit depends on and decide again.
                again = read_batch(plan.refs)
                if again["message"].exists:
                    break  # the sync logged the message first
                thread_snap, summary = again["thread"], again["conversation"]
                continue
            if plan.writes_summary:
                remembered.wrote(written[-1].update_time, now, req.contact_id)
            result = plan.result
            break
    if result is None:
        result = _one_at_a_time(ctx, claim, sent, doc, now)
    announce(result)
    return result


@dataclass
class _Plan:
    conversation_id: str
    result: dict[str, Any]
    batch: Any
    refs: dict[str, Any]  # thread, conversation, message: what the commit depends on
    writes_summary: bool  # the summary is the batch's last write


def _plan(ctx: SendContext, claim: idempotency.Claim, sent: Sent, doc: dict[str, Any], thread_snap: Any,
          summary: Any, now: datetime) -> _Plan:
    """The log commit as the documents were read: create or guarded update for each."""
    req = ctx.req
    conversation_id, thread_fields, thread_exists = thread_change(ctx, sent.thread_id, thread_snap)
    result = result_of(sent, conversation_id)
    refs = {"thread": thread_ref(ctx.mailbox_id, sent.thread_id),
            "conversation": conversation_ref(req.account_id, conversation_id),
            "message": message_ref(req.account_id, conversation_id, result["messageId"])}
    batch = firestore_client().batch()
    if thread_fields is not None and not thread_exists:
        batch.create(refs["thread"], thread_fields)
    elif thread_fields is not None:
        batch.update(refs["thread"], thread_fields, option=_guard(thread_snap))
    batch.create(refs["message"], doc)
    batch.update(idempotency_ref(claim.record_id), idempotency.done_fields(result))
    if not req.attachments:  # the sync need not fetch it (R9); with attachments it must learn their ids (R20)
        batch.set(crm_sent.mark_ref(ctx.mailbox_id, sent.gmail_id), crm_sent.mark_fields(req.account_id, now))
    change = summary_change(summary, req.contact_id, now, doc["snippet"], "outbound")
    if change is not None and change[0]:
        batch.create(refs["conversation"], change[1])
    elif change is not None:
        batch.update(refs["conversation"], change[1], option=_guard(summary))
    return _Plan(conversation_id, result, batch, refs, change is not None)


def _guard(snap: Any) -> Any:
    """Write only if the document is still as `snap` saw it."""
    return firestore_client().write_option(last_update_time=snap.update_time)


def _one_at_a_time(ctx: SendContext, claim: idempotency.Claim, sent: Sent, doc: dict[str, Any],
                   now: datetime) -> dict[str, Any]:
    """The same writes through the race-safe helpers (the commit met a document written meanwhile)."""
    req = ctx.req
    tm = claim_thread(ctx, sent.thread_id)
    conversation_id = tm.conversations.get(req.account_id, ctx.conversation_id)
    result = result_of(sent, conversation_id)
    if conversation_id != ctx.conversation_id:
        doc = message_doc(ctx, sent, conversation_id, now)
    store_message(req.account_id, conversation_id, result["messageId"], Message.from_doc(doc))
    idempotency.complete(claim, result)
    _quietly(lambda: touch_conversation(req.account_id, conversation_id, req.contact_id, now, doc["snippet"],
                                        "outbound"), ctx, conversation_id)
    return result


def claim_thread(ctx: SendContext, gmail_thread_id: str) -> ThreadMap:
    """R10/R14: map the thread to the conversation and claim it for this account (create if absent,
    else the shared transaction when the map lacks this account or an owner)."""
    from google.api_core.exceptions import AlreadyExists  # lazy: Firestore library (cold start)

    account = ctx.req.account_id
    fresh = ThreadMap(mailboxId=ctx.mailbox_id, gmailThreadId=gmail_thread_id, ownerAccountId=account,
                      conversations={account: ctx.conversation_id})
    ref = thread_ref(ctx.mailbox_id, gmail_thread_id)
    try:
        ref.create(fresh.to_doc())
        return fresh
    except AlreadyExists:
        pass
    tm = ThreadMap.from_doc(ref.get().to_dict())
    if ctx.req.account_id in tm.conversations and tm.ownerAccountId is not None:
        return tm
    return map_conversation(ctx.mailbox_id, gmail_thread_id, account, ctx.conversation_id, claim=True)


def _quietly(fn: Any, ctx: SendContext, conversation_id: str) -> None:
    """The conversation summary is a summary: the message is logged either way, so the send succeeded."""
    try:
        fn()
    except Exception as exc:
        log.warning("conversation summary not updated", accountId=ctx.req.account_id,
                    conversationId=conversation_id, error=type(exc).__name__)


class _Written:
    """What this instance last wrote to a conversation, standing in for a snapshot of it."""

    exists = True

    def __init__(self, update_time: Any, last_message_at: datetime, contact_id: str) -> None:
        self.update_time = update_time
        self._data = {"lastMessageAt": last_message_at, "contactId": contact_id}

    def to_dict(self) -> dict[str, Any]:
        return dict(self._data)


class _Turn:
    """One conversation's turn: held while a send of this instance commits its summary."""

    __slots__ = ("__weakref__", "key", "lock")

    def __init__(self, key: tuple[str, str]) -> None:
        self.key = key
        self.lock = threading.Lock()

    def __enter__(self) -> _Turn:
        self.lock.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.lock.release()

    def freshest(self, snapshot: Any) -> Any:
        """The caller's snapshot, or what this instance wrote last if that is newer (or none was read)."""
        with _state_lock:
            known = _written.get(self.key)
        if known is not None and (snapshot is None or not snapshot.exists
                                  or known.update_time >= snapshot.update_time):
            return known
        return snapshot

    def wrote(self, update_time: Any, last_message_at: datetime, contact_id: str) -> None:
        with _state_lock:
            _written[self.key] = _Written(update_time, last_message_at, contact_id)
            _written.move_to_end(self.key)
            while len(_written) > MAX_REMEMBERED:
                _written.popitem(last=False)


MAX_REMEMBERED = 10_000
_written: OrderedDict[tuple[str, str], _Written] = OrderedDict()
_turns: weakref.WeakValueDictionary[tuple[str, str], _Turn] = weakref.WeakValueDictionary()
_state_lock = threading.Lock()


def _turn(account_id: str, conversation_id: str) -> _Turn:
    key = (account_id, conversation_id)
    with _state_lock:
        turn = _turns.get(key)
        if turn is None:
            turn = _turns[key] = _Turn(key)
    return turn
