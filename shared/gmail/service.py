"""The Gmail API client, built from the discovery document shipped in
google-api-python-client with its root URL pointed at Google or the simulator.

Why not `build(..., client_options={"api_endpoint": …})`: batch requests
ignore `api_endpoint` and go to the document's `rootUrl` + `batchPath`, and
media uploads use the document's absolute upload path; overriding `rootUrl`
in the document moves all three together. The parsed document is cached per
process; building a service from it is cheap.
"""

from __future__ import annotations

import copy
import json
import threading
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from shared.core.config import get_config

if TYPE_CHECKING:
    from google.oauth2.credentials import Credentials

HTTP_TIMEOUT_SECONDS = 30


@lru_cache(maxsize=4)
def discovery_document(root_url: str) -> str:
    from googleapiclient.discovery_cache import get_static_doc

    raw = get_static_doc("gmail", "v1")
    if raw is None:  # pragma: no cover - the document ships with the library
        raise RuntimeError("gmail v1 discovery document not found in google-api-python-client")
    doc: dict[str, Any] = json.loads(raw)
    root = root_url if root_url.endswith("/") else root_url + "/"
    doc = copy.deepcopy(doc)
    doc["rootUrl"] = root
    doc["mtlsRootUrl"] = root
    doc["baseUrl"] = root + doc.get("servicePath", "")
    return json.dumps(doc)


def _base_http() -> Any:
    from googleapiclient.http import build_http

    # build_http() drops 308 from the redirect codes: resumable uploads answer 308 "resume incomplete".
    base = build_http()
    base.timeout = HTTP_TIMEOUT_SECONDS
    return base


def authorized_http(credentials: Credentials, base: Any) -> Any:
    """`base` (an httplib2.Http and its open connections) carrying the mailbox's access token."""
    import google_auth_httplib2

    return google_auth_httplib2.AuthorizedHttp(credentials, http=base)


def build_gmail(credentials: Credentials) -> Any:
    """A Gmail `Resource` whose every call (batch and upload included) goes to the configured root."""
    from googleapiclient.discovery import build_from_document

    http = authorized_http(credentials, _base_http())
    return build_from_document(discovery_document(get_config().gmail_api_root), http=http)


_pooled = threading.local()


def pooled_messages() -> tuple[Any, Any]:
    """(`users().messages()` resource, httplib2.Http) of this thread, built once and kept.

    For callers that make one Gmail call per invocation (the send path): the connection to Gmail stays
    open between invocations, so a send does not pay a new TCP and TLS handshake, and the resource is
    not rebuilt from the discovery document each time. The resource carries no credentials: pass
    `http=authorized_http(creds, base)` to each `execute()`. httplib2 is not thread-safe, hence one
    per thread (functions-framework serves requests on a fixed pool of threads).
    """
    from googleapiclient.discovery import build_from_document

    root = get_config().gmail_api_root
    hit = getattr(_pooled, "messages", None)
    if hit is None or hit[0] != root:
        base = _base_http()
        service = build_from_document(discovery_document(root), http=base)
        hit = (root, service.users().messages(), base)
        _pooled.messages = hit
    return hit[1], hit[2]
