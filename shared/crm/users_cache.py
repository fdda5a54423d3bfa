"""The account users' addresses (R11, R28: internal mail), cached per process with invalidation.

A user's addresses are their CRM `email`, the Gmail address they connected
(`emailSync.address`) and its accepted send-as aliases (`emailSync.aliases`).

Why cached: every sync pass needs to know which addresses are users of each
linked account, and an account has up to a thousand users: reading them all
per pass made users the largest share of the sync's Firestore reads. The set
is kept per account in the instance and checked each pass with two
aggregations side by side (count of users, sum of `emailSync.addressesStamp`;
about one billed read per thousand users each, run beside the contact
look-ups, so no extra round trip): a user added or removed, or a connect, disconnect or alias
change (each moves the user's stamp), changes it and the set is read again at
once; a CRM `email` changed in place is picked up when the entry is older
than SYNC_USERS_CACHE_SECONDS.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from shared.core.clients import firestore_client
from shared.core.config import get_config
from shared.core.roundtrips import ContextPool
from shared.crm import paths
from shared.crm.contacts import IN_QUERY_LIMIT, find_user_emails

_MAX_ACCOUNTS = 5000


@dataclass(frozen=True)
class _Entry:
    emails: frozenset[str] | None  # None: too many users to hold (look addresses up instead)
    count: tuple[int, int]  # (users, sum of their addressesStamp): changes when a user's addresses do
    at: float


STAMP = "emailSync.addressesStamp"
FIELDS = ["email", "emailSync.address", "emailSync.aliases"]


def user_addresses(data: dict[str, Any]) -> set[str]:
    """Every address of one user document (R28): CRM email, connected Gmail, accepted aliases; lower case."""
    sync = data.get("emailSync") or {}
    raw = [data.get("email"), sync.get("address"), *(sync.get("aliases") or [])]
    return {str(a).strip().lower() for a in raw if isinstance(a, str) and a.strip()}


_cache: dict[str, _Entry] = {}
_lock = threading.Lock()


def users_count(account_id: str) -> tuple[int, int]:
    """(number of users, sum of their `emailSync.addressesStamp`): two aggregation queries side by side (one
    query cannot hold both: a sum limits the query to documents that have the field, the count with it)."""
    col = firestore_client().collection(f"{paths.ACCOUNTS}/{account_id}/{paths.USERS}")

    def value(query: Any) -> int:
        result = query.get()
        return int(result[0][0].value or 0) if result and result[0] else 0

    with ContextPool(max_workers=2) as pool:
        n, stamps = pool.submit(value, col.count()), pool.submit(value, col.sum(STAMP))
        return n.result(), stamps.result()


def _read_all(account_id: str, limit: int = 1000) -> _Entry:
    col = firestore_client().collection(f"{paths.ACCOUNTS}/{account_id}/{paths.USERS}")
    snaps = list(col.select([*FIELDS, STAMP]).limit(limit).stream())
    if len(snaps) >= limit:
        return _Entry(None, users_count(account_id), time.monotonic())
    emails: set[str] = set()
    stamps = 0
    for snap in snaps:
        data = snap.to_dict() or {}
        emails |= user_addresses(data)
        stamp = (data.get("emailSync") or {}).get("addressesStamp")
        stamps += stamp if isinstance(stamp, int) and not isinstance(stamp, bool) else 0
    # the same figures the aggregation gives, from the documents just read (no second query)
    return _Entry(frozenset(emails), (len(snaps), stamps), time.monotonic())


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


def find_user_addresses(account_id: str, addresses: Iterable[str]) -> set[str]:
    """A very large account (no cached set): which of `addresses` are a user's (R11, R28), by queries run side
    by side: CRM `email` (its spellings, shared/crm/contacts.py), connected Gmail address, aliases."""
    from google.cloud.firestore_v1.base_query import FieldFilter  # lazy: Firestore library (cold start)

    wanted = sorted({a.strip().lower() for a in addresses if a and a.strip()})
    if not wanted:
        return set()
    col = firestore_client().collection(f"{paths.ACCOUNTS}/{account_id}/{paths.USERS}")
    chunks = [wanted[i:i + IN_QUERY_LIMIT] for i in range(0, len(wanted), IN_QUERY_LIMIT)]

    def gmail_side(field: str, op: str, chunk: list[str]) -> set[str]:
        snaps = col.where(filter=FieldFilter(field, op, chunk)).select(FIELDS).stream()
        return {a for s in snaps for a in user_addresses(s.to_dict() or {})}

    with ContextPool(max_workers=1 + 2 * len(chunks)) as pool:
        by_email = pool.submit(find_user_emails, account_id, wanted)
        others = [pool.submit(gmail_side, f, op, c) for c in chunks
                  for f, op in (("emailSync.address", "in"), ("emailSync.aliases", "array_contains_any"))]
        found = set(by_email.result())
        for fut in others:
            found |= fut.result() & set(wanted)
    return found
