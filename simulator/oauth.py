"""Google OAuth 2.0 on the simulator: authorize (consent page and headless), token, revoke, userinfo.

Paths, parameters, redirects and error bodies follow Google's, so that
google-auth-oauthlib's Flow and google-auth's Credentials.refresh run unchanged
against it. What matters most for the project is modelled faithfully:

* the redirect_uri must be registered for the client (exact match), and errors
  about the client or the redirect URI are shown as an error page, never
  redirected (an attacker's redirect_uri must not receive anything);
* the user may grant only some of the requested scopes (one checkbox per
  scope); the token answer's `scope` then lists only what was granted, which is
  how oauthlib learns of a partial grant ("Scope has changed" Warning);
* codes are single-use, expire after 10 minutes and are bound to the
  redirect_uri and the PKCE challenge;
* a refresh token is issued for access_type=offline only when the client holds
  no live one for that user yet or the app forced consent (prompt=consent), as
  at Google;
* after a revoke (or a password change through the admin API) refreshing
  answers 400 `invalid_grant` "Token has been expired or revoked.".

There is no login: the consent page asks for the Google account's address,
and the headless path takes it as `sim_user`. With `prompt=select_account`
(alone or as in `prompt=consent select_account`) the consent page is preceded
by Google's account chooser: one of the simulator's mailboxes (the accounts
"signed in to the browser"), or "use another account" to type an address.
A `prompt` value other than none, consent and select_account is Google's
400 `invalid_request` page.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import html
import json
import re
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from flask import Blueprint, Response, jsonify, request

from simulator.context import ctx
from simulator.tokens import Grant, OAuthError

bp = Blueprint("sim_oauth", __name__)

SCOPE_GMAIL_READONLY = "https://www.googleapis.com/auth/gmail.readonly"
SCOPE_GMAIL_SEND = "https://www.googleapis.com/auth/gmail.send"
SCOPE_GMAIL_FULL = "https://mail.google.com/"
SCOPE_USERINFO_EMAIL = "https://www.googleapis.com/auth/userinfo.email"
SCOPE_USERINFO_PROFILE = "https://www.googleapis.com/auth/userinfo.profile"
SCOPE_OPENID = "openid"

# Sign-in scopes: requested name → the name Google reports as granted (it expands the short names).
_SIGN_IN = {
    SCOPE_OPENID: SCOPE_OPENID,
    "email": SCOPE_USERINFO_EMAIL,
    "profile": SCOPE_USERINFO_PROFILE,
    SCOPE_USERINFO_EMAIL: SCOPE_USERINFO_EMAIL,
    SCOPE_USERINFO_PROFILE: SCOPE_USERINFO_PROFILE,
}
# Sign-in scopes have no checkbox on Google's consent screen: they come with any approval.
_BASIC = frozenset(_SIGN_IN.values())
_SIGN_IN_DESCRIPTIONS = {
    SCOPE_OPENID: "Associate you with your personal info on Google",
    SCOPE_USERINFO_EMAIL: "See your primary Google Account email address",
    SCOPE_USERINFO_PROFILE: "See your personal info, including any personal info you've made publicly available",
}


@lru_cache(maxsize=1)
def gmail_scopes() -> dict[str, str]:
    """Every Gmail scope with its consent text, from the discovery document the clients ship."""
    from googleapiclient.discovery_cache import get_static_doc

    doc = json.loads(get_static_doc("gmail", "v1") or "{}")
    scopes = doc.get("auth", {}).get("oauth2", {}).get("scopes", {})
    return {name: str(v.get("description", name)) for name, v in scopes.items()}


def canonical_scope(name: str) -> str | None:
    """The granted name of a requestable scope; None if the simulator does not know it (invalid_scope)."""
    if name in _SIGN_IN:
        return _SIGN_IN[name]
    return name if name in gmail_scopes() else None


def _description(scope: str) -> str:
    return _SIGN_IN_DESCRIPTIONS.get(scope) or gmail_scopes().get(scope, scope)


PROMPTS = frozenset({"none", "consent", "select_account"})
_ADDRESS = re.compile(r"^[^@\s<>\"']+@[^@\s<>\"']+\.[^@\s<>\"']+$")
_PKCE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
_AUTH_PARAMS = (
    "client_id", "redirect_uri", "response_type", "scope", "state", "access_type", "prompt",
    "code_challenge", "code_challenge_method", "login_hint", "include_granted_scopes", "hd",
)


# --------------------------------------------------------------------------- helpers


@dataclass(frozen=True)
class RegisteredClient:
    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...]


def _registered_client(client_id: str) -> RegisteredClient | None:
    for c in ctx().config.oauth_clients:
        if c.client_id == client_id:
            return RegisteredClient(c.client_id, c.client_secret, tuple(c.redirect_uris))
    return None


class _PageError(Exception):
    """An authorization error Google shows to the user instead of redirecting."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.description = description


