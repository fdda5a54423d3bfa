"""The `auto_bcc` function (R16, R16b): log a copy the rep Bcc'd to their Auto BCC address.

  POST /?to=<auto bcc address>     body: the raw RFC 822 message
  Content-Type: message/rfc822     Authorization: Bearer <inbound API key>

An inbound-mail webhook (SendGrid/Mailgun inbound parse, an SES action…) calls
it for each copy. This adapter checks the HTTP side (route, method, key, the
`to` parameter, size and type of the body) and calls the one operation,
`shared.auto_bcc.log_copy.log_copy`, which decides everything else before it
writes anything; its refusals (shared.core.refusal.Refusal subclasses) carry
their status and code, and `handles_errors` answers them by class.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.http.answers import ApiError, handles_errors, json_response, require_bearer
from shared.http.validate import invalid, is_address

if TYPE_CHECKING:
    import flask

INBOUND_KEY_SECRET = "inbound-api-key"
MAX_MESSAGE_BYTES = 30 * 1024 * 1024  # a 25 MB attachment (R15) grows by a third in base64


@handles_errors
def handle(request: flask.Request) -> Any:
    from shared.auto_bcc.log_copy import log_copy
    from shared.storage.inflight import hold

    if (request.path.rstrip("/") or "/") != "/":
        raise ApiError(404, "not_found", f"no route {request.path}")
    if request.method != "POST":
        raise ApiError(405, "method_not_allowed", "POST the raw message to /?to=<auto bcc address>", allow="POST")
    require_bearer(request, INBOUND_KEY_SECRET)
    to = request.args.get("to", "").strip()
    if not to or not is_address(to):
        raise invalid("to", "must be the Auto BCC address the copy was sent to")
    with hold(request.content_length or 0):  # R32: large copies take turns within the instance's memory
        raw = _read_message(request)
        logged = log_copy(to, raw)  # its refusals carry their status and code: handles_errors answers them
    return json_response({"messageId": logged.message_id, "conversationId": logged.conversation_id,
                          "contactId": logged.contact_id, "duplicate": not logged.created,
                          "truncated": logged.truncated}, 201 if logged.created else 200)


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
