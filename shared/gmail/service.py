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


def build_gmail(credentials: Credentials) -> Any:
    """A Gmail `Resource` whose every call (batch and upload included) goes to the configured root."""
    import google_auth_httplib2
    from googleapiclient.discovery import build_from_document
    from googleapiclient.http import build_http

    # build_http() drops 308 from the redirect codes: resumable uploads answer 308 "resume incomplete".
    base = build_http()
    base.timeout = HTTP_TIMEOUT_SECONDS
    http = google_auth_httplib2.AuthorizedHttp(credentials, http=base)
    return build_from_document(discovery_document(get_config().gmail_api_root), http=http)