@dataclass(frozen=True)
class AuthRequest:
    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]  # canonical names, in request order, no duplicates
    state: str | None
    offline: bool
    prompt: frozenset[str]
    code_challenge: str | None
    code_challenge_method: str
    login_hint: str


def _parse_auth_request(params: Any) -> AuthRequest:
    client_id = params.get("client_id", "")
    if not client_id:
        raise _PageError(400, "invalid_request", "Missing required parameter: client_id")
    client = _registered_client(client_id)
    if client is None:
        raise _PageError(401, "invalid_client", "The OAuth client was not found.")
    redirect_uri = params.get("redirect_uri", "")
    if not redirect_uri:
        raise _PageError(400, "invalid_request", "Missing required parameter: redirect_uri")
    if redirect_uri not in client.redirect_uris:
        raise _PageError(
            400,
            "redirect_uri_mismatch",
            "You can't sign in to this app because it doesn't comply with Google's OAuth 2.0 policy. "
            f"If you're the app developer, register the redirect URI in the Google Cloud Console. "
            f"Request details: redirect_uri={redirect_uri}",
        )
    response_type = params.get("response_type", "")
    if not response_type:
        raise _PageError(400, "invalid_request", "Required parameter is missing: response_type")
    if response_type != "code":
        raise _PageError(400, "unsupported_response_type", f"Invalid response_type: {response_type}")
    raw_scopes = params.get("scope", "").split()
    if not raw_scopes:
        raise _PageError(400, "invalid_request", "Missing required parameter: scope")
    invalid = [s for s in raw_scopes if canonical_scope(s) is None]
    if invalid:
        raise _PageError(400, "invalid_scope", f"Some requested scopes were invalid. {{invalid={invalid}}}")
    scopes: list[str] = []
    for s in raw_scopes:
        c = canonical_scope(s)
        if c is not None and c not in scopes:
            scopes.append(c)
    access_type = params.get("access_type", "online")
    if access_type not in ("online", "offline"):
        raise _PageError(400, "invalid_request", f"Invalid access_type: {access_type}")
    prompt = frozenset(params.get("prompt", "").split())  # space-separated, as OpenID Connect defines it
    if not prompt <= PROMPTS or ("none" in prompt and len(prompt) > 1):
        raise _PageError(
            400, "invalid_request", f"Invalid parameter value for prompt: Invalid prompt: {params.get('prompt')}"
        )
    challenge = params.get("code_challenge") or None
    method = params.get("code_challenge_method") or "plain"
    if challenge is None and params.get("code_challenge_method"):
        raise _PageError(400, "invalid_request", "Missing code_challenge.")
    if challenge is not None:
        if method not in ("S256", "plain"):
            raise _PageError(400, "invalid_request", "Invalid code_challenge_method.")
        if not _PKCE.match(challenge):
            raise _PageError(400, "invalid_request", "Invalid code_challenge.")
    return AuthRequest(
        client_id=client_id,
        redirect_uri=redirect_uri,
        scopes=tuple(scopes),
        state=params.get("state"),
        offline=access_type == "offline",
        prompt=prompt,
        code_challenge=challenge,
        code_challenge_method=method,
        login_hint=params.get("login_hint", ""),
    )


def _redirect(req: AuthRequest, params: dict[str, str]) -> Response:
    """302 to the client's redirect_uri with params merged into any query it already has."""
    if req.state is not None:
        params = {**params, "state": req.state}
    parts = urlsplit(req.redirect_uri)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    location = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))
    resp = Response(status=302)
    resp.headers["Location"] = location
    resp.headers["Cache-Control"] = "no-cache, no-store, max-age=0, must-revalidate"
    return resp


