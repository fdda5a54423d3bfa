"""The `auto_bcc` function (R16, R16b): log a copy the rep Bcc'd to their Auto BCC address.

  POST /?to=<auto bcc address>     body: the raw RFC 822 message
  Content-Type: message/rfc822     Authorization: Bearer <inbound API key>

An inbound-mail webhook (SendGrid/Mailgun inbound parse, an SES action…) calls
it for each copy. This adapter checks the HTTP side and calls the one
operation, `shared.auto_bcc.log_copy.log_copy`, which decides everything else
before it writes anything; its refusals (shared.core.refusal.Refusal
subclasses) carry their status and code, and `handles_errors` answers them by
class.

Nothing reads the body before it is known to be wanted (issue 23: 20
concurrent 30 MB bodies read first exceeded an instance's memory): route,
method, key and `to`; the declared size (413 by Content-Length); the type;
the address's route (404 unknown address, one read); the address's rate
limit (429 with `retryAfterSeconds`, shared/auto_bcc/rate_limit.py); only
then the body, read with a cap (413 past it). A refusal is sent as a stream
(`_unread`): functions-framework reads the whole request body before it sends
any other answer, which would undo all of the above.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.http.answers import ApiError, handles_errors, json_response, require_bearer
from shared.http.validate import invalid, is_address

if TYPE_CHECKING:
    import flask

INBOUND_KEY_SECRET = "inbound-api-key"
MAX_MESSAGE_BYTES = 30 * 1024 * 1024  # a 25 MB attachment (R15) grows by a third in base64
READ_CHUNK_BYTES = 1024 * 1024


def handle(request: flask.Request) -> Any:
    resp = _handle(request)
    return _unread(resp) if resp.status_code >= 400 else resp


def _unread(resp: Any) -> Any:
    """The refusal as a streamed answer. functions-framework's `read_request` hook calls
    `request.get_data()` (the whole body, into memory) before it sends an answer that is not streamed
    ("to avoid connection errors"); for a streamed one it does not, so a body refused unread stays
    unread (the server discards what the client still sends, without keeping it)."""
    body = resp.get_data()
    resp.response = iter((body,))
    resp.headers["Content-Length"] = str(len(body))
    return resp



@handles_errors
def _handle(request: flask.Request) -> Any:
    from shared.auto_bcc.log_copy import find_route, log_copy
    from shared.auto_bcc.rate_limit import throttle
    from shared.storage.inflight import hold

    if (request.path.rstrip("/") or "/") != "/":
        raise ApiError(404, "not_found", f"no route {request.path}")
    if request.method != "POST":
        raise ApiError(405, "method_not_allowed", "POST the raw message to /?to=<auto bcc address>", allow="POST")
    require_bearer(request, INBOUND_KEY_SECRET)
    to = request.args.get("to", "").strip()
    if not to or not is_address(to):
        raise invalid("to", "must be the Auto BCC address the copy was sent to")
    _check_declared(request)
    route = find_route(to)  # 404 unknown address: one read, the body still unread
    throttle(to)  # 429 past the address's copies a minute
    with hold(request.content_length or 0):  # R32: large copies take turns within the instance's memory
        raw = _read_message(request)
        # its refusals carry their status and code: handles_errors answers them
        logged = log_copy(to, raw, route=route)
    return json_response({"messageId": logged.message_id, "conversationId": logged.conversation_id,
                          "contactId": logged.contact_id, "duplicate": not logged.created,
                          "truncated": logged.truncated}, 201 if logged.created else 200)


def _check_declared(request: flask.Request) -> None:
    """What the headers say, before anything is read: the size (Content-Length) and the type."""
    length = request.content_length
    if length is not None and length > MAX_MESSAGE_BYTES:
        raise ApiError(413, "too_large", f"the message exceeds {MAX_MESSAGE_BYTES} bytes")
    if (request.mimetype or "").lower() != "message/rfc822":
        raise ApiError(415, "unsupported_media_type", "Content-Type must be message/rfc822")


def _read_message(request: flask.Request) -> bytes:
    """The body, a chunk at a time, refused as soon as it passes the cap (a body without a
    Content-Length, chunked, is never read past MAX_MESSAGE_BYTES + 1)."""
    raw = bytearray()
    while True:
        chunk = request.stream.read(min(READ_CHUNK_BYTES, MAX_MESSAGE_BYTES + 1 - len(raw)))
        if not chunk:
            break
        raw += chunk
        if len(raw) > MAX_MESSAGE_BYTES:
            raise ApiError(413, "too_large", f"the message exceeds {MAX_MESSAGE_BYTES} bytes")
    return bytes(raw)
