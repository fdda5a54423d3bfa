"""Auto BCC addresses (R16): one per CRM user, stable and unguessable.

The local part is derived, not random, so reconnecting (or connecting another
Gmail, R3) gives the user the same address they may already have saved in
Outlook: base32(HMAC-SHA256(oauth-state-key, "autobcc\\0" + accountId + "\\0"
+ userId))[:26], lower case (130 bits). Without the key nobody can compute
another user's address; the route document `sync_auto_bcc/{token}` maps it
back to (account, user) so the webhook needs no key to resolve it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

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
