"""send_email's one operation, top to bottom (R6, R9, R10, R10b, R14, R15, R17, R18, R23; issue 12).

    1. read     one batch: user, contact, link, mailbox, token, idempotency record,
                conversation, parent (shared.send.context)            Firestore round trip 1
       a key already done answers with its first result (R18)
    2. check    404 / 409 / 422 refusals, the MIME built, 413 too large: nothing written yet
    3. reserve  record + a free send slot in one commit (shared.send.reserve;
                the candidate slot was read in step 1: R30)          round trip 2
                meanwhile: a new access token if none is cached, the reply's thread map
    4. Gmail    messages.send on a kept connection (shared.send.gmail_send)
    5. log      thread map + message + result + conversation summary in one
                commit (shared.send.sent_log)                           round trip 3
    6. tell     the CRM event, one Publish request (no batch timer)

An instance's first send for a user reads the mailbox and token once more
(round trip 1b). Any conflict (a retry racing this one, an earlier attempt
that crashed, a taken slot, a document written meanwhile) drops to the
general path, one write at a time, which is what 0.1 always did.

Every refusal before Gmail accepted the message gives back the slot and the
key (R23: no daily slot used). An unknown outcome (Gmail 5xx, a broken
connection, a crash) keeps the record so that the retry asks Gmail by the
Message-ID before it would send again (R18). Once Gmail accepted the message
the answer is a 200 (R23): a log write that still fails leaves the record to
the retry, which finds the message at Gmail and logs it.

The send runs inside the Firestore meter (shared.core.roundtrips, the
sync's too): every RPC below it is counted at the client, and what runs
side by side runs in the meter's ContextPool. The rounds, calls, reads and
writes are logged with every send; the local stack also returns the rounds
and calls in response headers.
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shared.core import log, roundtrips
from shared.core.config import get_config
from shared.core.crypto import TOKEN_KEY_SECRET
from shared.core.events import CrmEvent, publish
from shared.core.roundtrips import ContextPool
from shared.core.secrets import SecretUnavailable
from shared.crm.paths import conversation_ref, thread_ref
from shared.gmail.credentials import OAUTH_CLIENT_SECRET, ReauthRequired, credentials_from, refresh
from shared.gmail.mime_build import OutgoingEmail, build_bytes, message_id_for
from shared.http.answers import ApiError
from shared.send import answers, context, gmail_send, idempotency, reserve, warmup
from shared.send.context import SendContext
from shared.send.gmail_send import GmailAccess, Unconfirmed
from shared.send.request import MAX_MIME_BYTES, SendRequest, too_large
from shared.send.sent_log import Sent, log_sent, result_of

CRM_API_KEY_SECRET = "crm-api-key"
SECRETS = (CRM_API_KEY_SECRET, OAUTH_CLIENT_SECRET, TOKEN_KEY_SECRET)
ROUND_TRIPS_HEADER = "X-Firestore-Round-Trips"  # local stack only: what the benchmark and tests read
CALLS_HEADER = "X-Firestore-Calls"  # local stack only: every Firestore RPC, the concurrent ones included


@dataclass
class Outcome:
    result: dict[str, Any]
    replayed: bool = False
    firestore: dict[str, Any] = field(default_factory=dict)  # rounds, calls, reads, writes (roundtrips.Meter)

    def headers(self) -> dict[str, str]:
        out = {"Idempotent-Replayed": "true"} if self.replayed else {}
        if get_config().local_stack:
            out[ROUND_TRIPS_HEADER] = str(self.firestore.get("rounds", 0))
            out[CALLS_HEADER] = str(self.firestore.get("calls", 0))
        return out


def prefetch_secrets() -> None:
    """An instance's first request reads every secret the send needs at once (shared.send.warmup)."""
    warmup.start(list(SECRETS))


