"""The account users' addresses (R11: internal mail), cached per process with invalidation.

Why: every sync pass needs to know which addresses are users of each linked
account, and an account has up to a thousand users: reading them all per
pass made users the largest share of the sync's Firestore reads. The set is
kept per account in the instance and checked each pass with a count
aggregation (about one billed read per thousand users, run beside the
contact look-ups, so no extra round trip): a user added or removed changes
the count and the set is read again at once; an address changed in place is
picked up when the entry is older than SYNC_USERS_CACHE_SECONDS.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from shared.core.clients import firestore_client
from shared.core.config import get_config
from shared.crm import paths

_MAX_ACCOUNTS = 5000


@dataclass(frozen=True)
class _Entry:
    emails: frozenset[str] | None  # None: too many users to hold (look addresses up instead)
    count: int
    at: float


_cache: dict[str, _Entry] = {}
_lock = threading.Lock()


def users_count(account_id: str) -> int:
    col = firestore_client().collection(f"{paths.ACCOUNTS}/{account_id}/{paths.USERS}")
    result = col.count().get()
    return int(result[0][0].value) if result and result[0] else 0


def _read_all(account_id: str, limit: int = 1000) -> _Entry:
    col = firestore_client().collection(f"{paths.ACCOUNTS}/{account_id}/{paths.USERS}")
    snaps = list(col.select(["email"]).limit(limit).stream())
    if len(snaps) >= limit:
        return _Entry(None, users_count(account_id), time.monotonic())
    emails = {str((s.to_dict() or {}).get("email") or "").strip().lower() for s in snaps} - {""}
    return _Entry(frozenset(emails), len(snaps), time.monotonic())


def account_user_emails(account_id: str) -> set[str] | None:
    """Every user address of the account (lower case), or None for a very large account
    (a thousand users or more: the caller looks the chunk's addresses up instead)."""
    with _lock:
        hit = _cache.get(account_id)
    fresh = hit is not None and time.monotonic() - hit.at < get_config().sync_users_cache_seconds
    entry = hit if hit is not None and fresh and users_count(account_id) == hit.count else _read_all(account_id)
    if entry is not hit:
        with _lock:
            if len(_cache) >= _MAX_ACCOUNTS:
                _cache.clear()
            _cache[account_id] = entry
    return set(entry.emails) if entry.emails is not None else None


def invalidate(account_id: str | None = None) -> None:
    with _lock:
        if account_id is None:
            _cache.clear()
        else:
            _cache.pop(account_id, None)
