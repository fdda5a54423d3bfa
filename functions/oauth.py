"""The `oauth` function: the CRM's side of connecting a rep's Gmail (R1, R3, R4, R5, R16b).

Routes (docs/API_OAUTH.md has payloads and every error), all behind the CRM's
invoker identity (Cloud Run IAM) and `Authorization: Bearer <CRM API key>`:

  POST /connect     {accountId, userId, returnUrl} -> {authorizationUrl}
  POST /disconnect  {accountId, userId} -> {status: "disconnected"}
  GET  /status      ?accountId&userId -> {status, address, autoBccAddress, …}
  POST /resync      {accountId, userId} -> 202 (sync this mailbox now)
  POST /auto-bcc/rotate {accountId, userId} -> {autoBccAddress} (a new address; the old one stops working)

The browser's side (`/start`, where `authorizationUrl` points, and Google's
redirect to `/callback`) is the public `oauth_browser` function. The
operations live in shared/connect/; this adapter validates input. Their
refusals (shared/connect/errors.py) carry their status and code, and
`handles_errors` answers them by class.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.http.answers import dispatch_crm, handles_errors, json_response, read_json
from shared.http.validate import require_id, require_str

if TYPE_CHECKING:
    import flask

CRM_KEY_SECRET = "crm-api-key"
MAX_RETURN_URL = 2000


@handles_errors
def handle(request: flask.Request) -> Any:
    return dispatch_crm(request, ROUTES, CRM_KEY_SECRET)  # the operations' refusals carry their answers


def _user(values: dict[str, Any]) -> tuple[str, str]:
    return require_id(values, "accountId"), require_id(values, "userId")


def connect(request: flask.Request) -> Any:
    from shared.connect.consent import issue_authorization_url

    body = read_json(request)
    account_id, user_id = _user(body)
    return_url = require_str(body, "returnUrl", max_len=MAX_RETURN_URL, header=True)
    return json_response({"authorizationUrl": issue_authorization_url(account_id, user_id, return_url)})


def disconnect(request: flask.Request) -> Any:
    from shared.connect.disconnect import disconnect as disconnect_user

    disconnect_user(*_user(read_json(request)))
    return json_response({"status": "disconnected"})


def status(request: flask.Request) -> Any:
    from shared.connect.status import connection_status

    return json_response(connection_status(*_user({k: request.args.get(k) for k in ("accountId", "userId")})))


def resync(request: flask.Request) -> Any:
    from shared.connect.resync import resync as resync_user

    resync_user(*_user(read_json(request)))
    return json_response({"status": "queued"}, 202)


def rotate_auto_bcc(request: flask.Request) -> Any:
    from shared.connect.auto_bcc_rotate import rotate_address

    return json_response({"autoBccAddress": rotate_address(*_user(read_json(request)))})


ROUTES: dict[str, tuple[str, Any]] = {
    "/connect": ("POST", connect),
    "/disconnect": ("POST", disconnect),
    "/status": ("GET", status),
    "/resync": ("POST", resync),
    "/auto-bcc/rotate": ("POST", rotate_auto_bcc),
}
