"""Gmail's batch endpoint: `POST /batch/gmail/v1` (and the global `/batch`).

The body is multipart/mixed; each part is `application/http` holding one
request line, headers and body (google-api-python-client writes bare LF line
endings inside parts). Each inner call runs through the same pipeline as a
plain call (its own token, quota, faults), so a part can fail on its own —
401 for an expired token, which the client refreshes and re-sends in a second
batch. An inner request without Authorization uses the outer request's, as at
Google. The answer is multipart/mixed with `Content-ID: <response-…>` per part.
"""

from __future__ import annotations

import secrets
import time
import urllib.parse
from http import HTTPStatus

import flask

from simulator.context import SimContext, ctx
from simulator.errors import GmailError, injected
from simulator.gmail_api import Call, Reply, dispatch, split_head, split_multipart

MAX_CALLS = 100

bp = flask.Blueprint("batch", __name__)


def _error(err: GmailError) -> flask.Response:
    return flask.Response(err.to_bytes(), status=err.code, mimetype="application/json")


@bp.route("/batch/gmail/v1", methods=["POST"])
@bp.route("/batch", methods=["POST"])
def batch() -> flask.Response:
    request = flask.request
    ctype = request.headers.get("Content-Type", "")
    if not ctype.lower().startswith("multipart/mixed"):
        return _error(GmailError(400, "Invalid batch request: Content-Type must be multipart/mixed", "badRequest"))
    try:
        parts = split_multipart(request.get_data(), ctype)
    except GmailError as err:
        return _error(err)
    if len(parts) > MAX_CALLS:
        return _error(GmailError(400, f"Too many requests in batch. Max is {MAX_CALLS}.", "badRequest"))
    context = ctx()
    latency, code = context.faults.for_call("batch", "batch", wildcard=False)
    if latency:
        time.sleep(latency)
    if code is not None:
        return _error(injected(code))
    outer_auth = request.headers.get("Authorization")
    boundary = "batch_" + secrets.token_urlsafe(16)
    out: list[bytes] = []
    for headers, content in parts:
        reply = _inner(context, content, outer_auth, request.host_url)
        cid = headers.get("content-id", "")
        rid = f"<response-{cid[1:]}" if cid.startswith("<") else f"<response-{cid}>"
        reason = HTTPStatus(reply.status).phrase if reply.status in HTTPStatus._value2member_map_ else ""
        head = [
            f"--{boundary}",
            "Content-Type: application/http",
            f"Content-ID: {rid}",
            "",
            f"HTTP/1.1 {reply.status} {reason}",
            *(f"{k}: {v}" for k, v in reply.headers.items()),
            f"Content-Length: {len(reply.body)}",
            "",
            "",
        ]
        out.append("\r\n".join(head).encode() + reply.body + b"\r\n")
    body = b"".join(out) + f"--{boundary}--\r\n".encode()
    return flask.Response(body, status=200, content_type=f"multipart/mixed; boundary={boundary}")


def _inner(context: SimContext, content: bytes, outer_auth: str | None, host_url: str) -> Reply:
    line, _, rest = content.partition(b"\n")
    try:
        method, target, _version = line.decode("utf-8").strip().split(" ", 2)
    except ValueError:
        err = GmailError(400, "Invalid batch part: no request line", "badRequest")
        return Reply(400, err.to_bytes(), {"Content-Type": "application/json; charset=UTF-8"})
    headers, body = split_head(rest)
    if "authorization" not in headers and outer_auth:
        headers["authorization"] = outer_auth
    parsed = urllib.parse.urlsplit(target)
    call = Call(
        method=method.upper(),
        path=urllib.parse.unquote(parsed.path),
        query=urllib.parse.parse_qs(parsed.query, keep_blank_values=True),
        headers=headers,
        body=body,
        host_url=host_url,
    )
    return dispatch(context, call)
