"""The Gmail API client, built from the discovery document shipped in
google-api-python-client with its root URL pointed at Google or the simulator.

Why not `build(..., client_options={"api_endpoint": …})`: batch requests
ignore `api_endpoint` and go to the document's `rootUrl` + `batchPath`, and
media uploads use the document's absolute upload path; overriding `rootUrl`
in the document moves all three together. The parsed document is cached per
process; building a service from it is cheap.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from shared.core.config import get_config

if TYPE_CHECKING:
    from google.oauth2.credentials import Credentials

HTTP_TIMEOUT_SECONDS = 30


def _rooted_document(root_url: str) -> dict[str, Any]:
    """Gmail's discovery document, parsed afresh (changing it changes no one else's), rooted at `root_url`."""
    from googleapiclient.discovery_cache import get_static_doc  # lazy: Gmail client library (cold start)

    raw = get_static_doc("gmail", "v1")
    if raw is None:  # pragma: no cover - the document ships with the library
        raise RuntimeError("gmail v1 discovery document not found in google-api-python-client")
    doc: dict[str, Any] = json.loads(raw)
    root = root_url if root_url.endswith("/") else root_url + "/"
    doc["rootUrl"] = root
    doc["mtlsRootUrl"] = root
    doc["baseUrl"] = root + doc.get("servicePath", "")
    return doc


@lru_cache(maxsize=4)
def discovery_document(root_url: str) -> str:
    return json.dumps(_rooted_document(root_url))


def _base_http() -> Any:
    from googleapiclient.http import build_http  # lazy: Gmail client library (cold start)

    # build_http() drops 308 from the redirect codes: resumable uploads answer 308 "resume incomplete".
    base = build_http()
    base.timeout = HTTP_TIMEOUT_SECONDS
    return base


def authorized_http(credentials: Credentials, base: Any) -> Any:
    """`base` (an httplib2.Http and its open connections) carrying the mailbox's access token."""
    import google_auth_httplib2  # lazy: Gmail client library (cold start)

    return google_auth_httplib2.AuthorizedHttp(credentials, http=base)


def build_gmail(credentials: Credentials) -> Any:
    """A Gmail `Resource` whose every call (batch and upload included) goes to the configured root."""
    from googleapiclient.discovery import build_from_document  # lazy: Gmail client library (cold start)

    http = authorized_http(credentials, _base_http())
    return build_from_document(discovery_document(get_config().gmail_api_root), http=http)


_kept: list[tuple[str, Any, Any]] = []  # (root, users().messages() resource, httplib2.Http), last used last
_kept_lock = threading.Lock()
MAX_KEPT = 64


KEPT_METHODS = ("send", "list")  # what the kept resource offers: the send path's calls (shared.send.gmail_send)


@lru_cache(maxsize=4)
def _kept_document(root_url: str) -> str:
    """The discovery document with users.messages' KEPT_METHODS as its only resource methods.

    Building a Resource builds every method of the resources on the way to it (users has 3, messages 11):
    about 5 ms from the whole document, 1 ms from this one, paid by every kept connection an instance opens
    and first of all on its cold start. The methods it does build are Gmail's own descriptions, unchanged."""
    doc = _rooted_document(root_url)  # the send path never needs the whole document as text
    methods = doc["resources"]["users"]["resources"]["messages"]["methods"]
    doc["resources"] = {"users": {"resources": {"messages": {"methods": {m: methods[m] for m in KEPT_METHODS}}}}}
    return json.dumps(doc)


def _build_kept(root: str) -> tuple[str, Any, Any]:
    from googleapiclient.discovery import build_from_document  # lazy: Gmail client library (cold start)

    base = _base_http()
    return root, build_from_document(_kept_document(root), http=base).users().messages(), base


@contextmanager
def kept_connection() -> Iterator[tuple[Any, Any]]:
    """(`users().messages()` resource, httplib2.Http) for one Gmail call, from a small per-process pool.

    For callers that make one Gmail call per invocation (the send path): the connection to Gmail stays
    open between invocations, so a send does not pay a new TCP and TLS handshake, and the resource is
    not rebuilt from the discovery document each time. httplib2 is not thread-safe, so each pair is
    used by one thread at a time; the most recently used (the warmest connection) is handed out first.
    The resource carries no credentials: pass `http=authorized_http(creds, base)` to each `execute()`. It
    offers only KEPT_METHODS.
    """
    root = get_config().gmail_api_root
    with _kept_lock:
        index = next((i for i in range(len(_kept) - 1, -1, -1) if _kept[i][0] == root), None)
        item = _kept.pop(index) if index is not None else None
    if item is None:
        item = _build_kept(root)
    try:
        yield item[1], item[2]
    finally:
        with _kept_lock:
            if len(_kept) < MAX_KEPT:
                _kept.append(item)


def warm_connection() -> None:
    """Build one kept connection ahead when there is none (an instance's first request does this
    beside its first Firestore writes, so its Gmail call does not wait for the discovery document)."""
    root = get_config().gmail_api_root
    with _kept_lock:
        if any(k[0] == root for k in _kept):
            return
    item = _build_kept(root)
    with _kept_lock:
        _kept.append(item)
