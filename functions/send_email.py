"""send_email: one individual email from the CRM through the rep's Gmail (R6, R9, R10, R14, R15, R17, R18).

The flow, top to bottom:
auth → validate → load user / contact / link (404 for ids not in this
account, with no hint that they exist elsewhere) → build the MIME (413 before
anything is written) → idempotency record (R18) → daily slot (R17) → Gmail
messages.send (JSON `raw` for small messages, the media upload for large ones)
→ thread claim + message log (gm_<gmailMessageId>, so gmail_push's later
notification finds it, R9) → CRM event → mark the key done → answer.

Every failure before Gmail accepted the message gives back the slot and the
idempotency record, so a retry (or tomorrow's send) starts clean. A failure
whose outcome is unknown (Gmail 5xx, timeout, crash) leaves the record for the
next retry, which asks Gmail for the message by its Message-ID before it
would send again.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from io import BytesIO
from typing import Any

from shared.connect.connection import ConnectionState, decide_from_snapshots
from shared.core import log, paths
from shared.core.clients import firestore_client
from shared.core.config import get_config
from shared.core.events import CrmEvent, publish
from shared.core.models import Contact, Link, Message, ThreadMap, User
from shared.core.text import make_snippet
from shared.gmail.credentials import GmailSession, NotConnected, ReauthRequired, credentials_for, reauth_guard
from shared.gmail.errors import Outcome, classify
from shared.gmail.mime_build import (
    OutgoingEmail,
    build_bytes,
    message_id_for,
    reply_references,
    reply_subject,
    strip_reply_prefixes,
)
from shared.http.answers import ApiError, handles_errors, json_response, read_json, require_bearer
from shared.http.validate import is_address
from shared.send import idempotency
from shared.send.limits import DailyLimitReached, claim_slot, release_slot, reset_at, slot_held_by
from shared.send.limits import Slot as SendSlot
from shared.send.limits import today as limit_today
from shared.send.request import MAX_MIME_BYTES, MAX_REQUEST_BYTES, SendRequest, parse_send_request, too_large
from shared.sync.conversations import store_message, touch_conversation
from shared.sync.threads import map_conversation

CRM_API_KEY_SECRET = "crm-api-key"
UPLOAD_THRESHOLD = 4 * 1024 * 1024  # above this the message goes through the media upload endpoint
STORED_BODY_CHARS = 200_000  # a Firestore document holds 1 MiB; the full message stays in Gmail
RETRY_WAIT_SECONDS = 25.0  # how long a concurrent retry waits for the first attempt to finish
_MAIL_SENDING_RETRY = re.compile(r"Retry after (\S+)")


def lease_seconds() -> float:
    """How long an attempt owns its key; must exceed the function's timeout (retries take over after)."""
    return get_config().send_lease_seconds


@dataclass
class SendContext:
    req: SendRequest
    user: User
    contact: Contact
    mailbox_id: str
    address: str
    conversation_id: str
    thread_id: str | None = None
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    subject: str = ""
    started: float = field(default_factory=time.monotonic)
    timings: dict[str, int] = field(default_factory=dict)  # ms at the end of each phase (logged, for operators)

    def mark(self, phase: str) -> None:
        self.timings[phase] = round((time.monotonic() - self.started) * 1000)


def handle(request: Any) -> Any:
    return _handle(request)


@handles_errors
def _handle(request: Any) -> Any:
    if request.method != "POST":
        raise ApiError(405, "method_not_allowed", "use POST")
    if request.path not in ("", "/"):
        raise ApiError(404, "not_found", "no such endpoint")
    require_bearer(request, CRM_API_KEY_SECRET)
    started = time.monotonic()
    req = parse_send_request(read_json(request, max_bytes=MAX_REQUEST_BYTES))
    ctx = load_context(req)
    ctx.started = started
    ctx.mark("load")
    rfc822_id = message_id_for(paths.idempotency_id(req.account_id, req.user_id, req.idempotency_key))
    mime = build_mime(ctx, rfc822_id)
    if len(mime) > MAX_MIME_BYTES:
        raise too_large(f"the encoded message exceeds Gmail's {MAX_MIME_BYTES} bytes")
    result, replayed = send(ctx, rfc822_id, mime)
    return json_response(result, 200, {"Idempotent-Replayed": "true"} if replayed else None)


# --- loading -------------------------------------------------------------------------------------------------

def not_found(field: str, what: str) -> ApiError:
    # Same answer whether the id exists in another account or nowhere: no hint across tenants.
    return ApiError(404, "not_found", f"{what} not found in this account", field=field)


