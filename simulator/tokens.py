"""The simulator's OAuth grants: authorization codes, refresh and access tokens.

One in-memory store shared by the OAuth endpoints (which issue and revoke) and
the Gmail endpoints (which only call `authenticate`). It models what the
project's code must cope with at Google: codes that are single-use, short-lived
and bound to a redirect URI and a PKCE challenge; access tokens that expire;
refresh tokens that die on revoke or on a password change (`revoke_all`), after
which Google answers `invalid_grant` "Token has been expired or revoked.".

Token shapes imitate Google's prefixes (`4/` codes, `1//` refresh tokens,
`ya29.` access tokens) so logs and redaction rules look the same as in
production; the values are random and carry no meaning.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

CODE_TTL_SECONDS = 600  # Google: authorization codes live about 10 minutes.


@dataclass(frozen=True)
class Grant:
    """What an access token allows: whose mailbox, which scopes, for which client."""

    address: str
    scopes: frozenset[str]
    client_id: str


class OAuthError(Exception):
    """An error the token endpoint answers with Google's `{"error", "error_description"}` body."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


@dataclass(frozen=True)
class TokenSet:
    """The token endpoint's answer, before it becomes JSON."""

    access_token: str
    expires_in: int
    scopes: frozenset[str]
    refresh_token: str | None = None

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "access_token": self.access_token,
            "expires_in": self.expires_in,
            # Google lists granted scopes space-separated; oauthlib compares this with
            # what it asked for, which is how a client learns of a partial grant.
            "scope": " ".join(sorted(self.scopes)),
            "token_type": "Bearer",
        }
        if self.refresh_token is not None:
            out["refresh_token"] = self.refresh_token
        return out


@dataclass
class _Code:
    grant: Grant
    redirect_uri: str
    code_challenge: str | None
    code_challenge_method: str
    offline: bool
    expires_at: float
    used: bool = False


@dataclass
class _Refresh:
    grant: Grant
    revoked: bool = False


@dataclass
class _Access:
    grant: Grant
    expires_at: float
    refresh_token: str | None
    revoked: bool = False


def pkce_matches(verifier: str, challenge: str, method: str) -> bool:
    """RFC 7636 §4.6: S256 compares BASE64URL(SHA256(verifier)) without padding."""
    if method == "S256":
        digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
        computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    else:
        computed = verifier
    return hmac.compare_digest(computed, challenge)


