"""The way to Google's consent screen: the CRM asks for a URL (R1), the rep's browser opens it (R24).

`issue_authorization_url` (CRM, `POST /connect`) records a signed, single-use
state with its PKCE verifier and answers a URL of our own public `/start`
route, not Google's: the URL is bound to a browser only once one opens it.
`consent_page` (browser, `GET /start`) checks the state and answers a page
whose button continues (shared/connect/start_page.py): a GET binds nothing,
so a mail link scanner that opens the URL first does not lock the rep out.
`start_consent` (the button's `POST /start`) binds the state to the first
browser that posts it with a session cookie (shared/connect/browser_session.py)
and sends it on to Google with `prompt=consent select_account` (R1b).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from shared.connect.browser_session import SessionCookie, new_secret, presented_secret, session_cookie
from shared.connect.oauth_flow import authorization_url, new_code_verifier
from shared.connect.oauth_state import StateError, bind_browser, new_claims, save_state, sign_state, state_key
from shared.connect.return_url import check_return_url, outcome_location, trusted_claims
from shared.connect.users import require_user
from shared.core import log
from shared.core.config import get_config


@dataclass(frozen=True)
class BrowserStep:
    """Where to send the browser (302), and a cookie to set on the way (or None)."""

    location: str
    cookie: SessionCookie | None = None


def issue_authorization_url(account_id: str, user_id: str, return_url: str) -> str:
    check_return_url(return_url)
    require_user(account_id, user_id)
    start = get_config().oauth_start_uri
    if not start:
        raise RuntimeError("OAUTH_REDIRECT_URI must be set and end in /callback")
    claims = new_claims(account_id, user_id, return_url, time.time())
    save_state(claims, new_code_verifier())
    log.info("authorization url issued", accountId=account_id, userId=user_id)
    return f"{start}?{urlencode({'state': sign_state(state_key(), claims)})}"


@dataclass(frozen=True)
class ContinuePage:
    """The page with the button that posts the state back to `/start` (nothing bound yet)."""

    state: str


def consent_page(state: str) -> BrowserStep | ContinuePage:
    """`GET /start`: a state we signed gets the continue page (an expired one goes back to the returnUrl);
    nothing is read or written beyond the signature check, so any number of scanners may open it."""
    claims = trusted_claims(state)
    if claims.expired(time.time()):
        return BrowserStep(outcome_location(claims.return_url, "state_expired"))
    return ContinuePage(state)


def start_consent(state: str, cookies: Mapping[str, str]) -> BrowserStep:
    """Bind the state to this browser (first come) and go to Google; refusals go back to the returnUrl."""
    claims = trusted_claims(state)
    now = time.time()
    ids = {"accountId": claims.account_id, "userId": claims.user_id}
    if claims.expired(now):
        return BrowserStep(outcome_location(claims.return_url, "state_expired"))
    secure = get_config().oauth_cookies_secure
    offered = new_secret()
    try:
        verifier, bound = bind_browser(claims, presented_secret(cookies, claims.nonce, secure), offered)
    except StateError as err:
        log.info("consent start refused", reason=err.reason, **ids)
        return BrowserStep(outcome_location(claims.return_url, err.reason))
    cookie = session_cookie(claims.nonce, offered, claims.expires_at, now, secure) if bound else None
    log.info("consent started", reopened=not bound, **ids)
    return BrowserStep(authorization_url(state, verifier), cookie)
