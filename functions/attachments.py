"""The `attachments` function (R20): the bytes of an attachment of a logged message, for the CRM.

  GET /?accountId&conversationId&messageId&attachmentId      Authorization: Bearer <CRM API key>
  -> 200, the bytes (streamed); Content-Type: the attachment's type;
     Content-Disposition: attachment; filename*=UTF-8''<name>;
     Content-Security-Policy: sandbox; X-Content-Type-Options: nosniff

The type is the sender's to choose (`text/html`, `image/svg+xml`…), so every
answer with bytes carries `Content-Security-Policy: sandbox` (opened in a
browser, the document runs no script and has an opaque origin: it cannot act
as the CRM's origin) and `nosniff`.

`attachmentId` is the message's `attachments[i].gmailAttachmentId`. Errors:
400 invalid_request (a missing or malformed parameter), 401, 404 not_found
(no such message or attachment in this account), 413 too_large (above
25 MB), 409 attachment_pending (a
CRM-sent message whose attachment ids the sync has not recorded yet: read the
message again shortly), 409 not_connected / reauth_required (the mailbox the
message came from), 503 gmail_unavailable
when Gmail is busy. This adapter checks the HTTP side and calls
`shared.attachments.fetch.fetch_attachment`, whose refusals carry their answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from shared.http.answers import ApiError, handles_errors, require_bearer
from shared.http.validate import invalid, require_id

if TYPE_CHECKING:
    import flask

CRM_KEY_SECRET = "crm-api-key"
# Gmail's attachment ids are long opaque base64url strings; Auto BCC copies' are `ab_<n>`.
_ATTACHMENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,4096}$")
_MIME_TYPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$")
_FIRESTORE_RESERVED = re.compile(r"^(\.|\.\.|__.*__)$")
PARAMS = ("accountId", "conversationId", "messageId")


@handles_errors
def handle(request: flask.Request) -> Any:
    from shared.attachments.fetch import fetch_attachment

    if (request.path.rstrip("/") or "/") != "/":
        raise ApiError(404, "not_found", f"no route {request.path}")
    if request.method not in ("GET", "HEAD"):
        raise ApiError(405, "method_not_allowed", "GET /?accountId&conversationId&messageId&attachmentId",
                       allow="GET")
    require_bearer(request, CRM_KEY_SECRET)
    query = {k: request.args.get(k) for k in (*PARAMS, "attachmentId")}
    ids = [require_id(query, k) for k in PARAMS]
    for name, value in zip(PARAMS, ids, strict=True):
        if _FIRESTORE_RESERVED.match(value):
            raise invalid(name, "is not a valid id")
    attachment_id = query["attachmentId"]
    if not attachment_id or not _ATTACHMENT_ID.match(attachment_id):
        raise invalid("attachmentId", "must be the gmailAttachmentId of one of the message's attachments")

    # its refusals (AttachmentUnavailable) carry their status, code and text: handles_errors answers them
    content = fetch_attachment(ids[0], ids[1], ids[2], attachment_id)
    return _bytes_response(content.chunks, content.size, content.filename, content.mime_type)


def content_disposition(filename: str) -> str:
    """RFC 6266 / RFC 5987: the name percent-encoded as UTF-8 (no quoting or header injection possible)."""
    name = filename.replace("/", "_").replace("\\", "_").strip() or "attachment"
    return "attachment; filename*=UTF-8''" + quote(name.encode("utf-8", "replace"), safe="")


def _bytes_response(chunks: Iterator[bytes], size: int, filename: str, mime_type: str) -> Any:
    import flask

    resp = flask.Response(chunks, status=200, mimetype=None, direct_passthrough=True)
    resp.headers["Content-Type"] = mime_type if _MIME_TYPE.match(mime_type or "") else "application/octet-stream"
    resp.headers["Content-Disposition"] = content_disposition(filename)
    resp.headers["Content-Length"] = str(size)
    resp.headers.update(BYTES_HEADERS)
    return resp


# On every answer that carries an attachment's bytes: its type is the sender's choice.
BYTES_HEADERS = {
    "Content-Security-Policy": "sandbox",  # no script, opaque origin, if a browser renders it anyway
    "X-Content-Type-Options": "nosniff",  # never rendered as what it claims to be
    "Cache-Control": "private, no-store",
}