def _approve(req: AuthRequest, user: str, granted_names: list[str]) -> Response:
    """The user's decision: granted_names are the checkboxes they left ticked (canonical or short names)."""
    address = user.strip().lower()
    if not _ADDRESS.match(address):
        raise _PageError(400, "invalid_request", "sim_user must be an email address")
    ticked = {canonical_scope(s) for s in granted_names}
    unknown = [s for s in granted_names if canonical_scope(s) not in req.scopes]
    if unknown:
        raise _PageError(400, "invalid_request", f"sim_scopes lists scopes that were not requested: {unknown}")
    granted = frozenset(s for s in req.scopes if s in ticked or s in _BASIC)
    if not granted:
        return _redirect(req, {"error": "access_denied"})
    c = ctx()
    c.state.create_mailbox(address)
    # Google: the refresh token comes with the first offline consent, or again when the app forces consent.
    offline = req.offline and (
        "consent" in req.prompt or not c.tokens.has_live_refresh_token(address, req.client_id)
    )
    code = c.tokens.issue_code(
        Grant(address=address, scopes=granted, client_id=req.client_id),
        redirect_uri=req.redirect_uri,
        code_challenge=req.code_challenge,
        code_challenge_method=req.code_challenge_method,
        offline=offline,
    )
    return _redirect(req, {"code": code, "scope": " ".join(s for s in req.scopes if s in granted),
                           "authuser": "0", "prompt": "consent"})


def _error_page(err: _PageError) -> Response:
    body = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Error</title></head><body>"
        f"<h1>Access blocked: authorization error</h1><p>Error {err.status}: {html.escape(err.error)}</p>"
        f"<p>{html.escape(err.description)}</p></body></html>"
    )
    return Response(body, status=err.status, mimetype="text/html")


def _hidden(params: Any) -> str:
    """The authorization request carried through a page's form, so the next step sees it whole."""
    return "".join(
        f"<input type='hidden' name='{k}' value='{html.escape(params[k], quote=True)}'>"
        for k in _AUTH_PARAMS
        if k in params
    )


_PAGE_HEAD = """<!doctype html>
<html><head><meta charset="utf-8"><title>Sign in - Google Accounts (simulator)</title></head>
<body style="font-family:sans-serif;max-width:40em;margin:2em auto">
<h1>Google simulator</h1>"""


def _account_chooser(req: AuthRequest, params: Any) -> Response:
    """Google's "Choose an account" step (prompt=select_account): a signed-in account, or another one.

    The simulator's mailboxes stand for the accounts signed in to the browser.
    Choosing one comes back to this endpoint with `sim_account`, which shows
    the consent step for that account.
    """
    action = html.escape(request.path, quote=True)
    hidden = _hidden(params)
    accounts = "".join(
        f"<li><button type='submit' name='sim_account' value='{html.escape(a, quote=True)}'>"
        f"{html.escape(a)}</button></li>"
        for a in ctx().state.addresses()
    )
    body = f"""{_PAGE_HEAD}
<h2>Choose an account</h2>
<p>to continue to <b>{html.escape(req.client_id)}</b></p>
<form method="get" action="{action}" id="accounts">{hidden}
<ul>{accounts}</ul>
</form>
<form method="get" action="{action}" id="another">{hidden}
<p><label>Use another account: <input type="email" name="sim_account" required
 value="{html.escape(req.login_hint, quote=True)}" placeholder="rep@example.com"></label>
<button type="submit" name="another" value="1">Next</button></p>
</form></body></html>"""
    return Response(body, status=200, mimetype="text/html")


def _consent_page(req: AuthRequest, params: Any, account: str | None = None) -> Response:
    """The Allow / Deny step. With `account` (chosen in the account chooser) the account is fixed."""
    client_name = html.escape(req.client_id)
    hidden = _hidden(params)
    rows = []
    for s in req.scopes:
        desc = html.escape(_description(s))
        if s in _BASIC:
            rows.append(f"<li>{desc} <small>({html.escape(s)})</small></li>")
        else:
            rows.append(
                f"<li><label><input type='checkbox' name='granted' value='{html.escape(s, quote=True)}' checked>"
                f" {desc} <small>({html.escape(s)})</small></label></li>"
            )
    if account is None:
        who = f"""<p><label>Google account: <input type="email" name="sim_user" required
 value="{html.escape(req.login_hint, quote=True)}" placeholder="rep@example.com"></label></p>"""
    else:
        others = html.escape(request.path + "?" + urlencode([(k, params[k]) for k in _AUTH_PARAMS if k in params]))
        who = (
            f"<input type='hidden' name='sim_user' value='{html.escape(account, quote=True)}'>"
            f"<p>Signed in as <b id='account'>{html.escape(account)}</b> (<a href=\"{others}\">switch account</a>)</p>"
        )
    body = f"""{_PAGE_HEAD}
<form method="post" action="{html.escape(request.path, quote=True)}">
{hidden}
{who}
<p><b>{client_name}</b> wants access to your Google Account:</p>
<ul>{"".join(rows)}</ul>
<p><button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny" formnovalidate>Deny</button></p>
</form></body></html>"""
    return Response(body, status=200, mimetype="text/html")


