"""Gmail API v1 (the subset the project uses) over the simulator's mailboxes.

Every call, whether it comes as its own HTTP request or as a part of a batch,
goes through `dispatch`: route → bearer token (401) → userId and scope (403)
→ call counted → injected fault → per-user rate (429) → quota units → the
method. Paths, parameters, JSON shapes and error bodies are Google's; the
scopes each method accepts are read from the discovery document shipped in
google-api-python-client, the same document the project's client is built from.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
import secrets
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from http import HTTPStatus
from typing import Any

from simulator import errors, fields, mime
from simulator.context import SimContext, Upload
from simulator.errors import GmailError
from simulator.quota import USER_LIMIT_REASON
from simulator.search import QueryError, compile_query
from simulator.state import (
    HISTORY_TYPES,
    LABEL_ACTIONS,
    LABEL_IDS,
    SYSTEM_LABELS,
    HistoryRecord,
    InvalidArgument,
    NotFound,
    StoredMessage,
    Watch,
)
from simulator.tokens import Grant

MAX_UPLOAD_BYTES = 36_700_160  # discovery document: messages.send mediaUpload.maxSize
METADATA_SCOPE = "https://www.googleapis.com/auth/gmail.metadata"
_HEX_ID = re.compile(r"[0-9a-fA-F]{1,32}")


@dataclass
class Call:
    """One Gmail API request, independent of how it arrived (plain HTTP or a batch part)."""

    method: str
    path: str  # decoded, e.g. /gmail/v1/users/me/messages/abc
    query: dict[str, list[str]]
    headers: Mapping[str, str]  # lower-cased names
    body: bytes = b""
    host_url: str = "http://localhost/"
    metadata_only: bool = False  # the token has only gmail.metadata: no bodies, no `q`
    trimmed: bool = False  # the call has a `fields` selection: the answer is built as an object

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def args(self, name: str) -> list[str]:
        return [v for raw in self.query.get(name, []) for v in raw.split(",") if v]

    def json(self) -> dict[str, Any]:
        if not self.body.strip():
            return {}
        try:
            obj = json.loads(self.body)
        except ValueError:
            raise errors.invalid("Invalid JSON payload received.") from None
        if not isinstance(obj, dict):
            raise errors.invalid("Invalid JSON payload received. Expected an object.")
        return obj


_JSON_TYPE = {"Content-Type": "application/json; charset=UTF-8"}


@dataclass
class Reply:
    """An answer. A JSON answer keeps its object (`obj`) until `dispatch` has applied `fields` to it."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    obj: Any = None

    @classmethod
    def json(cls, obj: Any, status: int = 200) -> Reply:
        return cls(status, b"", dict(_JSON_TYPE), obj)

    def finish(self, selection: fields.Selection | None) -> Reply:
        """Encode the JSON object, trimmed to the `fields` selection of the call (2xx answers only)."""
        if self.obj is not None:
            obj = fields.apply(self.obj, selection) if selection is not None and self.status < 300 else self.obj
            self.body, self.obj = json.dumps(obj).encode(), None
        elif selection is not None and self.status < 300 and self.body:
            self.body = json.dumps(fields.apply(json.loads(self.body), selection)).encode()
        return self


Handler = Callable[[SimContext, Call, str, dict[str, str]], Reply]


@dataclass(frozen=True)
class Route:
    http_method: str
    pattern: re.Pattern[str]
    method_id: str
    handler: Handler

    @property
    def short(self) -> str:
        name = self.method_id.removeprefix("gmail.users.")
        return name.removeprefix("messages.") if name.startswith("messages.attachments") else name


ROUTES: list[Route] = []
_USER = r"^/(?:upload/|resumable/upload/)?gmail/v1/users/(?P<userId>[^/]+)"


