"""After Gmail accepted the message: log it once (R9), claim its thread (R10, R14), keep the answer (R18).

One commit writes the thread map, the message (`gm_<gmailMessageId>`, so
gmail_push's later notification of the same message finds it) and the
idempotency record's result; the conversation summary is written beside it,
in parallel, with its own guard (its `lastMessageAt` only moves forward, and
many sends to one contact contend for it, so it retries alone instead of
making the message commit retry). Sends of one instance to one conversation
take turns on it (a lock per conversation) and each guards its write with
the update time the previous one wrote, so they do not conflict with each
other; a writer elsewhere (another instance, the sync) makes the guard fail
and that send reads the document again.

The message must fit in a Firestore document (1 MiB): text and html are cut
at a UTF-8 character boundary to fit, `truncated: true` (R23); the whole
message stays in Gmail.

When the commit meets a document it did not expect (the thread map or the
message written meanwhile, e.g. by the sync), nothing of it was written and
the same writes go one at a time through the shared, race-safe helpers.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.core import paths, roundtrips
from shared.core.budget import fit_strings
from shared.core.clients import firestore_client
from shared.core.models import Message, ThreadMap
from shared.core.text import make_snippet
from shared.send import idempotency
from shared.send.context import SendContext
from shared.sync.conversations import message_ref, store_message, touch_conversation
from shared.sync.threads import map_conversation, thread_ref


@dataclass(frozen=True)
class Sent:
    """What Gmail answered for our message."""

    rfc822_id: str
    gmail_id: str
    thread_id: str


def result_of(sent: Sent, conversation_id: str) -> dict[str, Any]:
    return {"messageId": paths.gmail_message_doc_id(sent.gmail_id), "gmailMessageId": sent.gmail_id,
            "gmailThreadId": sent.thread_id, "conversationId": conversation_id}


def message_doc(ctx: SendContext, sent: Sent, conversation_id: str, now: datetime) -> dict[str, Any]:
    """The message document as it will be stored: bodies cut to fit Firestore's limit (R23)."""
    req = ctx.req
    parent = ctx.parent
    msg = Message(
        direction="outbound", source="crm", contactId=req.contact_id, userId=req.user_id, from_=ctx.address,
        to=[ctx.to_address], cc=list(req.cc), bcc=list(req.bcc), subject=ctx.subject, text=req.text, html=req.html,
        snippet=make_snippet(None, req.text, req.html), sentAt=now, gmailMessageId=sent.gmail_id,
        gmailThreadId=sent.thread_id, rfc822MessageId=sent.rfc822_id,
        inReplyTo=parent.in_reply_to if parent else None, references=list(parent.references) if parent else [],
        attachments=[{"filename": a.filename, "mimeType": a.mime_type or "application/octet-stream",
                      "size": len(a.content)} for a in req.attachments],
        createdAt=now)
    path = paths.message_path(req.account_id, conversation_id, paths.gmail_message_doc_id(sent.gmail_id))
    doc, truncated = fit_strings(path, msg.to_doc(), ("text", "html"))
    doc["truncated"] = truncated
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
    """Write the message, the thread map and the result; returns the result (the answer to the CRM).

    `announce(result)` runs as soon as the message is durable: beside the summary's write if that is still
    going on (the CRM event announces the message, which is there; the summary follows within a round trip).
    """
    from google.api_core.exceptions import AlreadyExists, FailedPrecondition, NotFound

    req = ctx.req
    now = datetime.now(UTC)
    if thread_snap is not None and thread_snap.id != paths.thread_doc_id(ctx.mailbox_id, sent.thread_id):
        thread_snap = None  # Gmail put the reply in a new thread (the parent's was not in this mailbox)
    conversation_id, thread_fields, thread_exists = thread_change(ctx, sent.thread_id, thread_snap)
    result = result_of(sent, conversation_id)
    doc = message_doc(ctx, sent, conversation_id, now)
    snippet = doc["snippet"]

    batch = firestore_client().batch()
    tref = thread_ref(ctx.mailbox_id, sent.thread_id)
    if thread_fields is not None and not thread_exists:
        batch.create(tref, thread_fields)
    elif thread_fields is not None:
        guard = firestore_client().write_option(last_update_time=thread_snap.update_time)
        batch.update(tref, thread_fields, option=guard)
    batch.create(message_ref(req.account_id, conversation_id, result["messageId"]), doc)
    batch.update(idempotency.record_ref(claim.record_id), idempotency.done_fields(result))
    summary = ctx.conversation if conversation_id == ctx.conversation_id else None

    def commit() -> bool:
        try:
            roundtrips.note("thread map + message + result")
            batch.commit()
        except (AlreadyExists, FailedPrecondition, NotFound):
            return False
        announce(result)
        return True

    def touch() -> None:
        touch_summary(req.account_id, conversation_id, req.contact_id, now, snippet, summary)

    committed, _ = roundtrips.parallel(commit, lambda: _quietly(touch, ctx, conversation_id))
    if committed:
        return result
    result = _one_at_a_time(ctx, claim, sent, doc, now)
    announce(result)
    return result