# --------------------------------------------------------------------------- authorize


@bp.route("/o/oauth2/v2/auth", methods=["GET", "POST"])
@bp.route("/o/oauth2/auth", methods=["GET", "POST"])
def authorize() -> Response:
    params = request.args if request.method == "GET" else request.form
    try:
        req = _parse_auth_request(params)
        if request.method == "POST":  # the consent page's form
            if params.get("decision") != "allow":
                return _redirect(req, {"error": "access_denied"})
            return _approve(req, params.get("sim_user", ""), params.getlist("granted"))
        user = params.get("sim_user")
        if user is None:
            if "none" in req.prompt:  # no session in the simulator: nothing to approve silently
                return _redirect(req, {"error": "interaction_required"})
            chosen = params.get("sim_account")
            if chosen is not None:  # picked in the account chooser
                if not _ADDRESS.match(chosen.strip()):
                    raise _PageError(400, "invalid_request", "sim_account must be an email address")
                return _consent_page(req, params, chosen.strip().lower())
            if "select_account" in req.prompt:
                return _account_chooser(req, params)
            return _consent_page(req, params)
        spec = params.get("sim_scopes", "all").strip()
        if spec == "none":
            return _redirect(req, {"error": "access_denied"})
        granted = list(req.scopes) if spec == "all" else spec.split()
        return _approve(req, user, granted)
    except _PageError as err:
        return _error_page(err)


# --------------------------------------------------------------------------- token


def _json(body: dict[str, Any], status: int = 200) -> Response:
    resp = jsonify(body)
    resp.status_code = status
    resp.headers["Cache-Control"] = "no-cache, no-store, max-age=0, must-revalidate"
    resp.headers["Pragma"] = "no-cache"
    return resp