class TokenStore:
    """Thread-safe store of codes and tokens behind one lock; `authenticate` (hot path) is a dict lookup."""

    def __init__(self, access_ttl_seconds: int = 3600, clock: Callable[[], float] = time.time) -> None:
        self.access_ttl_seconds = access_ttl_seconds  # settable at run time; applies to tokens issued later
        self._clock = clock
        self._lock = threading.Lock()
        self._codes: dict[str, _Code] = {}
        self._refresh: dict[str, _Refresh] = {}
        self._access: dict[str, _Access] = {}
        self._issued_since_prune = 0

    # -- used by the Gmail endpoints and the admin API --------------------------------

    def authenticate(self, access_token: str) -> Grant | None:
        """The grant behind a bearer token; None if unknown, expired or revoked (Gmail then answers 401)."""
        with self._lock:
            rec = self._access.get(access_token)
            if rec is None or rec.revoked or self._clock() >= rec.expires_at:
                return None
            return rec.grant

    def revoke_all(self, address: str) -> int:
        """A password change: every live token of the mailbox dies. Returns how many tokens were live."""
        key = address.lower()
        now = self._clock()
        n = 0
        with self._lock:
            for r in self._refresh.values():
                if r.grant.address.lower() == key and not r.revoked:
                    r.revoked = True
                    n += 1
            for a in self._access.values():
                if a.grant.address.lower() == key and not a.revoked and now < a.expires_at:
                    a.revoked = True
                    n += 1
            for c in self._codes.values():
                if c.grant.address.lower() == key:
                    c.used = True
        return n

    def active_tokens(self, address: str) -> int:
        """Live refresh tokens of the mailbox (what a Google account's "third-party access" page shows)."""
        key = address.lower()
        with self._lock:
            return sum(1 for r in self._refresh.values() if r.grant.address.lower() == key and not r.revoked)

    def has_live_refresh_token(self, address: str, client_id: str) -> bool:
        """Whether this client already holds a live refresh token for the mailbox.

        Google hands out a refresh token on an offline code exchange only when the user has
        none for the client yet, or when the app forced the consent screen (prompt=consent).
        """
        key = address.lower()
        with self._lock:
            return any(
                r.grant.address.lower() == key and r.grant.client_id == client_id and not r.revoked
                for r in self._refresh.values()
            )

    def reset(self) -> None:
        with self._lock:
            self._codes.clear()
            self._refresh.clear()
            self._access.clear()

    # -- used by the OAuth endpoints ----------------------------------------------------

    def issue_code(
        self,
        grant: Grant,
        redirect_uri: str,
        code_challenge: str | None = None,
        code_challenge_method: str = "plain",
        offline: bool = False,
    ) -> str:
        code = "4/0" + secrets.token_urlsafe(32)
        with self._lock:
            self._codes[code] = _Code(
                grant=grant,
                redirect_uri=redirect_uri,
                code_challenge=code_challenge,
                code_challenge_method=code_challenge_method,
                offline=offline,
                expires_at=self._clock() + CODE_TTL_SECONDS,
            )
        return code

    def redeem_code(
        self, code: str, client_id: str, redirect_uri: str | None, code_verifier: str | None
    ) -> TokenSet:
        """grant_type=authorization_code. A code is spent by its first redemption attempt, as at Google."""
        with self._lock:
            rec = self._codes.get(code)
            if rec is None:
                raise OAuthError("invalid_grant", "Malformed auth code.")
            if rec.used or self._clock() >= rec.expires_at:
                raise OAuthError("invalid_grant", "Bad Request")
            if rec.grant.client_id != client_id:
                raise OAuthError("invalid_grant", "Bad Request")
            rec.used = True
            if redirect_uri != rec.redirect_uri:
                raise OAuthError("redirect_uri_mismatch", "Bad Request")
            if rec.code_challenge is not None:
                if not code_verifier:
                    raise OAuthError("invalid_grant", "Missing code verifier.")
                if not pkce_matches(code_verifier, rec.code_challenge, rec.code_challenge_method):
                    raise OAuthError("invalid_grant", "Invalid code verifier.")
            refresh_token = None
            if rec.offline:
                refresh_token = "1//0" + secrets.token_urlsafe(48)
                self._refresh[refresh_token] = _Refresh(grant=rec.grant)
            issued = self._issue_access_locked(rec.grant, refresh_token)
            return TokenSet(issued.access_token, issued.expires_in, issued.scopes, refresh_token)

    def refresh(self, refresh_token: str, client_id: str, scopes: frozenset[str] | None = None) -> TokenSet:
        """grant_type=refresh_token; `scopes` may narrow the grant, never widen it.

        Scopes asked for but never granted are dropped from the answer (google-auth then logs
        "Not all requested scopes were granted"); only a request with none of the granted
        scopes is refused.
        """
        with self._lock:
            rec = self._refresh.get(refresh_token)
            if rec is None or rec.revoked:
                raise OAuthError("invalid_grant", "Token has been expired or revoked.")
            if rec.grant.client_id != client_id:
                raise OAuthError("unauthorized_client", "Unauthorized", 401)
            grant = rec.grant
            if scopes:
                kept = scopes & grant.scopes
                if not kept:
                    raise OAuthError("invalid_scope", "Bad Request")
                grant = Grant(address=grant.address, scopes=kept, client_id=grant.client_id)
            return self._issue_access_locked(grant, refresh_token)

    def revoke(self, token: str) -> bool:
        """Google's /revoke: any token of a grant ends the whole grant of that client for that account.

        Every refresh and access token the client holds for the address dies, not only the one
        sent (at Google "the user's consent for the app" is what is revoked). False when the
        token is unknown or already dead (Google answers 400 invalid_token).
        """
        with self._lock:
            now = self._clock()
            ref = self._refresh.get(token)
            acc = self._access.get(token)
            if ref is not None and not ref.revoked:
                grant = ref.grant
            elif acc is not None and not acc.revoked and now < acc.expires_at:
                grant = acc.grant
            else:
                return False
            key, client = grant.address.lower(), grant.client_id
            for r in self._refresh.values():
                if r.grant.address.lower() == key and r.grant.client_id == client:
                    r.revoked = True
            for a in self._access.values():
                if a.grant.address.lower() == key and a.grant.client_id == client:
                    a.revoked = True
            return True

    def token_info(self, access_token: str) -> tuple[Grant, int] | None:
        """(grant, seconds left) of a live access token, for /tokeninfo."""
        with self._lock:
            rec = self._access.get(access_token)
            now = self._clock()
            if rec is None or rec.revoked or now >= rec.expires_at:
                return None
            return rec.grant, max(0, int(rec.expires_at - now))

    # -- internals ----------------------------------------------------------------------

    def _issue_access_locked(self, grant: Grant, refresh_token: str | None) -> TokenSet:
        token = "ya29.a0" + secrets.token_urlsafe(64)
        ttl = int(self.access_ttl_seconds)
        expires_at = self._clock() + ttl
        self._access[token] = _Access(grant=grant, expires_at=expires_at, refresh_token=refresh_token)
        self._issued_since_prune += 1
        if self._issued_since_prune >= 1000:
            self._prune_locked()
        # The refresh token is only part of the answer to a code exchange (the caller adds it).
        return TokenSet(access_token=token, expires_in=ttl, scopes=grant.scopes)

    def _prune_locked(self) -> None:
        """Forget dead access tokens and spent codes so a long benchmark run does not grow without bound."""
        self._issued_since_prune = 0
        now = self._clock()
        dead = [t for t, a in self._access.items() if a.revoked or now >= a.expires_at]
        for t in dead:
            del self._access[t]
        for c in [c for c, r in self._codes.items() if r.used or now >= r.expires_at]:
            del self._codes[c]
