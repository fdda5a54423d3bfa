"""R17: at most DAILY_SEND_LIMIT sends per Gmail address per day, without a hot document.

A counter document per mailbox and day would make every concurrent send
contend on one document: Firestore serialises those transactions (and the
emulator makes each conflicting one wait about 2 s). Instead each send claims
its own *slot* document `sync_send_slots/{mailbox}_{day}_{n}` with n in
[0, limit), using create-if-absent, which fails at once with AlreadyExists
when the slot is taken. A send picks a random n; after a collision it lists
the day's slots (one query on the document-id range, no composite index) and
tries free ones in its own random order. There are only `limit` slot ids per day, so
concurrent sends can never overshoot; the limit+1st finds none free.

A slot is released (deleted) when Gmail does not send the message, so a
failed attempt does not use up the day. Days are calendar days in
SEND_LIMIT_TIMEZONE; slots of past days expire by Firestore TTL policy
(`expireAt`), which the local stack's daily tick emulates.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from shared.core.clients import firestore_client
from shared.core.config import get_config
from shared.core.housekeeping import delete_matching
from shared.crm import paths
from shared.crm.paths import slot_ref

TRIES_PER_LIST = 3
LIST_ROUNDS = 5
_seen_full: set[tuple[str, str]] = set()  # per process: (mailbox, day) found full, so skip the blind try


@dataclass(frozen=True)
class Slot:
    mailbox_id: str
    day: str
    n: int

    @property
    def doc_id(self) -> str:
        return paths.send_slot_id(self.mailbox_id, self.day, self.n)


class DailyLimitReached(Exception):
    def __init__(self, reset_at: datetime, limit: int) -> None:
        super().__init__(f"daily send limit of {limit} reached; resets at {reset_at.isoformat()}")
        self.reset_at = reset_at
        self.limit = limit


def _tz() -> ZoneInfo:
    return ZoneInfo(get_config().send_limit_timezone)


def today(now: datetime | None = None) -> date:
    return (now or datetime.now(_tz())).astimezone(_tz()).date()


def day_key(d: date) -> str:
    return d.isoformat()


def reset_at(now: datetime | None = None) -> datetime:
    """The next day boundary in SEND_LIMIT_TIMEZONE (when today's slots stop counting)."""
    tz = _tz()
    d = today(now) + timedelta(days=1)
    return datetime.combine(d, time(0), tzinfo=tz)


def _slots() -> Any:
    return firestore_client().collection(paths.SEND_SLOTS)


def taken_slots(mailbox_id: str, day: str) -> set[int]:
    """Numbers of the day's claimed slots: one range query over document ids, ids only."""
    from google.cloud.firestore_v1.base_query import FieldFilter  # lazy: Firestore library (cold start)

    prefix = f"{mailbox_id}_{day}_"
    col = _slots()
    q = (col.where(filter=FieldFilter("__name__", ">=", col.document(prefix)))
         .where(filter=FieldFilter("__name__", "<", col.document(prefix + "\uf8ff")))
         .select([]))
    out: set[int] = set()
    for snap in q.stream():
        tail = snap.id[len(prefix):]
        if tail.isdigit():
            out.add(int(tail))
    return out


def slot_doc(slot: Slot, owner: str, expire_at: datetime) -> dict[str, Any]:
    from google.cloud import firestore  # lazy: Firestore library (cold start)

    return {"mailboxId": slot.mailbox_id, "day": slot.day, "idempotencyKey": owner,
            "createdAt": firestore.SERVER_TIMESTAMP, "expireAt": expire_at}


def expiry(now: datetime | None = None) -> datetime:
    """When a slot of today may be deleted by the TTL policy (the day after it ends)."""
    return reset_at(now) + timedelta(days=1)


def _try_create(slot: Slot, owner: str, expire_at: datetime) -> bool:
    from google.api_core.exceptions import AlreadyExists  # lazy: Firestore library (cold start)

    try:
        slot_ref(slot.doc_id).create(slot_doc(slot, owner, expire_at))
    except AlreadyExists:
        return False
    return True


def fast_slot(mailbox_id: str, *, limit: int | None = None, now: datetime | None = None) -> Slot | None:
    """One random slot of today for a caller that creates it in a commit of its own (the send path
    writes it with the idempotency record), or None when this instance saw the day full or the limit
    is 0: then `claim_slot` decides. A collision fails that commit; the caller falls back to claim_slot.
    """
    limit = get_config().daily_send_limit if limit is None else limit
    now = now or datetime.now(_tz())
    day = day_key(today(now))
    if limit <= 0 or (mailbox_id, day) in _seen_full:
        return None
    return Slot(mailbox_id, day, random.SystemRandom().randrange(limit))


def claim_slot(mailbox_id: str, owner: str, *, limit: int | None = None, now: datetime | None = None) -> Slot:
    """Claim one of today's `limit` slots for `owner` (the idempotency record id), or DailyLimitReached.

    One random slot first (almost always free early in the day); after a collision, list the day's
    slots and try free ones in a random order of our own, so concurrent senders rarely pick the same
    document (concurrent writes to one document are what is slow, in the emulator and in production).
    A process that saw the day full skips the random try and lists at once.
    """
    limit = get_config().daily_send_limit if limit is None else limit
    now = now or datetime.now(_tz())
    day = day_key(today(now))
    resets = reset_at(now)
    expire_at = expiry(now)
    if limit <= 0:
        raise DailyLimitReached(resets, limit)
    rng = random.SystemRandom()
    if (mailbox_id, day) not in _seen_full:
        slot = Slot(mailbox_id, day, rng.randrange(limit))
        if _try_create(slot, owner, expire_at):
            return slot
    for _ in range(LIST_ROUNDS):
        taken = taken_slots(mailbox_id, day)
        free = [n for n in range(limit) if n not in taken]
        if not free:
            break
        for n in rng.sample(free, min(TRIES_PER_LIST, len(free))):
            slot = Slot(mailbox_id, day, n)
            if _try_create(slot, owner, expire_at):
                _seen_full.discard((mailbox_id, day))
                return slot
    if len(_seen_full) > 10_000:
        _seen_full.clear()
    _seen_full.add((mailbox_id, day))
    raise DailyLimitReached(resets, limit)


def release_slot(slot: Slot) -> None:
    """Give the slot back: the send did not happen."""
    _slots().document(slot.doc_id).delete()


def slot_held_by(owner: str, mailbox_id: str, day: str) -> Slot | None:
    """The slot an earlier attempt of this idempotency record claimed today (a crashed send's retry reuses it)."""
    from google.cloud.firestore_v1.base_query import FieldFilter  # lazy: Firestore library (cold start)

    for snap in _slots().where(filter=FieldFilter("idempotencyKey", "==", owner)).select([]).stream():
        slot = parse_slot_id(snap.id)
        if slot is not None and slot.mailbox_id == mailbox_id and slot.day == day:
            return slot
    return None


def parse_slot_id(doc_id: str) -> Slot | None:
    mailbox, _, rest = doc_id.partition("_")
    day, _, n = rest.partition("_")
    if not (mailbox and day and n.isdigit()):
        return None
    return Slot(mailbox, day, int(n))


def delete_days_before(day: str, *, page_size: int = 400, deadline: float | None = None) -> int:
    """Delete slot documents of days before `day` (the local stack's daily tick, in the TTL policy's place);
    paged, stops at `deadline` (monotonic)."""
    from google.cloud.firestore_v1.base_query import FieldFilter  # lazy: Firestore library (cold start)

    q = _slots().where(filter=FieldFilter("day", "<", day))
    return delete_matching(q, page_size=page_size, deadline=deadline)
