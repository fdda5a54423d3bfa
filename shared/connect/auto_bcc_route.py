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

Rotation (issue 23, `POST /auto-bcc/rotate`, auto_bcc_rotate.py): an address that
leaked can be replaced per user. The user's generation n (0 until the first
rotation) is kept in `sync_auto_bcc_owners/{link_id}` and enters the HMAC
(`auto_bcc_token`, unambiguous for any ids), so the new address is as unguessable as the
first and stays stable across reconnects; the old address's route is
deleted, so it answers 404 from then on.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from typing import Any

from shared.connect.oauth_state import state_key
from shared.core.config import get_config
from shared.core.models import AutoBccRoute
from shared.crm.paths import auto_bcc_owner_ref, auto_bcc_route_ref

TOKEN_CHARS = 26
_TOKEN = re.compile(r"^[a-z2-7]{26}$")


def auto_bcc_token(key: bytes, account_id: str, user_id: str, generation: int = 0) -> str:
    """Generation 0 is the original formula (addresses already handed out keep working); a rotated
    generation n signs `autobcc/rotated\0<n>\0<len(accountId)>\0<accountId><userId>`, which no
    generation-0 message equals (its prefix differs) and which names (n, account, user) unambiguously
    even for ids that contain NUL."""
    a, u = account_id.encode("utf-8"), user_id.encode("utf-8")
    if generation:
        msg = b"autobcc/rotated\x00" + f"{generation}\x00{len(a)}\x00".encode("ascii") + a + u
    else:
        msg = b"autobcc\x00" + a + b"\x00" + u
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


def generation_of(snap: Any) -> int:
    """The generation an owner document records (0: never rotated, or no document)."""
    try:
        return max(0, int((snap.to_dict() or {}).get("generation") or 0)) if snap.exists else 0
    except (TypeError, ValueError):
        return 0


def route_for(account_id: str, user_id: str, generation: int) -> tuple[AutoBccRoute, str]:
    """The route document and its id (token) of the user's address of that generation."""
    token = auto_bcc_token(state_key(), account_id, user_id, generation)
    address = auto_bcc_address(token, get_config().auto_bcc_domain)
    return AutoBccRoute(accountId=account_id, userId=user_id, address=address), token


def user_route(account_id: str, user_id: str) -> tuple[AutoBccRoute, str]:
    """The user's current route document and its id (token): their generation's (one read)."""
    return route_for(account_id, user_id, generation_of(auto_bcc_owner_ref(account_id, user_id).get()))


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
