"""send_email: one individual email from the CRM through the rep's Gmail (SPEC §6; R6, R9, R10, R14-R18, R23).

The HTTP adapter: method and path, the CRM's API key, the JSON body validated
completely (shared.send.request: 4xx before anything is read or written), then
the one operation, shared.send.flow.send, whose docstring walks through the
send top to bottom. Refusals come back as ApiError and become their JSON
answer (shared.http.answers.handles_errors).
"""

from __future__ import annotations

from typing import Any

from shared.http.answers import ApiError, handles_errors, json_response, read_json, require_bearer
from shared.send.flow import CRM_API_KEY_SECRET, prefetch_secrets, send
from shared.send.request import MAX_REQUEST_BYTES, parse_send_request


def handle(request: Any) -> Any:
    return _handle(request)


@handles_errors
def _handle(request: Any) -> Any:
    if request.method != "POST":
        raise ApiError(405, "method_not_allowed", "use POST")
    if request.path not in ("", "/"):
        raise ApiError(404, "not_found", "no such endpoint")
    prefetch_secrets()  # an instance's first request: the API key and the send's other secrets at once
    require_bearer(request, CRM_API_KEY_SECRET)
    req = parse_send_request(read_json(request, max_bytes=MAX_REQUEST_BYTES))
    outcome = send(req)
    return json_response(outcome.result, 200, outcome.headers())