def load_context(req: SendRequest) -> SendContext:
    """User, contact and link in one round trip, the mailbox in a second."""
    from shared.connect.mailboxes import link_ref, mailbox_ref

    db = firestore_client()
    user_ref = db.document(paths.user_path(req.account_id, req.user_id))
    contact_ref = db.document(paths.contact_path(req.account_id, req.contact_id))
    lref = link_ref(req.account_id, req.user_id)
    snaps = {s.reference.path: s for s in db.get_all([user_ref, contact_ref, lref])}
    user_snap, contact_snap, link_snap = snaps.get(user_ref.path), snaps.get(contact_ref.path), snaps.get(lref.path)
    if user_snap is None or not user_snap.exists:
        raise not_found("userId", "user")
    if contact_snap is None or not contact_snap.exists:
        raise not_found("contactId", "contact")
    user = User.from_doc(user_snap.to_dict())
    contact = Contact.from_doc(contact_snap.to_dict())
    if not isinstance(contact.email, str) or not is_address(contact.email.strip()):
        raise ApiError(422, "invalid_contact", "the contact has no valid email address", field="contactId")

    conn = decide_from_snapshots(link_snap, mailbox_ref(Link.from_doc(link_snap.to_dict()).mailboxId).get()
                                 if link_snap is not None and link_snap.exists else None)
    if conn.state is ConnectionState.DISCONNECTED:
        raise ApiError(409, "not_connected", "the user has not connected a Gmail account")
    if conn.state is ConnectionState.REAUTH_REQUIRED:
        raise reauth_error()
    link, mailbox = conn.link, conn.mailbox
    assert link is not None and mailbox is not None

    ctx = SendContext(req=req, user=user, contact=contact, mailbox_id=link.mailboxId, address=mailbox.address,
                      conversation_id=req.contact_id, subject=req.subject or "")
    if req.reply_to_message_id:
        load_parent(ctx)
    return ctx


def load_parent(ctx: SendContext) -> None:
    """R10: the CRM message replied to gives the Gmail thread, In-Reply-To, References and subject."""
    req = ctx.req
    assert req.reply_to_message_id is not None
    snap = firestore_client().document(
        paths.message_path(req.account_id, req.contact_id, req.reply_to_message_id)).get()
    if not snap.exists:
        raise not_found("replyToMessageId", "message")
    parent = Message.from_doc(snap.to_dict())
    ctx.thread_id = parent.gmailThreadId or None
    if parent.rfc822MessageId:
        ctx.in_reply_to = parent.rfc822MessageId
        ctx.references = reply_references(parent.references or ([parent.inReplyTo] if parent.inReplyTo else []),
                                          parent.rfc822MessageId)
    # Gmail keeps a message in the thread only when the subjects agree; keep the rep's text when it does.
    base = strip_reply_prefixes(parent.subject or "")
    if not req.subject or strip_reply_prefixes(req.subject).lower() == base.lower():
        ctx.subject = reply_subject(parent.subject or req.subject or "")
    else:
        ctx.subject = req.subject


def reauth_error() -> ApiError:
    return ApiError(409, "reauth_required", "Google rejected the stored authorization; the rep must connect "
                    "Gmail again")


def build_mime(ctx: SendContext, rfc822_id: str) -> bytes:
    req = ctx.req
    return build_bytes(OutgoingEmail(
        from_address=ctx.address, from_name=ctx.user.name or "", to_address=ctx.contact.email.strip(),
        to_name=ctx.contact.name or "", subject=ctx.subject, message_id=rfc822_id, cc=req.cc, bcc=req.bcc,
        text=req.text, html=req.html, attachments=req.attachments, in_reply_to=ctx.in_reply_to,
        references=ctx.references))


# --- the send ------------------------------------------------------------------------------------------------

