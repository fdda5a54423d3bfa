"""The OAuth `state` parameter: signed, bound to one request, short-lived, single use.

Why it is signed *and* stored: the signature (HMAC-SHA256 with the
`oauth-state-key` secret) lets `/callback` reject a forged or tampered state
before it touches Firestore or trusts the `returnUrl` inside it; the stored
document (`sync_oauth_states/{nonce}`) makes it single use (consumed in a
transaction) and keeps the PKCE code verifier on the server side, where the
browser never sees it.

The stored document also binds the state to the first browser that opens it
(R24, `bind_browser`): the callback is accepted only from that browser.

The state carries (accountId, userId, returnUrl, expiry, nonce) in the clear:
none of them is secret, and carrying them lets the callback redirect back to a
`returnUrl` that we signed ourselves even when the state is expired or replayed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from shared.connect.browser_session import fingerprint, matches
from shared.core.clients import firestore_client
from shared.core.models import OAuthState
from shared.core.secrets import get_secret
from shared.crm.paths import oauth_state_ref

STATE_TTL_SECONDS = 600  # 10 minutes: long enough for a consent screen, short enough to limit replay
_VERSION = 1
_DOMAIN = b"gmail-crm-sync/oauth-state\x00"  # the same key also derives Auto BCC addresses
MAX_STATE_CHARS = 4096


class StateError(Exception):
    """The state cannot be used. `reason` is the public error code."""

    def __init__(self, reason: str, message: str, claims: StateClaims | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.claims = claims  # set only when the signature was valid (returnUrl is then ours)


@dataclass(frozen=True)
class StateClaims:
    nonce: str
    account_id: str
    user_id: str
    return_url: str
    expires_at: int  # epoch seconds

    def expired(self, now: float) -> bool:
        return now >= self.expires_at


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, payload: str) -> bytes:
    return hmac.new(key, _DOMAIN + payload.encode("ascii"), hashlib.sha256).digest()


def new_claims(account_id: str, user_id: str, return_url: str, now: float) -> StateClaims:
    return StateClaims(
        nonce=secrets.token_urlsafe(24),
        account_id=account_id,
        user_id=user_id,
        return_url=return_url,
        expires_at=int(now) + STATE_TTL_SECONDS,
    )


def sign_state(key: bytes, claims: StateClaims) -> str:
    body = [_VERSION, claims.nonce, claims.account_id, claims.user_id, claims.return_url, claims.expires_at]
    payload = _b64(json.dumps(body, separators=(",", ":"), ensure_ascii=True).encode("ascii"))
    return f"{payload}.{_b64(_mac(key, payload))}"


def verify_state(key: bytes, state: str) -> StateClaims:
    """The claims of a state we signed, or StateError("invalid_state").

    Expiry is *not* checked here (see `StateClaims.expired`): a well-signed but
    expired state still names a returnUrl we can safely send the browser back to.
    """
    if not isinstance(state, str) or not state or len(state) > MAX_STATE_CHARS:
        raise StateError("invalid_state", "state is missing or too long")
    payload, sep, mac_text = state.partition(".")
    if not sep or not payload or not mac_text:
        raise StateError("invalid_state", "state is malformed")
    try:
        mac = _unb64(mac_text)
        payload.encode("ascii")
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise StateError("invalid_state", "state is malformed") from None
    if not hmac.compare_digest(mac, _mac(key, payload)):
        raise StateError("invalid_state", "state signature does not match")
    try:
        body = json.loads(_unb64(payload))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise StateError("invalid_state", "state is malformed") from None
    if (
        not isinstance(body, list)
        or len(body) != 6
        or body[0] != _VERSION
        or not all(isinstance(v, str) for v in body[1:5])
        or not isinstance(body[5], int)
    ):
        raise StateError("invalid_state", "state is malformed")
    return StateClaims(nonce=body[1], account_id=body[2], user_id=body[3], return_url=body[4], expires_at=body[5])


# --------------------------------------------------------------------------- key and single use (Firestore)

STATE_KEY_SECRET = "oauth-state-key"


def state_key() -> bytes:
    """The HMAC key (secret `oauth-state-key`, base64); also derives Auto BCC addresses."""
    return base64.b64decode(get_secret(STATE_KEY_SECRET).data.strip())


def save_state(claims: StateClaims, code_verifier: str) -> None:
    """Record the state server-side with its PKCE verifier (`expiresAt` doubles as the TTL field)."""
    doc = OAuthState(accountId=claims.account_id, userId=claims.user_id, returnUrl=claims.return_url,
                     codeVerifier=code_verifier, expiresAt=datetime.fromtimestamp(claims.expires_at, tz=UTC))
    oauth_state_ref(claims.nonce).create(doc.to_doc())


def _state_in(tx: object, ref: object, claims: StateClaims) -> OAuthState:
    """The stored state, checked against the signed claims, not used and not expired (else StateError)."""
    snap = ref.get(transaction=tx)  # type: ignore[attr-defined]
    if not snap.exists:
        raise StateError("invalid_state", "state is unknown (never issued or already purged)", claims)
    doc = OAuthState.from_doc(snap.to_dict())
    if (doc.accountId, doc.userId, doc.returnUrl) != (claims.account_id, claims.user_id, claims.return_url):
        raise StateError("invalid_state", "state does not match the request it was issued for", claims)
    if doc.usedAt is not None:
        raise StateError("state_used", "state was already used", claims)
    if doc.expiresAt is None or doc.expiresAt <= datetime.now(UTC):
        raise StateError("state_expired", "state has expired", claims)
    return doc


def bind_browser(claims: StateClaims, presented: str | None, offered: str) -> tuple[str, bool]:
    """R24: the first browser to open the state owns it. Returns (PKCE verifier, whether `offered` was bound).

    `presented` is the session secret the browser already carries for this state (its cookie), `offered`
    a fresh one to bind if no browser owns the state yet. A different browser gets StateError
    ("session_mismatch"); the owner may open the URL again.
    """
    from google.cloud import firestore  # lazy: Firestore library (cold start)

    db = firestore_client()
    ref = oauth_state_ref(claims.nonce)

    @firestore.transactional
    def run(tx: object) -> tuple[str, bool]:
        doc = _state_in(tx, ref, claims)
        if doc.browserHash is None:
            tx.update(ref, {"browserHash": fingerprint(offered), "openedAt": datetime.now(UTC)})  # type: ignore[attr-defined]
            return doc.codeVerifier, True
        if not matches(presented, doc.browserHash):
            raise StateError("session_mismatch", "the authorization URL was opened in another browser", claims)
        return doc.codeVerifier, False

    result: tuple[str, bool] = run(db.transaction())
    return result


def consume_state(claims: StateClaims, presented: str | None) -> str:
    """Spend the state once (transaction) and return its PKCE code verifier, or StateError.

    Only the browser that opened the state (R24: `presented` is its session cookie) can spend it; a
    callback from any other browser is refused with `session_mismatch` and leaves the state unspent,
    so a stranger holding the callback URL cannot use it up before the rep's own browser arrives.
    """
    from google.cloud import firestore  # lazy: Firestore library (cold start)

    db = firestore_client()
    ref = oauth_state_ref(claims.nonce)

    @firestore.transactional
    def run(tx: object) -> str:
        doc = _state_in(tx, ref, claims)
        if doc.browserHash is None or not matches(presented, doc.browserHash):
            raise StateError("session_mismatch", "the callback came from another browser than the one that "
                             "opened the authorization URL", claims)
        tx.update(ref, {"usedAt": datetime.now(UTC)})  # type: ignore[attr-defined]
        return doc.codeVerifier

    verifier: str = run(db.transaction())
    return verifier
