"""Open an attachment of a logged message from the CRM (R20).

The CRM holds no Gmail token, so it asks us. What it names is a CRM message
(`accounts/{a}/conversations/{c}/messages/{m}`) and one of its attachments by
the id on the message (`attachments[i].gmailAttachmentId`); an id under
another account's path simply does not exist (404), so a tenant can only
reach its own messages.

Where the bytes are:
- Messages logged since 0.3 (R32): in Cloud Storage, named on the attachment
  (`storageObject`); served from there, whatever became of the mailbox.
- Auto BCC copies (`source: auto_bcc`, ids `ab_<n>`) are in no mailbox we can
  read; auto_bcc stored their bytes when it logged them (`store.py`).
- Everything else came through a mailbox (`mailboxId` on the message, the
  first of its `mailboxIds`; an attachment entry that names its own
  `mailboxId` came with a more open rep's copy, R31, and its id is that
  mailbox's; older messages without one: the mailbox of the message's user),
  read with that mailbox's Gmail id of the message (`gmailIds`, R25): Gmail's
  users.messages.attachments.get on that mailbox (5 quota units). The mailbox
  must still be connected to this account (a link of the account): after a
  disconnect (R4) its token is gone and the CRM is told `not_connected`; a
  mailbox whose authorization Google rejected answers `reauth_required`
  (and a refresh refused now marks it so, R5).

A message sent from the CRM (`send_email`) is logged before Gmail's
attachment ids are known (messages.send does not return them); the sync
writes them onto it when Gmail notifies the mailbox of the sent message,
seconds later (shared/attachments/sent_ids.py). Until then the message's
attachments have no `gmailAttachmentId`, and a call naming none of its
attachments is told `attachment_pending` (retry after reading the message
again), not `not_found`.

Serving (issue 23): an attachment larger than `MAX_SERVED_BYTES` (by the size
on the message, then by the bytes) is refused with `AttachmentTooLarge`
before any byte is read; stored bytes are streamed chunk by chunk
(`store.stream`). Gmail's attachments.get answers the whole attachment in one
JSON body, so that path holds it once, decoded, within the same cap.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from shared.attachments import store
from shared.attachments.sent_ids import is_pending
from shared.core import log
from shared.core.models import Message
from shared.core.refusal import QuietRefusal
from shared.crm.mailboxes import get_link, links_for_mailbox, read_mailbox
from shared.crm.paths import message_ref
from shared.gmail.credentials import NotConnected, ReauthRequired, open_gmail, reauth_guard
from shared.gmail.errors import Outcome, classify
from shared.storage.bodies import stored_attachment

GMAIL_NUM_RETRIES = 3  # googleapiclient's own backoff on 429/5xx
# What one answer may carry: R15's 25 MB (what Gmail lets anyone attach, and all an Auto BCC copy may
# hold). Larger inbound attachments (Gmail receives up to 50 MB) are opened in Gmail.
MAX_SERVED_BYTES = 25 * 1024 * 1024


class AttachmentUnavailable(QuietRefusal):
    """The attachment cannot be served; the subclass says why, and how the CRM is answered."""


class AttachmentNotFound(AttachmentUnavailable):
    """No such message or attachment in this account (or Gmail no longer has it)."""

    status, code, message = 404, "not_found", "no such message or attachment"


class AttachmentPending(AttachmentUnavailable):
    """A CRM-sent message whose attachments' Gmail ids the sync has not recorded yet."""

    status, code = 409, "attachment_pending"
    message = ("this message was sent from the CRM moments ago; its attachment ids are not recorded yet: read the "
               "message again shortly")


class MailboxNotConnected(AttachmentUnavailable):
    """The mailbox the message came from is no longer connected to this account."""

    status, code, message = 409, "not_connected", "the mailbox this message came from is no longer connected"


class MailboxReauthRequired(AttachmentUnavailable):
    """Google rejected the mailbox's authorization; the rep must connect again (R5)."""

    status, code, message = 409, "reauth_required", "the rep must connect Gmail again to open this attachment"


class AttachmentTooLarge(AttachmentUnavailable):
    """The attachment is larger than one answer may carry (MAX_SERVED_BYTES)."""

    status, code, message = 413, "too_large", "the attachment is larger than 25 MB; open it in Gmail"


class GmailBusy(AttachmentUnavailable):
    """Gmail is rate limiting the mailbox or failing; try again later."""

    status, code, message = 503, "gmail_unavailable", "Gmail did not answer; try again shortly"


@dataclass(frozen=True)
class AttachmentContent:
    filename: str
    mime_type: str
    size: int  # the bytes `chunks` yields in all (the answer's Content-Length)
    chunks: Iterator[bytes]


