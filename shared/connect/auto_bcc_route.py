"""Auto BCC addresses (R16, R16b): one per CRM user, connected or not, stable and unguessable.

The local part is derived, not random, so reconnecting (or connecting another
Gmail, R3) gives the user the same address they may already have saved in
Outlook: base32(HMAC-SHA256(oauth-state-key, "autobcc\\0" + accountId + "\\0"
+ userId))[:26], lower case (130 bits). Without the key nobody can compute
another user's address. The HMAC cannot be inverted, so the route document
`sync_auto_bcc/{token}` maps an address back to (account, user); it is
written when the user connects Gmail and, for a user who never did (an
Outlook user, R16b), the first time `GET /status` hands the address out
(`ensure_address`). An address is only ever learnt from `/status` or from
the user document that a connection wrote, so every address anyone can hold
has its route. Content is a pure function of (account, user): writing it
twice changes nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from shared.connect.oauth_state import state_key
from shared.core.config import get_config
from shared.core.models import AutoBccRoute
from shared.crm.paths import auto_bcc_route_ref

TOKEN_CHARS = 26
_TOKEN = re.compile(r"^[a-z2-7]{26}$")


def auto_bcc_token(key: bytes, account_id: str, user_id: str) -> str:
    msg = b"autobcc\x00" + account_id.encode("utf-8") + b"\x00" + user_id.encode("utf-8")
    mac = hmac.new(key, msg, hashlib.sha256).digest()
    return base64.b32encode(mac).decode("ascii")[:TOKEN_CHARS].lower()


def auto_bcc_address(token: str, domain: str) -> str:
    return f"{token}@{domain.lower()}"


def token_from_address(address: str, domain: str) -> str | None:
    """The route token of an Auto BCC address on our domain, or None if it is not one."""
    local, sep, dom = address.strip().lower().rpartition("@")
    if not sep or dom != domain.lower() or not _TOKEN.match(local):
        return None
    return local


def user_route(account_id: str, user_id: str) -> tuple[AutoBccRoute, str]:
    """The user's route document and its id (token), from the secret and the configured domain."""
    token = auto_bcc_token(state_key(), account_id, user_id)
    address = auto_bcc_address(token, get_config().auto_bcc_domain)
    return AutoBccRoute(accountId=account_id, userId=user_id, address=address), token


def ensure_address(account_id: str, user_id: str) -> str:
    """The user's Auto BCC address, its route created if absent (R16b: every CRM user has one).

    Call it for a user that exists (`GET /status` checks first). One read when
    the route is there already (every call after the first), a create when not;
    a concurrent create of the same deterministic document is the same write.
    """
    from google.api_core.exceptions import AlreadyExists  # lazy: Firestore library (cold start)

    route, token = user_route(account_id, user_id)
    ref = auto_bcc_route_ref(token)
    if not ref.get().exists:
        try:
            ref.create(route.to_doc())
        except AlreadyExists:
            pass
    return route.address


def lookup(address: str, domain: str) -> AutoBccRoute | None:
    """The (account, user) an Auto BCC address names, or None (not ours, or never handed out)."""
    token = token_from_address(address, domain)
    if token is None:
        return None
    snap = auto_bcc_route_ref(token).get()
    route = AutoBccRoute.from_doc(snap.to_dict()) if snap.exists else None
    return route if route is not None and route.accountId and route.userId else None
