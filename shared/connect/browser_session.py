"""R24: the cookie that binds a connect flow to the rep's browser.

Why a cookie: the authorization URL the CRM hands out is a bearer capability
("whoever opens it connects their Gmail to this CRM user"). `GET /start` sets a
random secret as a cookie in the browser that opens it first and records only
its SHA-256 in the state document; `/callback` accepts the code only when the
same browser brings the cookie back. A callback URL (code and state) replayed in
any other browser is refused with `session_mismatch`.

Cookie attributes and why:
- one cookie per state (`…_<nonce>`), so two connect tabs do not overwrite each other;
- `HttpOnly` (no script reads it), `SameSite=Lax` (sent on the top-level GET
  navigation back from Google, not on cross-site subrequests), `Path=/`;
- `Secure` with the `__Host-` prefix (no `Domain`, https only) everywhere except
  a plain-http callback on localhost (the local stack);
- `Max-Age` = what is left of the state's 10 minutes; the callback deletes it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

COOKIE_STEM = "crm_sync_oauth_"


@dataclass(frozen=True)
class SessionCookie:
    """A cookie for the adapter to set (or delete, when `value` is empty and `max_age` 0)."""

    name: str
    value: str
    max_age: int
    secure: bool

    def __repr__(self) -> str:  # the value is a credential: never in a log line
        return f"SessionCookie(name={self.name!r}, max_age={self.max_age}, secure={self.secure})"


def cookie_name(nonce: str, secure: bool) -> str:
    return f"{'__Host-' if secure else ''}{COOKIE_STEM}{nonce}"


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def fingerprint(secret: str) -> str:
    return hashlib.sha256(b"gmail-crm-sync/oauth-browser\x00" + secret.encode("utf-8")).hexdigest()


def matches(presented: str | None, stored_fingerprint: str) -> bool:
    return bool(presented) and hmac.compare_digest(fingerprint(presented or ""), stored_fingerprint)


def presented_secret(cookies: Mapping[str, str], nonce: str, secure: bool) -> str | None:
    value = cookies.get(cookie_name(nonce, secure))
    return value or None


def session_cookie(nonce: str, secret: str, expires_at: int, now: float, secure: bool) -> SessionCookie:
    return SessionCookie(cookie_name(nonce, secure), secret, max(1, int(expires_at - now)), secure)


def expired_cookie(nonce: str, secure: bool) -> SessionCookie:
    return SessionCookie(cookie_name(nonce, secure), "", 0, secure)
