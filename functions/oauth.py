"""The `oauth` function: connect a rep's Gmail, OAuth callback, disconnect, status, resync.

Routes (docs/API_OAUTH.md has payloads and every error):

  POST /connect     {accountId, userId, returnUrl} -> {authorizationUrl}          CRM key
  GET  /callback    ?code&state (Google's redirect) -> 302 returnUrl?status=…     public
  POST /disconnect  {accountId, userId} -> {status: "disconnected"}               CRM key
  GET  /status      ?accountId&userId -> {status, address, autoBccAddress, …}     CRM key
  POST /resync      {accountId, userId} -> 202 (sync this mailbox now)           CRM key

`/callback` is the only public route and trusts nothing but a state we signed:
a forged or tampered state gets a 400 JSON answer (its returnUrl cannot be
trusted, so no redirect); every later failure redirects to the signed
returnUrl with `status=error&reason=<code>` and leaves nothing half-written.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from shared.core import log, paths
from shared.core.config import get_config
from shared.http.answers import ApiError, handles_errors, json_response, read_json, require_bearer
from shared.http.validate import invalid, require_id, require_str

if TYPE_CHECKING:
    import flask

    from shared.connect.connections import Profile
    from shared.connect.oauth_flow import TokenGrant
    from shared.connect.oauth_state import StateClaims

CRM_KEY_SECRET = "crm-api-key"
MAX_RETURN_URL = 2000


@handles_errors
def handle(request: flask.Request) -> Any:
    route = ROUTES.get(request.path.rstrip("/") or "/")
    if route is None:
        raise ApiError(404, "not_found", f"no route {request.path}")
    method, fn = route
    if request.method != method:
        raise ApiError(405, "method_not_allowed", f"{request.path} accepts {method} only", allow=method)
    return fn(request)


# --------------------------------------------------------------------------- POST /connect

def connect(request: flask.Request) -> Any:
    from shared.connect.oauth_flow import authorization_url, new_code_verifier
    from shared.connect.oauth_state import new_claims, save_state, sign_state, state_key

    require_bearer(request, CRM_KEY_SECRET)
    body = read_json(request)
    account_id, user_id = require_id(body, "accountId"), require_id(body, "userId")
    return_url = _allowed_return_url(require_str(body, "returnUrl", max_len=MAX_RETURN_URL, header=True))
    _require_user(account_id, user_id)

    claims = new_claims(account_id, user_id, return_url, time.time())
    verifier = new_code_verifier()
    save_state(claims, verifier)
    url = authorization_url(sign_state(state_key(), claims), verifier)
    log.info("authorization url issued", accountId=account_id, userId=user_id)
    return json_response({"authorizationUrl": url})


def _allowed_return_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c.isspace() for c in url):
        raise invalid("returnUrl", "must be an absolute http(s) URL")
    if not get_config().return_url_allowed(url):
        raise ApiError(400, "return_url_not_allowed", "returnUrl is not on the allow-list", field="returnUrl")
    return url


# --------------------------------------------------------------------------- GET /callback

def callback(request: flask.Request) -> Any:
    from shared.connect.oauth_flow import ExchangeFailed, exchange_code
    from shared.connect.oauth_state import StateError, consume_state, state_key, verify_state

    args = request.args
    try:
        claims = verify_state(state_key(), args.get("state", ""))
    except StateError as err:
        raise ApiError(400, err.reason, f"OAuth state rejected: {err.message}") from None
    if not get_config().return_url_allowed(claims.return_url):  # allow-list tightened since /connect
        raise ApiError(400, "invalid_state", "OAuth state rejected: returnUrl is no longer allowed")
    ids = {"accountId": claims.account_id, "userId": claims.user_id}

    if claims.expired(time.time()):
        return _back(claims, "state_expired")
    try:
        verifier = consume_state(claims)  # single use, from here on the state is spent
    except StateError as err:
        log.info("oauth state refused", reason=err.reason, **ids)
        return _back(claims, err.reason)
    if args.get("error"):
        reason = "access_denied" if args.get("error") == "access_denied" else "authorization_failed"
        log.info("consent not given", reason=reason, **ids)
        return _back(claims, reason)
    if not args.get("code"):
        return _back(claims, "missing_code")

    try:
        grant = exchange_code(args["code"], verifier)
    except ExchangeFailed as err:
        log.warning("code exchange failed", reason=err.reason, detail=str(err), **ids)
        return _back(claims, err.reason)
    if grant.missing_scopes():
        # Nothing is stored. The grant is not revoked: at Google that would end the grant of this
        # client for the whole Google account, which another CRM user may still be using (R14).
        log.info("consent without required scopes", missing=grant.missing_scopes(), **ids)
        return _back(claims, "missing_scopes")
    if not grant.refresh_token:
        return _back(claims, "no_refresh_token")

    try:
        reason = _finish_connection(claims, grant)
    except Exception as exc:
        log.error("connection failed", error=type(exc).__name__, **ids)
        reason = "internal"
    return _back(claims, reason)


def _finish_connection(claims: StateClaims, grant: TokenGrant) -> str:
    """Google calls first, then one transaction, then retire the old mailbox and tell the CRM."""
    from shared.connect import connections
    from shared.connect.mailboxes import sealed_token
    from shared.gmail.credentials import forget_access_token
    from shared.gmail.service import build_gmail

    ids = {"accountId": claims.account_id, "userId": claims.user_id}
    service = build_gmail(grant.credentials())
    profile: Profile | None = None
    watching = False
    try:
        profile = connections.read_profile(service)
        watch_expiration = connections.start_watch(service)
        watching = True
    except Exception as exc:
        log.warning("Gmail refused getProfile/watch", error=type(exc).__name__, **ids)
        _abandon(grant, profile, watching, service)
        return "gmail_unavailable"

    mailbox_id = paths.mailbox_id(profile.address)
    route = _auto_bcc_route(claims.account_id, claims.user_id)
    try:
        outcome = connections.commit_connection(
            claims.account_id, claims.user_id, profile, watch_expiration,
            sealed_token(mailbox_id, grant.refresh_token or "", sorted(grant.scopes)), route[0], route[1],
        )
    except connections.UserNotFound:
        _abandon(grant, profile, watching, service)
        return "user_not_found"
    except Exception:
        _abandon(grant, profile, watching, service)
        raise
    forget_access_token(mailbox_id)  # a cached access token of the previous grant must not outlive it
    log.info("gmail connected", mailboxId=mailbox_id, newCursor=outcome.new_cursor,
             restored=len(outcome.restored), replaced=outcome.retired is not None, **ids)
    if outcome.retired is not None:
        connections.retire_at_google(outcome.retired)
    _publish_status([(claims.account_id, claims.user_id)] + [(ln.accountId, ln.userId) for ln in outcome.restored],
                    "connected", profile.address)
    return "connected"


def _abandon(grant: TokenGrant, profile: Profile | None, watching: bool, service: Any) -> None:
    """Undo the Google side of a connection that will not be stored.

    If another CRM user still uses this mailbox, its watch and grant are theirs too: leave them.
    """
    from shared.connect import connections
    from shared.connect.oauth_flow import revoke_token

    if profile is not None and connections.mailbox_has_links(paths.mailbox_id(profile.address)):
        return
    if watching:
        try:
            service.users().stop(userId="me").execute()
        except Exception as exc:
            log.warning("could not stop the abandoned watch", error=type(exc).__name__)
    if grant.refresh_token:
        revoke_token(grant.refresh_token)


def _auto_bcc_route(account_id: str, user_id: str) -> tuple[Any, str]:
    from shared.auto_bcc.address import auto_bcc_address, auto_bcc_token
    from shared.connect.oauth_state import state_key
    from shared.core.models import AutoBccRoute

    token = auto_bcc_token(state_key(), account_id, user_id)
    address = auto_bcc_address(token, get_config().auto_bcc_domain)
    return AutoBccRoute(accountId=account_id, userId=user_id, address=address), token


def _back(claims: StateClaims, reason: str) -> Any:
    """302 to the (signed, allow-listed) returnUrl with the outcome added to its query."""
    import flask

    parts = urlsplit(claims.return_url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in ("status", "reason")]
    query += [("status", "connected")] if reason == "connected" else [("status", "error"), ("reason", reason)]
    resp = flask.redirect(urlunsplit(parts._replace(query=urlencode(query))), code=302)
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Referrer-Policy"] = "no-referrer"  # the callback URL carried the code
    return resp


# --------------------------------------------------------------------------- POST /disconnect

def disconnect(request: flask.Request) -> Any:
    from shared.connect import connections

    require_bearer(request, CRM_KEY_SECRET)
    body = read_json(request)
    account_id, user_id = require_id(body, "accountId"), require_id(body, "userId")
    _require_user(account_id, user_id)

    outcome = connections.remove_connection(account_id, user_id)
    if outcome.retired is not None:
        connections.retire_at_google(outcome.retired)
    if outcome.was_linked:
        _publish_status([(account_id, user_id)], "disconnected", outcome.address)
    log.info("gmail disconnected", accountId=account_id, userId=user_id, wasLinked=outcome.was_linked,
             lastLink=outcome.retired is not None)
    return json_response({"status": "disconnected"})


# --------------------------------------------------------------------------- GET /status

def status(request: flask.Request) -> Any:
    from shared.connect.mailboxes import get_link, get_mailbox

    require_bearer(request, CRM_KEY_SECRET)
    query = {k: request.args.get(k) for k in ("accountId", "userId")}
    account_id, user_id = require_id(query, "accountId"), require_id(query, "userId")
    user = _require_user(account_id, user_id)

    link = get_link(account_id, user_id)
    mailbox = get_mailbox(link.mailboxId) if link else None
    if link is None or mailbox is None or mailbox.status == "disconnected":
        return json_response({"status": "disconnected", "address": None, "autoBccAddress": None,
                              "connectedAt": None, "lastSyncAt": None, "lastError": None})
    sync = user.sync()
    return json_response({
        "status": mailbox.status,
        "address": mailbox.address,
        "autoBccAddress": sync.autoBccAddress,
        "connectedAt": _iso(sync.connectedAt or link.linkedAt),
        "lastSyncAt": _iso(mailbox.lastSyncAt),
        "lastError": mailbox.lastError,
        # R22: messages the sync could not store at all (count, and the last few with their reason)
        "skippedCount": mailbox.skippedCount or 0,
        "lastSkipped": [{"gmailMessageId": e.get("gmailMessageId"), "reason": e.get("reason"),
                         "at": _iso(e.get("at"))} for e in mailbox.lastSkipped or [] if isinstance(e, dict)],
    })


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


# --------------------------------------------------------------------------- POST /resync

def resync(request: flask.Request) -> Any:
    from shared.connect.mailboxes import get_link, get_mailbox
    from shared.sync.requests import request_sync

    require_bearer(request, CRM_KEY_SECRET)
    body = read_json(request)
    account_id, user_id = require_id(body, "accountId"), require_id(body, "userId")
    _require_user(account_id, user_id)

    link = get_link(account_id, user_id)
    mailbox = get_mailbox(link.mailboxId) if link else None
    if link is None or mailbox is None or mailbox.status == "disconnected":
        raise ApiError(409, "not_connected", "this user has no connected Gmail")
    if mailbox.status == "reauth_required":
        raise ApiError(409, "reauth_required", "the rep must connect Gmail again")
    request_sync([mailbox.address])
    log.info("resync requested", accountId=account_id, userId=user_id, mailboxId=link.mailboxId)
    return json_response({"status": "queued"}, 202)


# --------------------------------------------------------------------------- shared helpers

def _require_user(account_id: str, user_id: str) -> Any:
    """The CRM user, or 404 (also for another tenant's ids: the pair simply does not exist)."""
    from shared.connect.mailboxes import user_ref
    from shared.core.models import User

    snap = user_ref(account_id, user_id).get()
    if not snap.exists:
        raise ApiError(404, "not_found", "no such user in this account")
    return User.from_doc(snap.to_dict())


def _publish_status(users: list[tuple[str, str]], status: str, address: str | None) -> None:
    from shared.core.events import CrmEvent, publish

    try:
        publish(CrmEvent(type="connection.status", accountId=a, userId=u, status=status, address=address)
                for a, u in users)
    except Exception as exc:  # the write is done; a lost event must not undo or fail the connection
        log.error("could not publish connection.status", error=type(exc).__name__, status=status)


ROUTES: dict[str, tuple[str, Any]] = {
    "/connect": ("POST", connect),
    "/callback": ("GET", callback),
    "/disconnect": ("POST", disconnect),
    "/status": ("GET", status),
    "/resync": ("POST", resync),
}