class Clock:
    """Milliseconds since the start at the end of each phase (logged with every send, for operators)."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.ms: dict[str, int] = {}

    def mark(self, phase: str) -> None:
        self.ms[phase] = round((time.monotonic() - self.started) * 1000)


def send(req: SendRequest) -> Outcome:
    clock = Clock()
    with roundtrips.metering() as meter:
        result, replayed, ctx = _send(req, clock)
    outcome = Outcome(result, replayed, meter.summary())
    log.info("email replayed" if replayed else "email sent", accountId=req.account_id, userId=req.user_id,
             mailboxId=ctx.mailbox_id if ctx else None, gmailMessageId=result.get("gmailMessageId"),
             firestore=outcome.firestore, ms=clock.ms)
    return outcome


def _send(req: SendRequest, clock: Clock) -> tuple[dict[str, Any], bool, SendContext | None]:
    # 1. read
    first = context.read_first(req)
    clock.mark("read")
    fingerprint = req.fingerprint()  # hashes the whole content (25 MB at most): once
    try:
        done = idempotency.finished(first.record_id, _data(first.get("record")), fingerprint)
    except idempotency.KeyReused:
        raise answers.key_reused() from None
    if done is not None and done.record.result is not None:
        return done.record.result, True, None

    # 2. check
    ctx = context.build(req, first)
    rfc822_id = message_id_for(ctx.record_id)
    mime = build_mime(ctx, rfc822_id)
    if len(mime) > MAX_MIME_BYTES:
        raise too_large(f"the encoded message exceeds Gmail's {MAX_MIME_BYTES} bytes")
    try:
        gmail = GmailAccess(ctx.mailbox_id, ctx.address, credentials_from(ctx.mailbox_id, ctx.refresh_token))
    except SecretUnavailable:
        raise answers.credentials_unavailable() from None
    clock.mark("check")

    # 3. reserve
    fast = first.get("record") is None
    reservation, thread_snap, failure = _reserve_fast(ctx, gmail, rfc822_id, fingerprint, fast)
    if failure is not None:
        if reservation is not None:
            reservation.give_back()
        raise failure
    if reservation is None:
        claim = reserve.begin(req.account_id, req.user_id, req.idempotency_key, fingerprint=fingerprint,
                              rfc822_id=rfc822_id, lease_seconds=get_config().send_lease_seconds)
        if claim.kind == "done" and claim.record.result is not None:
            return claim.record.result, True, ctx
        recovered = _recover(ctx, gmail, claim, rfc822_id)
        if recovered is not None:
            return recovered, False, ctx
        reservation = reserve.Reservation(claim, reserve.slot_for(claim, ctx.mailbox_id))
    clock.mark("reserve")

    # 4. Gmail
    thread_id = ctx.parent.thread_id if ctx.parent else None
    try:
        gmail_id, gmail_thread = gmail_send.send(gmail, mime, thread_id, rfc822_id, reservation.give_back)
    except Unconfirmed:
        _leave_to_retry(reservation.claim)
        raise gmail_send.unconfirmed_answer() from None
    except ApiError:
        raise  # a refusal: the slot and key were given back
    except Exception:
        _leave_to_retry(reservation.claim)  # outcome unknown: the retry asks Gmail before it sends
        raise
    _test_crash_window(gmail_id)
    clock.mark("gmail")

    # 5. log, 6. tell
    result = _log_and_tell(ctx, reservation.claim, Sent(rfc822_id, gmail_id, gmail_thread), thread_snap, clock)
    return result, False, ctx


def build_mime(ctx: SendContext, rfc822_id: str) -> bytes:
    req, parent = ctx.req, ctx.parent
    return build_bytes(OutgoingEmail(
        from_address=ctx.address, from_name=ctx.user.name or "", to_address=ctx.to_address,
        to_name=ctx.contact.name or "", subject=ctx.subject, message_id=rfc822_id, cc=req.cc, bcc=req.bcc,
        text=req.text, html=req.html, attachments=req.attachments,
        in_reply_to=parent.in_reply_to if parent else None, references=parent.references if parent else ()))


def _reserve_fast(ctx: SendContext, gmail: GmailAccess, rfc822_id: str, fingerprint: str, fast: bool
                  ) -> tuple[reserve.Reservation | None, Any, ApiError | None]:
    """Record + slot in one commit (when no record was there), in parallel with what the send needs next.

    Returns (the reservation or None for the general path, the reply's thread map, a refusal to give).
    On an instance's first send the Gmail and Pub/Sub clients are built meanwhile too.
    """
    req = ctx.req

    def commit() -> reserve.Reservation | None:
        return reserve.record_and_slot(ctx.record_id, req.account_id, req.user_id, req.idempotency_key,
                                       fingerprint=fingerprint, rfc822_id=rfc822_id,
                                       lease_seconds=get_config().send_lease_seconds, slot=ctx.slot,
                                       slot_snap=ctx.slot_snap)

    def access_token() -> ApiError | None:
        try:
            refresh(ctx.mailbox_id, ctx.address, gmail.credentials)
        except ReauthRequired:
            return answers.reauth_required()
        except Exception as exc:  # the token endpoint failed otherwise: nothing can be sent now
            log.warning("access token refresh failed", mailboxId=ctx.mailbox_id, error=type(exc).__name__)
            return answers.gmail_unavailable("Google's token endpoint did not answer; retry later with the same "
                                             "idempotencyKey", 10)
        return None

    def reply_documents(parent_thread: str) -> Any:
        refs = {"thread": thread_ref(ctx.mailbox_id, parent_thread)}
        if ctx.conversation is None:
            refs["conversation"] = conversation_ref(req.account_id, ctx.conversation_id)
        snaps = context.read_batch(refs)
        if "conversation" in refs:
            ctx.conversation = snaps.get("conversation")
        return snaps.get("thread")

    jobs: dict[str, Callable[[], Any]] = {}
    if fast:
        jobs["reservation"] = commit
    if not gmail.credentials.token:  # no cached access token for this refresh token
        jobs["failure"] = access_token
    if ctx.parent and ctx.parent.thread_id:
        jobs["thread"] = functools.partial(reply_documents, ctx.parent.thread_id)
    if warmup.pending():
        jobs["libraries"] = warmup.gmail_ready  # an instance's first send: the Gmail client (Pub/Sub follows)
    done = _together(jobs)
    return done.get("reservation"), done.get("thread"), done.get("failure")


def _together(jobs: dict[str, Callable[[], Any]]) -> dict[str, Any]:
    """The jobs' results by name, run at once in the meter's ContextPool (so their Firestore calls are this
    send's, a group counting as its longest branch); the first error is raised once every job finished,
    so none is left running behind the send's back.

    The Firestore, Secret Manager and HTTP clients are thread-safe; httplib2 is not, so a Gmail call in a
    job uses its own connection (shared.gmail.service.kept_connection hands out one each).
    """
    if len(jobs) <= 1:
        return {name: fn() for name, fn in jobs.items()}
    with ContextPool(max_workers=len(jobs), thread_name_prefix="send") as pool:
        futures = {name: pool.submit(fn) for name, fn in jobs.items()}
    return {name: future.result() for name, future in futures.items()}


def _recover(ctx: SendContext, gmail: GmailAccess, claim: idempotency.Claim, rfc822_id: str) -> dict[str, Any] | None:
    """A takeover of a crashed attempt: if Gmail has its message, log it instead of sending again (R18)."""
    if claim.kind != "takeover":
        return None
    try:
        found = gmail_send.find_sent(gmail, rfc822_id)
    except ReauthRequired:
        _leave_to_retry(claim)  # the retry after the rep reconnects searches Gmail first
        raise answers.reauth_required() from None
    except Exception:
        _leave_to_retry(claim)
        raise gmail_send.unconfirmed_answer() from None
    if found is None:
        return None
    log.info("send recovered after crash", mailboxId=ctx.mailbox_id, gmailMessageId=found[0])
    return _log_and_tell(ctx, claim, Sent(rfc822_id, *found), None, Clock())


def _log_and_tell(ctx: SendContext, claim: idempotency.Claim, sent: Sent, thread_snap: Any,
                  clock: Clock) -> dict[str, Any]:
    """R23: Gmail accepted the message, so the answer is a 200 whatever happens here."""
    req = ctx.req

    def tell(result: dict[str, Any]) -> None:
        clock.mark("log")
        warmup.ready()  # an instance's first send: Pub/Sub's library loaded while Gmail and the log worked
        try:
            publish([CrmEvent(type="message.sent", accountId=req.account_id, userId=req.user_id,
                              contactId=req.contact_id, conversationId=result["conversationId"],
                              messageId=result["messageId"], direction="outbound", source="crm",
                              gmailMessageId=sent.gmail_id, gmailThreadId=sent.thread_id)])
        except Exception as exc:
            log.error("message.sent event not published", accountId=req.account_id,
                      messageId=result["messageId"], error=type(exc).__name__)
        clock.mark("event")

    try:
        return log_sent(ctx, claim, sent, thread_snap, announce=tell)
    except Exception as exc:
        log.error("sent but not logged; a retry with the same key logs it", accountId=req.account_id,
                  mailboxId=ctx.mailbox_id, gmailMessageId=sent.gmail_id, error=type(exc).__name__,
                  detail=str(exc)[:300])
        _leave_to_retry(claim)
        return result_of(sent, ctx.conversation_id)


def _leave_to_retry(claim: idempotency.Claim) -> None:
    """Keep the record (the outcome may be unknown) but let the client's retry take over at once."""
    with contextlib.suppress(Exception):
        idempotency.set_fields(claim, {"leaseUntil": datetime.now(UTC)})


def _data(snap: Any) -> dict[str, Any] | None:
    return snap.to_dict() if snap is not None else None


def _test_crash_window(gmail_id: str) -> None:
    """Local stack only: die in the R18 crash window (Gmail sent, nothing recorded) so tests can prove that
    the retry recovers the message instead of sending it twice."""
    if get_config().local_stack and os.environ.get("SEND_TEST_CRASH_AFTER_GMAIL") == "1":
        log.warning("test crash after Gmail send", gmailMessageId=gmail_id)
        os._exit(70)
