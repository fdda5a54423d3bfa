"""Google's OAuth 2.0 web-server flow through google-auth-oauthlib, and token revocation.

Choices and why:
- `access_type=offline` + `prompt=consent`: Google returns a refresh token on
  every consent (without `prompt=consent` a second connect of the same Gmail
  gets none), and the rep sees the permission checkboxes every time.
- `prompt=... select_account` (R1b): Google's account chooser comes first, so a
  rep signed in to several Google accounts picks the Gmail to connect (or
  adds another) instead of silently connecting the browser's current one.
- PKCE (S256) with a verifier we generate and keep server-side in the state
  document, so a stolen authorization code is useless on its own.
- `include_granted_scopes` is left off: with incremental authorization an
  earlier grant could hide a scope the rep just unticked.
- `OAUTHLIB_RELAX_TOKEN_SCOPE=1`: oauthlib otherwise raises a `Warning` when
  Google grants fewer scopes than asked; we check the granted scopes
  ourselves and answer `missing_scopes` (R1), never a 500.
- `OAUTHLIB_INSECURE_TRANSPORT` is *not* set here: plain-http endpoints are
  allowed only by the local stack's environment.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from typing import Any

from shared.core.config import REQUIRED_SCOPES, get_config
from shared.gmail.credentials import oauth_client

os.environ.setdefault("OAUTHLIB_RELAX_TOKEN_SCOPE", "1")

HTTP_TIMEOUT_SECONDS = 30
PROMPT = "consent select_account"


class ExchangeFailed(Exception):
    """The code could not be exchanged; `reason` is the public error code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass(frozen=True)
class TokenGrant:
    """What the token endpoint gave us. `repr` hides the tokens so they never reach a log by accident."""

    access_token: str
    refresh_token: str | None
    scopes: frozenset[str]
    expiry: Any  # naive UTC datetime (google-auth convention) or None

    def __repr__(self) -> str:
        return f"TokenGrant(scopes={sorted(self.scopes)}, refresh_token={'yes' if self.refresh_token else 'no'})"

    def missing_scopes(self) -> list[str]:
        return [s for s in REQUIRED_SCOPES if s not in self.scopes]

    def credentials(self) -> Any:
        """google.oauth2 Credentials that can refresh themselves (for getProfile / watch)."""
        from google.oauth2.credentials import Credentials  # lazy: google-auth (cold start)

        client = oauth_client()
        return Credentials(
            token=self.access_token, refresh_token=self.refresh_token, token_uri=get_config().oauth_token_uri,
            client_id=client.client_id, client_secret=client.client_secret, scopes=sorted(self.scopes),
            expiry=self.expiry,
        )


def new_code_verifier() -> str:
    """RFC 7636: 43-128 characters of [A-Za-z0-9-._~]; token_urlsafe yields [A-Za-z0-9_-]."""
    return secrets.token_urlsafe(72)[:96]


def _flow(code_verifier: str) -> Any:
    from google_auth_oauthlib.flow import Flow  # lazy: OAuth library (cold start)

    cfg = get_config()
    if not cfg.oauth_redirect_uri:
        raise RuntimeError("OAUTH_REDIRECT_URI is not set")
    client = oauth_client()
    config = {
        "web": {
            "client_id": client.client_id,
            "client_secret": client.client_secret,
            "auth_uri": cfg.oauth_auth_uri,
            "token_uri": cfg.oauth_token_uri,
            "redirect_uris": [cfg.oauth_redirect_uri],
        }
    }
    return Flow.from_client_config(
        config, scopes=list(REQUIRED_SCOPES), redirect_uri=cfg.oauth_redirect_uri,
        code_verifier=code_verifier, autogenerate_code_verifier=False,
    )


def authorization_url(state: str, code_verifier: str) -> str:
    url, _ = _flow(code_verifier).authorization_url(access_type="offline", prompt=PROMPT, state=state)
    return str(url)


def exchange_code(code: str, code_verifier: str) -> TokenGrant:
    """Redeem the authorization code (with the PKCE verifier) at the token endpoint."""
    from oauthlib.oauth2.rfc6749.errors import OAuth2Error  # lazy: OAuth library (cold start)

    flow = _flow(code_verifier)
    try:
        token = flow.fetch_token(code=code, timeout=HTTP_TIMEOUT_SECONDS)
    except OAuth2Error as exc:  # Google's {"error": ...} answer: invalid_grant, redirect_uri_mismatch…
        raise ExchangeFailed("token_exchange_failed", f"token endpoint refused the code: {exc.error}") from None
    except Exception as exc:  # network, 5xx, malformed answer
        raise ExchangeFailed("token_exchange_failed", f"token exchange failed: {type(exc).__name__}") from None
    granted = token.get("scope") or []
    if isinstance(granted, str):
        granted = granted.split()
    creds = flow.credentials
    return TokenGrant(
        access_token=str(token["access_token"]),
        refresh_token=token.get("refresh_token"),
        scopes=frozenset(str(s) for s in granted),
        expiry=creds.expiry,
    )


def revoke_token(token: str) -> bool:
    """Google's revoke endpoint. True when Google revoked it or it was already dead.

    Note that at Google revoking any token of a grant ends the whole grant of
    this client for that Google account, so callers revoke only when no CRM
    user still uses the mailbox.
    """
    import requests  # lazy: requests (cold start)

    try:
        resp = requests.post(get_config().oauth_revoke_uri, data={"token": token},
                             headers={"Content-Type": "application/x-www-form-urlencoded"},
                             timeout=HTTP_TIMEOUT_SECONDS)
    except requests.RequestException:
        return False
    if resp.status_code == 200:
        return True
    # 400 invalid_token: already expired or revoked, which is the state we wanted.
    return resp.status_code == 400 and "invalid_token" in resp.text