def send(ctx: SendContext, rfc822_id: str, mime: bytes) -> tuple[dict[str, Any], bool]:
    req = ctx.req
    try:
        claim = idempotency.begin(req.account_id, req.user_id, req.idempotency_key, fingerprint=req.fingerprint(),
                                  rfc822_message_id=rfc822_id, lease_seconds=lease_seconds(),
                                  wait_seconds=RETRY_WAIT_SECONDS)
    except idempotency.KeyReused:
        raise ApiError(422, "idempotency_key_reused",
                       "this idempotencyKey was already used for a different request") from None
    except idempotency.InProgress as exc:
        raise ApiError(409, "send_in_progress", "a send with this idempotencyKey is still in progress; retry later",
                       retryAfterSeconds=round(exc.retry_after)) from None
    ctx.mark("idempotency")
    if claim.kind == "done":
        assert claim.record.result is not None
        return claim.record.result, True

    try:
        return _send_owned(ctx, claim, rfc822_id, mime), False
    except ApiError:
        raise  # each refusal has already given back or kept what it must
    except ReauthRequired:
        # Only reachable while a crashed attempt's outcome is unknown: keep the record for the retry after
        # the rep reconnects (it searches Gmail first), but do not make it wait for the lease.
        with contextlib.suppress(Exception):
            idempotency.set_fields(claim, {"leaseUntil": datetime.now(UTC)})
        raise reauth_error() from None
    except Exception:
        # Unexpected (Firestore, Gmail search, event): the outcome may be unknown, so keep the record but let
        # the client's retry take over at once; it asks Gmail for the Message-ID before it would send.
        with contextlib.suppress(Exception):
            idempotency.set_fields(claim, {"leaseUntil": datetime.now(UTC)})
        raise


def _send_owned(ctx: SendContext, claim: idempotency.Claim, rfc822_id: str, mime: bytes) -> dict[str, Any]:
    session: GmailSession | None = None
    if claim.kind == "takeover":
        # An earlier attempt crashed or timed out: did Gmail send it? Then finish its work instead of sending.
        try:
            session = credentials_session(ctx)
        except NotConnected:
            raise ReauthRequired(ctx.mailbox_id, ctx.address) from None  # disconnected meanwhile: same answer
        found = find_sent(session, rfc822_id)
        if found is not None:
            log.info("send recovered after crash", mailboxId=ctx.mailbox_id, gmailMessageId=found[0])
            return finalize(ctx, claim, rfc822_id, *found)

    slot = acquire_slot(ctx, claim)
    ctx.mark("slot")
    if session is None:
        session = open_session(ctx, claim, slot)
    ctx.mark("credentials")
    sent = gmail_send(ctx, claim, slot, session, rfc822_id, mime)
    ctx.mark("gmail")
    if get_config().local_stack and os.environ.get("SEND_TEST_CRASH_AFTER_GMAIL") == "1":
        # Local stack only: die in the R18 crash window (Gmail sent, nothing recorded) so tests can prove
        # that the retry recovers the message instead of sending it twice.
        log.warning("test crash after Gmail send", gmailMessageId=sent["id"])
        os._exit(70)
    return finalize(ctx, claim, rfc822_id, sent["id"], sent["threadId"])


def acquire_slot(ctx: SendContext, claim: idempotency.Claim) -> SendSlot:
    """Today's slot for this key: the one a crashed attempt already claimed, or a new one (R17)."""
    if claim.kind == "takeover":
        earlier = slot_held_by(claim.record_id, ctx.mailbox_id, limit_today().isoformat())
        if earlier is not None:
            return earlier
    try:
        return claim_slot(ctx.mailbox_id, claim.record_id)
    except DailyLimitReached as exc:
        idempotency.release(claim)
        raise limit_error(exc.reset_at) from None


def limit_error(resets: datetime) -> ApiError:
    return ApiError(429, "daily_limit_reached",
                    f"the daily limit of {get_config().daily_send_limit} emails for this Gmail address is reached",
                    resetAt=resets.isoformat())


def give_back(claim: idempotency.Claim, slot: SendSlot | None) -> None:
    """Nothing was sent: the slot and the key are free again."""
    if slot is not None:
        release_slot(slot)
    idempotency.release(claim)


def credentials_session(ctx: SendContext) -> GmailSession:
    """Gmail for the mailbox; its status was read in load_context, so only the credentials are fetched."""
    from shared.gmail.service import build_gmail

    creds = credentials_for(ctx.mailbox_id, ctx.address)
    return GmailSession(mailbox_id=ctx.mailbox_id, address=ctx.address, credentials=creds,
                        service=build_gmail(creds))


def open_session(ctx: SendContext, claim: idempotency.Claim, slot: SendSlot) -> GmailSession:
    """Gmail for a send that has not happened yet: without access, give back the slot and the key."""
    try:
        return credentials_session(ctx)
    except ReauthRequired:
        give_back(claim, slot)
        raise reauth_error() from None
    except NotConnected:
        give_back(claim, slot)
        raise ApiError(409, "not_connected", "the user has not connected a Gmail account") from None


def find_sent(session: GmailSession, rfc822_id: str) -> tuple[str, str] | None:
    """(gmailMessageId, threadId) of the message with this Message-ID in the Sent folder, if Gmail has it."""
    q = f"rfc822msgid:{rfc822_id.strip('<>')} in:sent"
    with reauth_guard(session.mailbox_id, session.address):
        resp = session.service.users().messages().list(userId="me", q=q, includeSpamTrash=True,
                                                       maxResults=5).execute(num_retries=2)
    msgs = resp.get("messages") or []
    return (msgs[0]["id"], msgs[0]["threadId"]) if msgs else None