def _form() -> dict[str, str]:
    """The token endpoint takes form bodies (what every client sends); JSON is accepted as Google does."""
    if request.is_json:
        data = request.get_json(silent=True)
        return {k: str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    merged = dict(request.args.items())
    merged.update(request.form.items())
    return merged


def _authenticate_client(form: dict[str, str]) -> str:
    """client_secret_basic or client_secret_post; returns the client id."""
    client_id, secret = form.get("client_id", ""), form.get("client_secret")
    auth = request.headers.get("Authorization", "")
    if auth[:6].lower() == "basic ":
        try:
            user, _, password = base64.b64decode(auth[6:].strip()).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise OAuthError("invalid_request", "Invalid authorization header.") from None
        client_id, secret = unquote(user), unquote(password)
    if not client_id:
        raise OAuthError("invalid_request", "Could not determine client ID from request.")
    client = _registered_client(client_id)
    if client is None:
        raise OAuthError("invalid_client", "The OAuth client was not found.", 401)
    if secret is None or secret != client.client_secret:
        raise OAuthError("invalid_client", "Unauthorized", 401)
    return client_id


@bp.route("/token", methods=["POST"])
@bp.route("/o/oauth2/token", methods=["POST"])
def token() -> Response:
    form = _form()
    try:
        client_id = _authenticate_client(form)
        grant_type = form.get("grant_type", "")
        tokens = ctx().tokens
        if grant_type == "authorization_code":
            code = form.get("code", "")
            if not code:
                raise OAuthError("invalid_request", "Missing required parameter: code")
            if not form.get("redirect_uri"):
                raise OAuthError("invalid_request", "Missing parameter: redirect_uri")
            issued = tokens.redeem_code(code, client_id, form.get("redirect_uri"), form.get("code_verifier"))
        elif grant_type == "refresh_token":
            refresh_token = form.get("refresh_token", "")
            if not refresh_token:
                raise OAuthError("invalid_request", "Missing required parameter: refresh_token")
            narrowed = frozenset(canonical_scope(s) or s for s in form.get("scope", "").split()) or None
            issued = tokens.refresh(refresh_token, client_id, narrowed)
        else:
            raise OAuthError("unsupported_grant_type", f"Invalid grant_type: {grant_type}")
    except OAuthError as err:
        return _json(err.body(), err.status)
    return _json(issued.to_json())


# --------------------------------------------------------------------------- revoke


@bp.route("/revoke", methods=["GET", "POST"])
@bp.route("/o/oauth2/revoke", methods=["GET", "POST"])
def revoke() -> Response:
    token_value = _form().get("token", "")
    if not token_value:
        return _json({"error": "invalid_request", "error_description": "Bad Request"}, 400)
    if not ctx().tokens.revoke(token_value):
        return _json({"error": "invalid_token", "error_description": "Token expired or revoked"}, 400)
    return _json({})


# --------------------------------------------------------------------------- discovery, userinfo, tokeninfo


@bp.route("/.well-known/openid-configuration", methods=["GET"])
def openid_configuration() -> Response:
    base = request.host_url.rstrip("/")
    return _json(
        {
            "issuer": base,
            "authorization_endpoint": f"{base}/o/oauth2/v2/auth",
            "token_endpoint": f"{base}/token",
            "userinfo_endpoint": f"{base}/oauth2/v3/userinfo",
            "revocation_endpoint": f"{base}/revoke",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "claims_supported": ["aud", "email", "email_verified", "exp", "iat", "iss", "sub"],
            "code_challenge_methods_supported": ["plain", "S256"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
        }
    )


def _subject(address: str) -> str:
    """A stable numeric account id per address (Google's `sub` is a 21-digit number)."""
    return str(int(hashlib.sha256(address.lower().encode()).hexdigest(), 16))[:21]


def _bearer_grant() -> Grant | None:
    auth = request.headers.get("Authorization", "")
    value = auth[7:].strip() if auth[:7].lower() == "bearer " else request.args.get("access_token", "")
    return ctx().tokens.authenticate(value) if value else None


def _unauthorized() -> Response:
    resp = _json({"error": "invalid_request", "error_description": "Invalid Credentials"}, 401)
    resp.headers["WWW-Authenticate"] = 'Bearer realm="https://accounts.google.com/", error="invalid_token"'
    return resp


@bp.route("/oauth2/v3/userinfo", methods=["GET", "POST"])
def userinfo_v3() -> Response:
    grant = _bearer_grant()
    if grant is None:
        return _unauthorized()
    body: dict[str, Any] = {"sub": _subject(grant.address)}
    if SCOPE_USERINFO_EMAIL in grant.scopes:
        body.update(email=grant.address, email_verified=True)
    if SCOPE_USERINFO_PROFILE in grant.scopes:
        body.update(name=grant.address.split("@")[0])
    return _json(body)


@bp.route("/oauth2/v2/userinfo", methods=["GET", "POST"])
def userinfo_v2() -> Response:
    grant = _bearer_grant()
    if grant is None:
        return _unauthorized()
    body: dict[str, Any] = {"id": _subject(grant.address)}
    if SCOPE_USERINFO_EMAIL in grant.scopes:
        body.update(email=grant.address, verified_email=True)
    if SCOPE_USERINFO_PROFILE in grant.scopes:
        body.update(name=grant.address.split("@")[0])
    return _json(body)


@bp.route("/tokeninfo", methods=["GET", "POST"])
@bp.route("/oauth2/v3/tokeninfo", methods=["GET", "POST"])
def tokeninfo() -> Response:
    value = _form().get("access_token", "")
    info = ctx().tokens.token_info(value) if value else None
    if info is None:
        return _json({"error": "invalid_token", "error_description": "Invalid Value"}, 400)
    grant, left = info
    body: dict[str, Any] = {
        "azp": grant.client_id,
        "aud": grant.client_id,
        "sub": _subject(grant.address),
        "scope": " ".join(sorted(grant.scopes)),
        "exp": str(int(time.time()) + left),
        "expires_in": str(left),
    }
    if SCOPE_USERINFO_EMAIL in grant.scopes:
        body.update(email=grant.address, email_verified="true")
    return _json(body)
