"""The `auto_bcc` function (R16): log a copy the rep Bcc'd to their Auto BCC address.

  POST /?to=<auto bcc address>     body: the raw RFC 822 message
  Content-Type: message/rfc822     Authorization: Bearer <inbound API key>

An inbound-mail webhook (SendGrid/Mailgun inbound parse, an SES action…) calls
it for each copy. The address names the CRM user (route `sync_auto_bcc/{token}`);
the first external recipient becomes the contact (created if absent, the only
place the sync creates contacts) and the copy is logged as outbound in that
contact's conversation with id `ab_<sha256(Message-ID)>`, so a webhook that
delivers the same copy twice logs it once. Later replies from that contact
reach the rep's Gmail and sync as usual (R7).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.core import log, paths
from shared.core.config import get_config
from shared.http.answers import ApiError, handles_errors, json_response, require_bearer
from shared.http.validate import invalid, is_address

if TYPE_CHECKING:
    import flask

INBOUND_KEY_SECRET = "inbound-api-key"
MAX_MESSAGE_BYTES = 30 * 1024 * 1024  # a 25 MB attachment (R15) grows by a third in base64


@handles_errors
def handle(request: flask.Request) -> Any:
    from shared.auto_bcc.address import token_from_address
    from shared.auto_bcc.message import MalformedMessage, parse_copy, pick_recipient
    from shared.core.events import CrmEvent, publish
    from shared.core.models import Message
    from shared.sync.contacts import create_contact_if_absent, find_user_emails
    from shared.sync.conversations import store_message, touch_conversation

    if (request.path.rstrip("/") or "/") != "/":
        raise ApiError(404, "not_found", f"no route {request.path}")
    if request.method != "POST":
        raise ApiError(405, "method_not_allowed", "POST the raw message to /?to=<auto bcc address>", allow="POST")
    require_bearer(request, INBOUND_KEY_SECRET)

    # ---- which CRM user: the Auto BCC address names it
    domain = get_config().auto_bcc_domain
    to = request.args.get("to", "").strip()
    if not to or not is_address(to):
        raise invalid("to", "must be the Auto BCC address the copy was sent to")
    token = token_from_address(to, domain)
    route = _route(token) if token else None
    if route is None:
        raise ApiError(404, "not_found", "unknown Auto BCC address")
    account_id, user_id = route["accountId"], route["userId"]
    ids = {"accountId": account_id, "userId": user_id}
    _require_connected(account_id, user_id)

    # ---- the message
    raw = _read_message(request)
    try:
        copy = parse_copy(raw)
    except MalformedMessage as err:
        raise ApiError(400, "malformed_message", str(err)) from None
    suffix = "@" + domain.lower()
    internal = find_user_emails(account_id, [a.email for a in copy.recipients()])
    recipient = pick_recipient(copy, lambda a: a.endswith(suffix), internal)
    if recipient is None:
        raise ApiError(422, "no_recipient", "the copy has no external recipient to log it under")

    # ---- log it (create-if-absent: a second delivery of the same copy changes nothing)
    contact = create_contact_if_absent(account_id, recipient.email, recipient.name, source="auto_bcc")
    conversation_id = contact.id
    message_id = paths.auto_bcc_message_doc_id(copy.message_id)
    doc = Message(
        direction="outbound", source="auto_bcc", contactId=contact.id, userId=user_id,
        from_=copy.sender.email, to=[a.email for a in copy.to],
        cc=[a.email for a in copy.cc if not a.email.endswith(suffix)],
        bcc=[a.email for a in copy.bcc if not a.email.endswith(suffix)],
        subject=copy.subject, text=copy.text, html=copy.html, snippet=copy.snippet, sentAt=copy.sent_at,
        rfc822MessageId=copy.message_id if copy.message_id.startswith("<") else None,
        inReplyTo=copy.in_reply_to, references=copy.references, isForward=copy.is_forward,
        attachments=copy.attachments,
    )
    created = store_message(account_id, conversation_id, message_id, doc)
    touch_conversation(account_id, conversation_id, contact.id, copy.sent_at, copy.snippet, "outbound")
    if created:
        publish([CrmEvent(type="message.synced", accountId=account_id, userId=user_id, contactId=contact.id,
                          conversationId=conversation_id, messageId=message_id, direction="outbound",
                          source="auto_bcc")])
    log.info("auto bcc copy logged", contactId=contact.id, messageId=message_id, created=created,
             bytes=len(raw), **ids)
    return json_response({"messageId": message_id, "conversationId": conversation_id, "contactId": contact.id,
                          "duplicate": not created}, 201 if created else 200)


def _route(token: str) -> dict[str, Any] | None:
    from shared.core.clients import firestore_client

    snap = firestore_client().collection(paths.AUTO_BCC).document(token).get()
    data = snap.to_dict() if snap.exists else None
    return data if data and data.get("accountId") and data.get("userId") else None


def _require_connected(account_id: str, user_id: str) -> None:
    """The address belongs to a user who has Gmail connected (R16: each *connected* user has one)."""
    from shared.connect.mailboxes import get_link

    if get_link(account_id, user_id) is None:
        raise ApiError(409, "not_connected", "the user of this Auto BCC address has no connected Gmail")


def _read_message(request: flask.Request) -> bytes:
    length = request.content_length
    if length is not None and length > MAX_MESSAGE_BYTES:
        raise ApiError(413, "too_large", f"the message exceeds {MAX_MESSAGE_BYTES} bytes")
    if (request.mimetype or "").lower() != "message/rfc822":
        raise ApiError(415, "unsupported_media_type", "Content-Type must be message/rfc822")
    raw = request.stream.read(MAX_MESSAGE_BYTES + 1)
    if len(raw) > MAX_MESSAGE_BYTES:
        raise ApiError(413, "too_large", f"the message exceeds {MAX_MESSAGE_BYTES} bytes")
    return bytes(raw)
