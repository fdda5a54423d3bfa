"""R28: where a mailbox's send-as aliases are stored so internal mail is decided with them.

On the mailbox (`aliases`) and on each linked user's `emailSync` (`aliases`, with
`addressesStamp`, the time the user's addresses last changed in ms, so the
sync's per-process users cache sees the change: shared/crm/users_cache.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.core import log
from shared.crm.paths import user_ref


def stamp(at: datetime) -> int:
    """`emailSync.addressesStamp`: when the user's addresses last changed, in ms (summed by the users cache)."""
    return int(at.timestamp() * 1000)


def mirror_to_users(links: list[Any], aliases: list[str], at: datetime) -> None:
    """Changed aliases of a mailbox onto every linked user's emailSync (rare: one write per user)."""
    for ln in links:
        user_ref(ln.accountId, ln.userId).set(
            {"emailSync": {"aliases": aliases, "addressesStamp": stamp(at)}}, merge=True)
    log.info("gmail send-as aliases changed", count=len(aliases), users=len(links))