def _message(account_id: str, conversation_id: str, message_id: str) -> Message:
    try:
        snap = message_ref(account_id, conversation_id, message_id).get()
    except ValueError:  # an id Firestore cannot take as a path segment: no such message
        raise AttachmentNotFound(message_id) from None
    if not snap.exists:
        raise AttachmentNotFound(message_id)
    return Message.from_doc(snap.to_dict())


def _meta(msg: Message, attachment_id: str) -> dict[str, Any]:
    for att in msg.attachments or []:
        if isinstance(att, dict) and att.get("gmailAttachmentId") == attachment_id:
            return att
    if msg.source == "crm" and any(is_pending(att) for att in msg.attachments or []):
        raise AttachmentPending(attachment_id)
    raise AttachmentNotFound(attachment_id)


def _mailbox_of(account_id: str, msg: Message, named: Any = None) -> str:
    """The mailbox to read through (the attachment's own, else the message's first), if it is still
    connected to this account."""
    mailbox_id = named if isinstance(named, str) and named else msg.mailboxId
    if mailbox_id:
        if not any(ln.accountId == account_id for ln in links_for_mailbox(mailbox_id)):
            raise MailboxNotConnected(mailbox_id)
        return mailbox_id
    link = get_link(account_id, msg.userId) if msg.userId else None
    if link is None:
        raise MailboxNotConnected(f"{account_id}/{msg.userId}")
    return link.mailboxId


def _from_gmail(mailbox_id: str, gmail_message_id: str, attachment_id: str) -> bytes:
    try:
        session = open_gmail(read_mailbox(mailbox_id))
    except NotConnected:
        raise MailboxNotConnected(mailbox_id) from None
    except ReauthRequired:
        raise MailboxReauthRequired(mailbox_id) from None
    try:
        with reauth_guard(mailbox_id, session.address, session.credentials):
            resp = session.service.users().messages().attachments().get(
                userId="me", messageId=gmail_message_id, id=attachment_id).execute(num_retries=GMAIL_NUM_RETRIES)
    except ReauthRequired:
        raise MailboxReauthRequired(mailbox_id) from None
    except Exception as exc:
        info = classify(exc)
        log.warning("attachment fetch refused by Gmail", mailboxId=mailbox_id, status=info.status,
                    reason=info.reason, outcome=info.outcome.value)
        if info.outcome in (Outcome.NOT_FOUND, Outcome.REJECTED):
            raise AttachmentNotFound(attachment_id) from None  # Gmail: gone, or "Invalid attachment token"
        if info.outcome is Outcome.REAUTH:
            raise MailboxReauthRequired(mailbox_id) from None
        raise GmailBusy(info.outcome.value) from None
    data = resp.get("data") if isinstance(resp, dict) else None
    if not isinstance(data, str):
        return b""
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def fetch_attachment(account_id: str, conversation_id: str, message_id: str, attachment_id: str) -> AttachmentContent:
    """The attachment's bytes (streamed) with its name and type, from wherever the message's source keeps them."""
    msg = _message(account_id, conversation_id, message_id)
    meta = _meta(msg, attachment_id)
    filename, mime_type = str(meta.get("filename") or ""), str(meta.get("mimeType") or "")
    size = _size(meta)
    if size > MAX_SERVED_BYTES:
        raise AttachmentTooLarge(attachment_id)
    kept = stored_attachment(meta)  # R32: the bytes kept when it was logged (no Gmail call, no mailbox needed)
    if kept is not None:
        size, chunks = len(kept), iter((kept,))
    elif msg.source == "auto_bcc":
        try:
            chunks = store.stream(account_id, conversation_id, message_id, attachment_id, size)
        except store.StoredAttachmentMissing as exc:
            log.error("stored attachment bytes missing", accountId=account_id, messageId=message_id, chunk=str(exc))
            raise AttachmentNotFound(attachment_id) from None
    else:
        mailbox_id = _mailbox_of(account_id, msg, meta.get("mailboxId"))
        gmail_id = (msg.gmailIds or {}).get(mailbox_id) or msg.gmailMessageId
        if not gmail_id:
            raise AttachmentNotFound(message_id)
        data = _from_gmail(mailbox_id, gmail_id, attachment_id)
        if len(data) > MAX_SERVED_BYTES:
            raise AttachmentTooLarge(attachment_id)
        size, chunks = len(data), iter((data,))
    log.info("attachment served", accountId=account_id, messageId=message_id, source=msg.source, bytes=size)
    return AttachmentContent(filename=filename, mime_type=mime_type, size=size, chunks=chunks)


def _size(meta: dict[str, Any]) -> int:
    try:
        return max(0, int(meta.get("size") or 0))
    except (TypeError, ValueError):
        return 0
