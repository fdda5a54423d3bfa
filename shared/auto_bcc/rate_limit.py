"""A per-address rate limit for Auto BCC copies (issue 23), counted in Firestore.

Why: an Auto BCC address, once seen, lets anyone post copies; each costs
parsing, several reads and a transaction, and may create a contact. A rep
Bcc's their address on mail they write by hand: `AUTO_BCC_RATE_PER_MINUTE`
(30 by default) a minute is far above that and far below a flood.

How: one counter document per address and minute,
`sync_auto_bcc_rate/{token}_{minute}` (deterministic: every instance counts
in the same document, no clock is shared but Firestore's), incremented in a
transaction that refuses the copy once the count reached the limit, so
concurrent copies never overshoot. Each request is counted once it is let
through, whatever the copy then turns out to be (a flood of refused copies
is still a flood); a webhook's retry of the same copy counts again. Refused
requests are not counted (a sender that keeps hammering does not push the
window further). Documents carry `expireAt` (the window's end plus a day)
for Firestore's TTL policy (firestore.indexes.json).
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.connect.auto_bcc_route import token_from_address
from shared.core.clients import firestore_client
from shared.core.config import get_config
from shared.core.refusal import Refusal
from shared.crm.paths import auto_bcc_rate_ref

WINDOW_SECONDS = 60


class RateLimited(Refusal):
    """The address has had its copies for this minute; `retry_after` seconds until the next window."""

    status, code = 429, "rate_limited"

    def __init__(self, limit: int, retry_after: int) -> None:
        super().__init__(f"more than {limit} copies a minute for this Auto BCC address; retry in {retry_after} s",
                         retryAfterSeconds=retry_after, limitPerMinute=limit)
        self.limit = limit
        self.retry_after = retry_after


def window_doc_id(token: str, now: float) -> str:
    return f"{token}_{int(now // WINDOW_SECONDS)}"


def take(token: str, limit: int, now: float | None = None) -> int:
    """Count one copy for the address (route token) in this minute's window; RateLimited when it is full.
    Returns the count including this copy."""
    from google.cloud import firestore  # lazy: Firestore library (cold start)

    at = time.time() if now is None else now
    window_end = (int(at // WINDOW_SECONDS) + 1) * WINDOW_SECONDS
    db = firestore_client()
    ref = auto_bcc_rate_ref(window_doc_id(token, at))

    @firestore.transactional
    def run(tx: Any) -> int:
        snap = ref.get(transaction=tx)
        count = int((snap.to_dict() or {}).get("count") or 0) if snap.exists else 0
        if count >= limit:
            raise RateLimited(limit, max(1, math.ceil(window_end - at)))
        tx.set(ref, {"count": count + 1, "windowEnd": datetime.fromtimestamp(window_end, UTC),
                     "expireAt": datetime.fromtimestamp(window_end, UTC) + timedelta(days=1)})
        return count + 1

    result: int = run(db.transaction())
    return result


def throttle(to: str) -> None:
    """Count one copy for Auto BCC address `to` under `AUTO_BCC_RATE_PER_MINUTE`; RateLimited (429) when
    this minute's copies are used up. The adapter calls it after the route was found, before the body
    is read."""
    cfg = get_config()
    take(token_from_address(to, cfg.auto_bcc_domain) or to.lower(), cfg.auto_bcc_rate_per_minute)