def _execute_send(session: GmailSession, mime: bytes, thread_id: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"threadId": thread_id} if thread_id else {}
    messages = session.service.users().messages()
    if len(mime) < UPLOAD_THRESHOLD:
        body["raw"] = base64.urlsafe_b64encode(mime).decode("ascii")
        request = messages.send(userId="me", body=body)
    else:
        from googleapiclient.http import MediaIoBaseUpload

        media = MediaIoBaseUpload(BytesIO(mime), mimetype="message/rfc822", resumable=True)
        request = messages.send(userId="me", body=body or None, media_body=media)
    with reauth_guard(session.mailbox_id, session.address):
        result: dict[str, Any] = request.execute()
    return result


def gmail_send(ctx: SendContext, claim: idempotency.Claim, slot: SendSlot, session: GmailSession,
               rfc822_id: str, mime: bytes) -> dict[str, Any]:
    """messages.send with Gmail's errors turned into answers; retries only what provably did not send."""
    from googleapiclient.errors import HttpError

    budget = time.monotonic() + min(get_config().gmail_retry_budget_seconds, 20.0)
    thread_id = ctx.thread_id
    delay = 0.5
    while True:
        try:
            return _execute_send(session, mime, thread_id)
        except ReauthRequired:
            give_back(claim, slot)
            raise reauth_error() from None
        except HttpError as exc:
            info = classify(exc)
            status, reason, message = info.status, info.reason, info.message
            if info.outcome is Outcome.SENDING_LIMIT:
                give_back(claim, slot)
                log.warning("Gmail refused: sending limit", mailboxId=ctx.mailbox_id, reason=reason)
                raise limit_error(_gmail_reset_at(message)) from None
            if info.outcome is Outcome.RATE_LIMITED:
                if time.monotonic() + delay < budget:  # a refusal: nothing was sent, retrying is safe
                    log.info("Gmail rate-limited the send; retrying", mailboxId=ctx.mailbox_id, status=status,
                             delaySeconds=delay)
                    time.sleep(delay)
                    delay = min(delay * 2, 4.0)
                    continue
                give_back(claim, slot)
                raise ApiError(429, "rate_limited", "Gmail is rate-limiting this mailbox; retry shortly",
                               retryAfterSeconds=5) from None
            if status in (400, 404) and thread_id is not None and "thread" in message.lower():
                # The parent's thread is not in this mailbox (e.g. the rep changed Gmail, R3): the headers
                # still thread it for the recipient, Gmail starts a new thread here.
                log.info("reply thread unknown to Gmail; sending without threadId", mailboxId=ctx.mailbox_id)
                thread_id = None
                continue
            if info.outcome in (Outcome.REJECTED, Outcome.NOT_FOUND, Outcome.REAUTH):
                give_back(claim, slot)
                raise ApiError(422, "gmail_rejected", f"Gmail refused the message: {message[:300]}",
                               gmailStatus=status, gmailReason=reason) from None
            found = unknown_outcome(ctx, claim, session, rfc822_id, status)
        except (OSError, TimeoutError) as exc:
            log.warning("Gmail send failed in transport", mailboxId=ctx.mailbox_id, error=type(exc).__name__)
            found = unknown_outcome(ctx, claim, session, rfc822_id, 0)
        if found is not None:
            return {"id": found[0], "threadId": found[1]}
        log.info("Gmail send failed and did not go out; retrying", mailboxId=ctx.mailbox_id, delaySeconds=delay)
        # unknown_outcome returned: the message is provably not at Gmail; retry within the budget
        if time.monotonic() + delay >= budget:
            give_back(claim, slot)
            raise ApiError(503, "gmail_unavailable", "Gmail is unavailable; retry later with the same "
                           "idempotencyKey", retryAfterSeconds=10)
        time.sleep(delay)
        delay = min(delay * 2, 4.0)


def unknown_outcome(ctx: SendContext, claim: idempotency.Claim, session: GmailSession,
                    rfc822_id: str, status: int) -> tuple[str, str] | None:
    """Gmail answered 5xx or the connection broke: ask Gmail whether the message went out."""
    try:
        found = find_sent(session, rfc822_id)
    except Exception as exc:
        # We cannot tell. Keep the key (and slot) and let the lease lapse now: the client's retry takes over
        # at once and searches again before it would send.
        idempotency.set_fields(claim, {"leaseUntil": datetime.now(UTC)})
        log.warning("send outcome unknown", mailboxId=ctx.mailbox_id, status=status, error=type(exc).__name__)
        raise ApiError(503, "gmail_unavailable", "Gmail did not confirm the send; retry with the same "
                       "idempotencyKey (it will not send twice)", retryAfterSeconds=5) from None
    return found