def route(http_method: str, path: str, method_id: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        ROUTES.append(Route(http_method, re.compile(_USER + path + "$"), method_id, fn))
        return fn

    return register


@dataclass(frozen=True)
class Discovery:
    """What the simulator reads from the shipped discovery document."""

    scopes: dict[str, frozenset[str]]  # method id -> scopes it accepts
    responses: dict[str, str]  # method id -> response schema name
    schemas: dict[str, Any]


@lru_cache(maxsize=1)
def discovery() -> Discovery:
    from googleapiclient.discovery_cache import get_static_doc

    doc = json.loads(get_static_doc("gmail", "v1") or "{}")
    scopes: dict[str, frozenset[str]] = {}
    responses: dict[str, str] = {}

    def walk(node: dict[str, Any]) -> None:
        for m in node.get("methods", {}).values():
            scopes[m["id"]] = frozenset(m.get("scopes", []))
            if "response" in m:
                responses[m["id"]] = m["response"]["$ref"]
        for child in node.get("resources", {}).values():
            walk(child)

    walk(doc)
    return Discovery(scopes, responses, doc.get("schemas", {}))


# -- the pipeline -----------------------------------------------------------------------


def dispatch(context: SimContext, call: Call) -> Reply:
    try:
        return _dispatch(context, call)
    except GmailError as err:
        return Reply(err.code, err.to_bytes(), {"Content-Type": "application/json; charset=UTF-8", **err.headers})


def _dispatch(context: SimContext, call: Call) -> Reply:
    found = None
    for r in ROUTES:
        if r.http_method == call.method:
            m = r.pattern.match(call.path)
            if m:
                found = (r, m.groupdict())
                break
    if found is None:
        raise GmailError(404, f"Method not found: {call.method} {call.path}", "notFound")
    r, params = found
    grant = _authenticate(context, call)
    address = _mailbox_of(context, grant, params["userId"])
    allowed = discovery().scopes.get(r.method_id, frozenset())
    if allowed and not (grant.scopes & allowed):
        raise errors.insufficient_scope()
    selection = _fields(call, r.method_id)
    if "upload_id" not in call.query:  # a resumable upload's chunks belong to the call that opened it
        _admit(context, r, address)
    call.metadata_only = grant.scopes <= {METADATA_SCOPE}
    try:
        call.trimmed = selection is not None
        return r.handler(context, call, address, params).finish(selection)
    except NotFound:  # HistoryExpired included: Gmail answers an expired startHistoryId with 404
        raise errors.not_found() from None
    except (InvalidArgument, QueryError) as exc:
        raise errors.invalid(str(exc)) from None


def _fields(call: Call, method_id: str) -> fields.Selection | None:
    """The `fields` selection of the call, checked against the method's response schema (400 if invalid)."""
    text = call.arg("fields")
    if not text:
        return None
    d = discovery()
    try:
        selection = fields.parse(text)
        fields.check(selection, d.responses.get(method_id, ""), d.schemas)
    except fields.FieldsError as exc:
        raise errors.invalid(str(exc)) from None
    return selection


def _admit(context: SimContext, r: Route, address: str) -> None:
    """Count the call, inject a fault if one is drawn, then charge quota (429 when over the rate)."""
    context.quota.count_call(address, r.short)
    latency, code = context.faults.for_call(r.method_id, r.short)
    if latency:
        time.sleep(latency)
    if code is not None:
        raise errors.injected(code)
    refused = context.quota.admit(address, r.short)
    if refused is not None:
        retry = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=refused.wait)
        if refused.reason == USER_LIMIT_REASON:
            raise GmailError(
                429, f"User-rate limit exceeded.  Retry after {_iso(retry)}", refused.reason, domain="usageLimits"
            )
        raise GmailError(429, "Rate Limit Exceeded", refused.reason, domain="usageLimits")


def _authenticate(context: SimContext, call: Call) -> Grant:
    auth = call.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise errors.unauthenticated(missing=True)
    grant = context.tokens.authenticate(token.strip())
    if grant is None:
        raise errors.unauthenticated(missing=False)
    return grant