def _one_at_a_time(ctx: SendContext, claim: idempotency.Claim, sent: Sent, doc: dict[str, Any],
                   now: datetime) -> dict[str, Any]:
    """The same writes through the race-safe helpers (the commit met a document written meanwhile)."""
    req = ctx.req
    tm = claim_thread(ctx, sent.thread_id)
    conversation_id = tm.conversations.get(req.account_id, ctx.conversation_id)
    result = result_of(sent, conversation_id)
    if conversation_id != ctx.conversation_id:
        doc = message_doc(ctx, sent, conversation_id, now)
        _quietly(lambda: touch_summary(req.account_id, conversation_id, req.contact_id, now, doc["snippet"], None),
                 ctx, conversation_id)
    store_message(req.account_id, conversation_id, result["messageId"], Message.from_doc(doc))
    idempotency.complete(claim, result)
    return result


def claim_thread(ctx: SendContext, gmail_thread_id: str) -> ThreadMap:
    """R10/R14: map the thread to the conversation and claim it for this account (create if absent,
    else the shared transaction when the map lacks this account or an owner)."""
    from google.api_core.exceptions import AlreadyExists

    account = ctx.req.account_id
    fresh = ThreadMap(mailboxId=ctx.mailbox_id, gmailThreadId=gmail_thread_id, ownerAccountId=account,
                      conversations={account: ctx.conversation_id})
    ref = thread_ref(ctx.mailbox_id, gmail_thread_id)
    try:
        roundtrips.note("thread map create")
        ref.create(fresh.to_doc())
        return fresh
    except AlreadyExists:
        pass
    roundtrips.note("thread map read")
    tm = ThreadMap.from_doc(ref.get().to_dict())
    if ctx.req.account_id in tm.conversations and tm.ownerAccountId is not None:
        return tm
    return map_conversation(ctx.mailbox_id, gmail_thread_id, account, ctx.conversation_id, claim=True)


def _quietly(fn: Any, ctx: SendContext, conversation_id: str) -> None:
    """The conversation summary is a summary: the message is logged either way, so the send succeeded."""
    from shared.core import log

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
    __slots__ = ("__weakref__", "lock")

    def __init__(self) -> None:
        self.lock = threading.Lock()


MAX_REMEMBERED = 10_000
_written: OrderedDict[tuple[str, str], _Written] = OrderedDict()
_turns: weakref.WeakValueDictionary[tuple[str, str], _Turn] = weakref.WeakValueDictionary()
_state_lock = threading.Lock()


def touch_summary(account_id: str, conversation_id: str, contact_id: str, at: datetime, snippet: str,
                  snapshot: Any) -> None:
    """The conversation's lastMessageAt/snippet moved forward (shared.sync.conversations.touch_conversation),
    starting from the freshest of: the caller's snapshot, what this instance wrote last."""
    key = (account_id, conversation_id)
    with _state_lock:
        turn = _turns.get(key)
        if turn is None:
            turn = _turns[key] = _Turn()
    with turn.lock:
        with _state_lock:
            known = _written.get(key)
        if known is not None and (snapshot is None or not snapshot.exists
                                  or known.update_time >= snapshot.update_time):
            snapshot = known
        update_time = touch_conversation(account_id, conversation_id, contact_id, at, snippet, "outbound",
                                         snapshot=snapshot)
        if update_time is not None:
            with _state_lock:
                _written[key] = _Written(update_time, at, contact_id)
                _written.move_to_end(key)
                while len(_written) > MAX_REMEMBERED:
                    _written.popitem(last=False)