def _gmail_reset_at(message: str) -> datetime:
    m = _MAIL_SENDING_RETRY.search(message)
    if m:
        try:
            return datetime.fromisoformat(m.group(1).rstrip(".").replace("Z", "+00:00"))
        except ValueError:
            pass
    return reset_at()


# --- after Gmail accepted the message -------------------------------------------------------------------------

def _snippet(req: SendRequest) -> str:
    return make_snippet(None, req.text, req.html)


def claim_thread(ctx: SendContext, gmail_thread_id: str) -> ThreadMap:
    """R10/R14: map the thread to the conversation and claim it for this account.

    A new send starts a thread Gmail just created, so create-if-absent (one write) is the common case;
    an existing map goes through the shared transaction only when it lacks this account or an owner.
    """
    from google.api_core.exceptions import AlreadyExists

    from shared.sync.threads import thread_ref

    account = ctx.req.account_id
    fresh = ThreadMap(mailboxId=ctx.mailbox_id, gmailThreadId=gmail_thread_id, ownerAccountId=account,
                      conversations={account: ctx.conversation_id})
    try:
        thread_ref(ctx.mailbox_id, gmail_thread_id).create(fresh.to_doc())
        return fresh
    except AlreadyExists:
        pass
    snap = thread_ref(ctx.mailbox_id, gmail_thread_id).get()
    tm = ThreadMap.from_doc(snap.to_dict())
    if account in tm.conversations and tm.ownerAccountId is not None:
        return tm
    return map_conversation(ctx.mailbox_id, gmail_thread_id, account, ctx.conversation_id, claim=True)


def finalize(ctx: SendContext, claim: idempotency.Claim, rfc822_id: str, gmail_id: str,
             gmail_thread_id: str) -> dict[str, Any]:
    """Log the message once (R9), claim the thread (R14), tell the CRM, remember the answer (R18)."""
    req = ctx.req
    tm = claim_thread(ctx, gmail_thread_id)
    conversation_id = tm.conversations.get(req.account_id, ctx.conversation_id)
    now = datetime.now(UTC)
    message_id = paths.gmail_message_doc_id(gmail_id)
    msg = Message(
        direction="outbound", source="crm", contactId=req.contact_id, userId=req.user_id, from_=ctx.address,
        to=[ctx.contact.email.strip()], cc=list(req.cc), bcc=list(req.bcc), subject=ctx.subject,
        text=None if req.text is None else req.text[:STORED_BODY_CHARS],
        html=None if req.html is None else req.html[:STORED_BODY_CHARS],
        snippet=_snippet(req), sentAt=now, gmailMessageId=gmail_id, gmailThreadId=gmail_thread_id,
        rfc822MessageId=rfc822_id, inReplyTo=ctx.in_reply_to, references=list(ctx.references),
        attachments=[{"filename": a.filename, "mimeType": a.mime_type or "application/octet-stream",
                      "size": len(a.content)} for a in req.attachments],
        createdAt=now, mailboxId=ctx.mailbox_id)
    ctx.mark("thread")
    store_message(req.account_id, conversation_id, message_id, msg)
    ctx.mark("store")
    try:
        touch_conversation(req.account_id, conversation_id, req.contact_id, now, msg.snippet, "outbound")
    except Exception as exc:  # a summary field; the message itself is logged, so the send still succeeded
        log.warning("conversation summary not updated", accountId=req.account_id, conversationId=conversation_id,
                    error=type(exc).__name__)
    ctx.mark("conversation")
    result = {"messageId": message_id, "gmailMessageId": gmail_id, "gmailThreadId": gmail_thread_id,
              "conversationId": conversation_id}
    publish([CrmEvent(type="message.sent", accountId=req.account_id, userId=req.user_id, contactId=req.contact_id,
                      conversationId=conversation_id, messageId=message_id, direction="outbound", source="crm",
                      gmailMessageId=gmail_id, gmailThreadId=gmail_thread_id)])
    ctx.mark("event")
    idempotency.complete(claim, result)
    ctx.mark("done")
    log.info("email sent", accountId=req.account_id, userId=req.user_id, mailboxId=ctx.mailbox_id,
             gmailMessageId=gmail_id, gmailThreadId=gmail_thread_id, ms=ctx.timings)
    return result