def _mailbox_of(context: SimContext, grant: Grant, user_id: str) -> str:
    if user_id != "me" and user_id.lower() != grant.address.lower():
        raise GmailError(403, f"Delegation denied for {grant.address}", "forbidden")
    if context.state.get(grant.address) is None:
        raise GmailError(400, "Mail service not enabled", "failedPrecondition", status="FAILED_PRECONDITION")
    return grant.address.lower()


def _iso(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _int_arg(call: Call, name: str, default: int, lo: int, hi: int) -> int:
    raw = call.arg(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise errors.invalid(f"Invalid value for {name}: {raw}") from None
    if value < lo:
        raise errors.invalid(f"Invalid value for {name}: {raw}")
    return min(value, hi)


# -- rendering --------------------------------------------------------------------------


def render_message(
    msg: StoredMessage, labels: list[str], history_id: int, fmt: str, headers: list[str] | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {"id": msg.id, "threadId": msg.thread_id}
    if labels:
        out["labelIds"] = labels
    if fmt == "raw":
        out["raw"] = msg.raw_b64()
    out["snippet"] = msg.parsed.snippet
    if fmt == "full":
        out["payload"] = msg.parsed.payload
    elif fmt == "metadata":
        p = msg.parsed.payload
        hs = p["headers"]
        if headers:
            wanted = {h.lower() for h in headers}
            hs = [h for h in hs if h["name"].lower() in wanted]
        out["payload"] = {
            "partId": "", "mimeType": p["mimeType"], "filename": p["filename"], "headers": hs, "body": {"size": 0}
        }
    out["sizeEstimate"] = len(msg.raw)
    out["historyId"] = str(history_id)
    out["internalDate"] = str(msg.internal_date)
    return out


def full_message_json(msg: StoredMessage, labels: list[str], history_id: int) -> bytes:
    """`json.dumps(render_message(..., "full"))`, byte for byte, around the message's cached payload JSON.

    The payload never changes once stored; encoding it again for every
    messages.get was half of what a call cost.
    """
    head: dict[str, Any] = {"id": msg.id, "threadId": msg.thread_id}
    if labels:
        head["labelIds"] = labels
    head["snippet"] = msg.parsed.snippet
    tail = {"sizeEstimate": len(msg.raw), "historyId": str(history_id), "internalDate": str(msg.internal_date)}
    return f'{json.dumps(head)[:-1]}, "payload": {msg.payload_json()}, {json.dumps(tail)[1:]}'.encode()


def _format(call: Call, allowed: tuple[str, ...]) -> str:
    fmt = (call.arg("format") or "full").lower()
    if fmt not in allowed:
        raise errors.invalid(f"Invalid value at 'format' ({fmt})")
    if call.metadata_only and fmt in ("full", "raw"):
        raise GmailError(403, f"Metadata scope doesn't allow format {fmt.upper()}", "forbidden")
    return fmt


# -- users ------------------------------------------------------------------------------


@route("GET", "/profile", "gmail.users.getProfile")
def get_profile(context: SimContext, call: Call, address: str, p: dict[str, str]) -> Reply:
    with context.state.lock:
        box = context.state.require(address)
        return Reply.json(
            {
                "emailAddress": box.address,
                "messagesTotal": len(box.messages),
                "threadsTotal": len(box.threads),
                "historyId": str(box.history_id),
            }
        )


@route("POST", "/watch", "gmail.users.watch")
def watch(context: SimContext, call: Call, address: str, p: dict[str, str]) -> Reply:
    body = call.json()
    topic = body.get("topicName")
    if not isinstance(topic, str) or not topic:
        raise errors.invalid("Invalid topicName: must be set")
    project = context.config.project_id
    m = re.fullmatch(r"projects/([^/]+)/topics/([^/]+)", topic)
    if not m or m[1] != project:
        raise errors.invalid(f"Invalid topicName does not match projects/{project}/topics/*")
    labels = body.get("labelIds") or []
    if not isinstance(labels, list) or any(lbl not in LABEL_IDS for lbl in labels):
        raise errors.invalid("Invalid label in labelIds")
    behavior = body.get("labelFilterBehavior") or body.get("labelFilterAction") or "include"
    if behavior not in ("include", "exclude"):
        raise errors.invalid(f"Invalid labelFilterBehavior: {behavior}")
    pubsub = context.notifier.pubsub
    if pubsub is not None:
        try:
            exists = pubsub.topic_exists(topic)
        except OSError:
            raise errors.injected(503) from None
        if not exists:
            raise GmailError(404, f"Resource not found (resource={m[2]}).", "notFound")
    # Gmail's watch lasts 7 days; `watchLifetimeSeconds` shortens it (a soak lives through many lifetimes).
    expiration = int(time.time() * 1000) + context.settings.watch_lifetime_seconds * 1000
    box = context.state.set_watch(address, Watch(topic, tuple(labels), behavior, expiration))
    return Reply.json({"historyId": str(box.history_id), "expiration": str(expiration)})


@route("POST", "/stop", "gmail.users.stop")
def stop(context: SimContext, call: Call, address: str, p: dict[str, str]) -> Reply:
    context.state.set_watch(address, None)
    return Reply(204)


# -- history ------------------------------------------------------------------------------

_HISTORY_KEYS = {
    "messageAdded": "messagesAdded",
    "messageDeleted": "messagesDeleted",
    "labelAdded": "labelsAdded",
    "labelRemoved": "labelsRemoved",
}


def history_record(r: HistoryRecord) -> dict[str, Any]:
    """One `History` as Gmail writes it: every message the operation touched, and each change under its kind.

    labelsAdded / labelsRemoved: `{message: {id, threadId, labelIds}, labelIds}`,
    the message's labels after the operation (so a client needs no
    messages.get); messagesAdded: `{message: {id, threadId, labelIds}}`;
    messagesDeleted: `{message: {id, threadId}}` (the message is gone).
    """
    out: dict[str, Any] = {"id": str(r.id)}
    refs: dict[str, dict[str, str]] = {}
    by_key: dict[str, list[dict[str, Any]]] = {}
    for c in r.changes:
        ref = {"id": c.message["id"], "threadId": c.message["threadId"]}
        refs.setdefault(ref["id"], ref)
        if c.kind == "messageDeleted":
            entry: dict[str, Any] = {"message": dict(ref)}
        elif c.kind == "messageAdded":
            entry = {"message": c.message}
        else:
            entry = {"message": c.message, "labelIds": list(c.labels)}
        by_key.setdefault(_HISTORY_KEYS[c.kind], []).append(entry)
    out["messages"] = list(refs.values())
    for key in _HISTORY_KEYS.values():
        if key in by_key:
            out[key] = by_key[key]
    return out


@route("GET", "/history", "gmail.users.history.list")
def history_list(context: SimContext, call: Call, address: str, p: dict[str, str]) -> Reply:
    start_raw = call.arg("startHistoryId")
    if start_raw is None:
        raise errors.invalid("Required parameter: startHistoryId")
    if not start_raw.isdigit():
        raise errors.invalid("Invalid startHistoryId")
    types = frozenset(call.args("historyTypes"))
    bad = types - set(HISTORY_TYPES)
    if bad:
        raise errors.invalid(f"Invalid value at 'history_types' ({sorted(bad)[0]})")
    limit = _int_arg(call, "maxResults", 100, 1, 500)
    token = call.arg("pageToken")
    after = 0
    if token:
        if not token.isdigit():
            raise errors.invalid("Invalid pageToken")
        after = int(token)
    records, more, history_id = context.state.history(
        address, int(start_raw), types, call.arg("labelId"), after, limit
    )
    out: dict[str, Any] = {}
    if records:
        out["history"] = [history_record(r) for r in records]
    if more:
        out["nextPageToken"] = str(records[-1].id)
    out["historyId"] = str(history_id)
    return Reply.json(out)


# -- messages -----------------------------------------------------------------------------


@route("GET", "/messages", "gmail.users.messages.list")
def messages_list(context: SimContext, call: Call, address: str, p: dict[str, str]) -> Reply:
    limit = _int_arg(call, "maxResults", 100, 1, 500)
    offset = _page_offset(call)
    found = _search(context, call, address)
    page = found[offset : offset + limit]
    out: dict[str, Any] = {}
    if page:
        out["messages"] = [m.ref() for m in page]
    if offset + limit < len(found):
        out["nextPageToken"] = str(offset + limit)
    out["resultSizeEstimate"] = len(found)
    return Reply.json(out)


def _search(context: SimContext, call: Call, address: str) -> list[StoredMessage]:
    """Messages matching labelIds, q and includeSpamTrash, newest first (messages.list, threads.list)."""
    q = call.arg("q")
    if q and call.metadata_only:
        raise GmailError(403, "Metadata scope does not support 'q' parameter", "forbidden")
    predicate, reaches_bin = compile_query(q) if q else (None, False)
    include_bin = (call.arg("includeSpamTrash") or "false").lower() == "true" or reaches_bin
    return context.state.list_messages(address, call.args("labelIds"), predicate, include_bin)


def _page_offset(call: Call) -> int:
    token = call.arg("pageToken")
    if not token:
        return 0
    if not token.isdigit():
        raise errors.invalid("Invalid pageToken")
    return int(token)


@route("GET", "/messages/(?P<id>[^/]+)", "gmail.users.messages.get")
def messages_get(context: SimContext, call: Call, address: str, p: dict[str, str]) -> Reply:
    fmt = _format(call, ("minimal", "full", "raw", "metadata"))
    if not _HEX_ID.fullmatch(p["id"]):
        raise errors.invalid("Invalid id value")
    msg, labels, hid = context.state.message(address, p["id"])
    if fmt == "full" and not call.trimmed:  # the sync's and the bench's call: the payload's JSON is cached
        return Reply(200, full_message_json(msg, labels, hid), dict(_JSON_TYPE))
    return Reply.json(render_message(msg, labels, hid, fmt, call.args("metadataHeaders")))


@route("GET", "/messages/(?P<messageId>[^/]+)/attachments/(?P<id>[^/]+)", "gmail.users.messages.attachments.get")
def attachments_get(context: SimContext, call: Call, address: str, p: dict[str, str]) -> Reply:
    """The bytes of a part that messages.get shows with `body.attachmentId` (MessagePartBody, data base64url)."""
    if not _HEX_ID.fullmatch(p["messageId"]):
        raise errors.invalid("Invalid id value")
    msg, _, _ = context.state.message(address, p["messageId"])
    att = msg.parsed.attachments.get(p["id"])
    if att is None:  # another message's id, a made-up one, or one of a deleted message
        raise errors.not_found()
    return Reply.json({"attachmentId": p["id"], "size": len(att.data), "data": mime.b64url(att.data)})


@route("POST", "/messages/(?P<id>[^/]+)/modify", "gmail.users.messages.modify")
def messages_modify(context: SimContext, call: Call, address: str, p: dict[str, str]) -> Reply:
    body = call.json()
    msg = context.state.modify(address, p["id"], body.get("addLabelIds") or [], body.get("removeLabelIds") or [])
    return Reply.json(msg.ref_with_labels())


@route("POST", "/messages/(?P<id>[^/]+)/trash", "gmail.users.messages.trash")
def messages_trash(context: SimContext, call: Call, address: str, p: dict[str, str]) -> Reply:
    msg = context.state.modify(address, p["id"], *LABEL_ACTIONS["trash"])
    return Reply.json(msg.ref_with_labels())


@route("POST", "/messages/(?P<id>[^/]+)/untrash", "gmail.users.messages.untrash")
def messages_untrash(context: SimContext, call: Call, address: str, p: dict[str, str]) -> Reply:
    msg = context.state.modify(address, p["id"], *LABEL_ACTIONS["untrash"])
    return Reply.json(msg.ref_with_labels())


@route("DELETE", "/messages/(?P<id>[^/]+)", "gmail.users.messages.delete")
def messages_delete(context: SimContext, call: Call, address: str, p: dict[str, str]) -> Reply:
    context.state.delete(address, p["id"])
    return Reply(204)


# -- send -----------------------------------------------------------------------------------


@route("POST", "/messages/send", "gmail.users.messages.send")
def messages_send(context: SimContext, call: Call, address: str, p: dict[str, str]) -> Reply:
    if call.path.startswith(("/upload/", "/resumable/")):
        raw_or_reply = _upload(context, call, address)
        if isinstance(raw_or_reply, Reply):
            return raw_or_reply
        metadata, raw = raw_or_reply
    else:
        metadata = call.json()
        encoded = metadata.get("raw")
        if not isinstance(encoded, str) or not encoded:
            raise errors.invalid(
                "'raw' RFC822 payload message string or uploading message via /upload/* URL required"
            )
        try:
            raw = mime.b64url_decode(encoded)
        except ValueError:
            raise errors.invalid("Invalid value for ByteString: raw") from None
    return send_checked(context, address, raw, metadata.get("threadId"))


def send_checked(
    context: SimContext, address: str, raw: bytes, thread_id: Any = None, *, from_ui: bool = False
) -> Reply:
    """Send under Gmail's daily sending limit; the answer is messages.send's."""
    if len(raw) > MAX_UPLOAD_BYTES:
        raise GmailError(413, f"Request payload size exceeds the limit: {MAX_UPLOAD_BYTES} bytes.", "uploadTooLarge")
    if thread_id is not None and not isinstance(thread_id, str):
        raise errors.invalid("Invalid threadId")
    reset_at = context.quota.reserve_send(address, context.settings.daily_send_limit)
    if reset_at is not None:
        when = dt.datetime.fromtimestamp(reset_at, dt.UTC)
        raise GmailError(
            429,
            f"User-rate limit exceeded.  Retry after {_iso(when)} (Mail sending)",
            "rateLimitExceeded",
            domain="usageLimits",
        )
    try:
        sent, _ = context.state.send(address, raw, thread_id or None, from_ui=from_ui)
    except Exception:
        context.quota.release_send(address)
        raise
    return Reply.json({"id": sent.id, "threadId": sent.thread_id, "labelIds": list(sent.label_ids)})


def _upload(context: SimContext, call: Call, address: str) -> tuple[dict[str, Any], bytes] | Reply:
    """messages.send through the media-upload URI: multipart, media, or resumable (with chunks)."""
    kind = (call.arg("uploadType") or "").lower()
    if kind == "media":
        return {}, call.body
    if kind == "multipart":
        ctype = call.headers.get("content-type", "")
        parts = split_multipart(call.body, ctype)
        if len(parts) != 2:
            raise errors.invalid("multipart upload needs a metadata part and a media part")
        meta = json.loads(parts[0][1] or b"{}")
        return (meta if isinstance(meta, dict) else {}), parts[1][1]
    if kind == "resumable":
        upload_id = call.arg("upload_id")
        if upload_id is None:
            return _start_resumable(context, call, address)
        return _continue_resumable(context, call, address, upload_id)
    raise errors.invalid(f"Invalid uploadType: {kind or '(none)'}")


def _start_resumable(context: SimContext, call: Call, address: str) -> Reply:
    total = call.headers.get("x-upload-content-length")
    if total is not None and int(total) > MAX_UPLOAD_BYTES:
        raise GmailError(413, f"Request payload size exceeds the limit: {MAX_UPLOAD_BYTES} bytes.", "uploadTooLarge")
    upload_id = "ADPycd" + secrets.token_urlsafe(24)
    with context.lock:
        context.uploads[upload_id] = Upload(address, call.json(), int(total) if total else None)
    base = call.host_url.rstrip("/")
    query = urllib.parse.urlencode({"uploadType": "resumable", "upload_id": upload_id})
    location = f"{base}/upload/gmail/v1/users/me/messages/send?{query}"
    return Reply(200, b"", {"Location": location, "X-GUploader-UploadID": upload_id})


def _continue_resumable(
    context: SimContext, call: Call, address: str, upload_id: str
) -> tuple[dict[str, Any], bytes] | Reply:
    with context.lock:
        up = context.uploads.get(upload_id)
    if up is None or up.address != address:
        raise errors.not_found()
    crange = call.headers.get("content-range", "")
    m = re.fullmatch(r"bytes (?:(\d+)-(\d+)|\*)/(\d+|\*)", crange.strip())
    if crange and not m:
        raise errors.invalid("Invalid Content-Range")
    if m and m[1] is not None:
        if int(m[1]) != len(up.data):
            raise errors.invalid("Content-Range does not continue the upload")
        up.data.extend(call.body)
    elif not m:
        up.data.extend(call.body)
    total = int(m[3]) if m and m[3] != "*" else (up.total if m else len(up.data))
    if len(up.data) > MAX_UPLOAD_BYTES:
        raise GmailError(413, f"Request payload size exceeds the limit: {MAX_UPLOAD_BYTES} bytes.", "uploadTooLarge")
    if total is None or len(up.data) < total:
        headers = {"Range": f"bytes=0-{len(up.data) - 1}"} if up.data else {}
        return Reply(308, b"", headers)
    with context.lock:
        context.uploads.pop(upload_id, None)
    return up.metadata, bytes(up.data)


_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.I)


def split_multipart(body: bytes, content_type: str) -> list[tuple[dict[str, str], bytes]]:
    """A multipart body's parts as (lower-cased headers, content), byte-exact.

    Parsed by hand because the email package would re-serialize a message/rfc822
    part (and the batch and upload bodies of google-api-python-client use bare
    LF line endings, which this accepts as well as CRLF).
    """
    m = _BOUNDARY.search(content_type)
    if not m:
        raise errors.invalid("multipart body without boundary")
    delim = re.compile(rb"(?:\r?\n|^)--" + re.escape(m[1].encode()) + rb"(--)?[ \t]*(?:\r?\n|$)")
    parts: list[tuple[dict[str, str], bytes]] = []
    marks = list(delim.finditer(body))
    for a, b in itertools.pairwise(marks):
        if a.group(1):
            break
        chunk = body[a.end() : b.start()]
        headers, content = split_head(chunk)
        parts.append((headers, content))
    return parts


def split_head(chunk: bytes) -> tuple[dict[str, str], bytes]:
    """Headers (lower-cased names) and body of an HTTP- or MIME-style block with CRLF or LF lines."""
    m = re.search(rb"\r?\n\r?\n", chunk)
    head, content = (chunk[: m.start()], chunk[m.end() :]) if m else (chunk, b"")
    headers: dict[str, str] = {}
    for line in re.split(rb"\r?\n(?![ \t])", head):
        name, sep, value = line.decode("utf-8", "replace").partition(":")
        if sep:
            headers[name.strip().lower()] = mime.unfold(value).strip()
    return headers, content


# -- threads and labels ---------------------------------------------------------------------


@route("GET", "/threads/(?P<id>[^/]+)", "gmail.users.threads.get")
def threads_get(context: SimContext, call: Call, address: str, p: dict[str, str]) -> Reply:
    fmt = _format(call, ("minimal", "full", "metadata"))
    items = context.state.thread(address, p["id"])
    headers = call.args("metadataHeaders")
    return Reply.json(
        {
            "id": p["id"],
            "historyId": str(max(h for _, _, h in items)),
            "messages": [render_message(m, labels, h, fmt, headers) for m, labels, h in items],
        }
    )


@route("GET", "/threads", "gmail.users.threads.list")
def threads_list(context: SimContext, call: Call, address: str, p: dict[str, str]) -> Reply:
    limit = _int_arg(call, "maxResults", 100, 1, 500)
    offset = _page_offset(call)
    seen: dict[str, StoredMessage] = {}
    for m in _search(context, call, address):
        seen.setdefault(m.thread_id, m)
    threads = list(seen.values())
    page = threads[offset : offset + limit]
    out: dict[str, Any] = {}
    if page:
        out["threads"] = [
            {"id": m.thread_id, "snippet": m.parsed.snippet, "historyId": str(m.history_id)} for m in page
        ]
    if offset + limit < len(threads):
        out["nextPageToken"] = str(offset + limit)
    out["resultSizeEstimate"] = len(threads)
    return Reply.json(out)


def _label(label_id: str, mlv: str | None, llv: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": label_id, "name": label_id}
    if mlv:
        out["messageListVisibility"] = mlv
    if llv:
        out["labelListVisibility"] = llv
    out["type"] = "system"
    return out


@route("GET", "/labels", "gmail.users.labels.list")
def labels_list(context: SimContext, call: Call, address: str, p: dict[str, str]) -> Reply:
    return Reply.json({"labels": [_label(*lbl) for lbl in SYSTEM_LABELS]})


@route("GET", "/labels/(?P<id>[^/]+)", "gmail.users.labels.get")
def labels_get(context: SimContext, call: Call, address: str, p: dict[str, str]) -> Reply:
    spec = next((lbl for lbl in SYSTEM_LABELS if lbl[0] == p["id"]), None)
    if spec is None:
        raise errors.not_found()
    out = _label(*spec)
    with context.state.lock:
        box = context.state.require(address)
        msgs = [m for m in box.messages.values() if p["id"] in m.label_ids]
        unread = [m for m in msgs if "UNREAD" in m.label_ids]
        out.update(
            messagesTotal=len(msgs),
            messagesUnread=len(unread),
            threadsTotal=len({m.thread_id for m in msgs}),
            threadsUnread=len({m.thread_id for m in unread}),
        )
    return Reply.json(out)


# -- HTTP -------------------------------------------------------------------------------------

PREFIXES = ("/gmail/v1/", "/upload/gmail/v1/", "/resumable/upload/gmail/v1/")


def call_from_environ(environ: dict[str, Any]) -> Call:
    """A Call straight from the WSGI environ: the hot path skips Flask's request and routing machinery."""
    headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = environ["CONTENT_TYPE"]
    method = environ["REQUEST_METHOD"]
    body = read_body(environ) if method in ("POST", "PUT", "PATCH") else b""
    path = environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8", "replace")
    if method == "PUT" and path.startswith(("/upload/", "/resumable/")):
        method = "POST"  # resumable chunks are PUTs to the session URI of messages.send
    return Call(
        method=method,
        path=path,
        query=urllib.parse.parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True),
        headers=headers,
        body=body,
        host_url=f"{environ.get('wsgi.url_scheme', 'http')}://{environ.get('HTTP_HOST', 'localhost')}/",
    )


def read_body(environ: dict[str, Any]) -> bytes:
    """The whole request body: Content-Length bytes, or a chunked body the server decodes to its end.

    Read in pieces: a 36 MB upload read in one call would be copied once per
    chunk by the server's chunked reader.
    """
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH") or ""
    left = int(length) if length.isdigit() else None
    if left is None and not environ.get("wsgi.input_terminated"):
        return b""  # neither a length nor a terminated stream: WSGI says there is no body
    pieces: list[bytes] = []
    while left is None or left > 0:
        piece = stream.read(_PIECE if left is None else min(_PIECE, left))
        if not piece:
            break
        pieces.append(piece)
        if left is not None:
            left -= len(piece)
    return b"".join(pieces)


_PIECE = 1 << 20


def wsgi(context: SimContext, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    reply = dispatch(context, call_from_environ(environ))
    headers = [*reply.headers.items(), ("Content-Length", str(len(reply.body)))]
    start_response(f"{reply.status} {_PHRASES.get(reply.status, '')}", headers)
    return [reply.body]


_PHRASES = {s.value: s.phrase for s in HTTPStatus}
