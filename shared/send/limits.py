"""R17, R30: Gmail's own sending limit: at most DAILY_SEND_LIMIT sends per Gmail address in any rolling 24 hours.

Gmail counts a rolling day, and it counts what the rep sent in Gmail itself
too. So do we: a mailbox has `limit` *slot* documents
`sync_send_slots/{mailbox}_w{n:05d}`, n in [0, limit), each holding the time of
the last send that used it (`usedAt`). A slot is free when it is absent or its
`usedAt` left the window (24 hours ago or more); a send takes a free one, with
a write that fails if someone else took it first (create-if-absent, or an
update conditioned on the update time we read). Each slot holds at most one
send per 24 hours, so no 24-hour window ever holds more than `limit` sends,
however many run at once: concurrent sends can never overshoot. `resetAt`,
when all are taken, is when the oldest counted send leaves the window.

Why slots and not a counter: one counter document would make every
concurrent send contend on it (Firestore serialises those transactions).

- CRM sends (shared.send.reserve): the send's first read already reads one
  candidate slot (a random one this instance does not know to be busy), so
  the record and the slot are still one commit; a busy candidate or a lost
  race takes the general path, which lists the mailbox's slots (one query)
  and tries free ones in its own random order.
- Sends the rep made in Gmail (R30): the sync sees them in the mailbox's
  Sent history and takes a slot for each, dated when Gmail sent it, owner
  `gmail:<gmailMessageId>` (`count_gmail_sends`): one list and one batch
  per chunk that has such sends, beside the chunk's writes; a replayed pass
  finds its owners in the list and counts nothing twice.
- A slot is given back (deleted) when Gmail does not send the message.
- Slots expire by themselves (`expireAt`, a TTL policy) a day after they
  left the window; the day-keyed slot documents of 0.2 are deleted by the
  daily tick (`delete_days_before`).
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from shared.core import log
from shared.core.clients import firestore_client
from shared.core.config import get_config
from shared.core.housekeeping import delete_matching
from shared.core.times import aware
from shared.crm import paths

WINDOW = timedelta(hours=24)
TRIES_PER_LIST = 3
LIST_ROUNDS = 5
_busy: dict[str, dict[int, datetime]] = {}  # per process: mailbox -> slot n -> until when it is busy
_busy_lock = threading.Lock()


@dataclass(frozen=True)
class Slot:
    mailbox_id: str
    n: int

    @property
    def doc_id(self) -> str:
        return paths.window_slot_id(self.mailbox_id, self.n)


class DailyLimitReached(Exception):
    def __init__(self, reset_at: datetime, limit: int) -> None:
        super().__init__(f"daily send limit of {limit} reached; resets at {reset_at.isoformat()}")
        self.reset_at = reset_at
        self.limit = limit


def _now() -> datetime:
    return datetime.now(UTC)


def _limit(limit: int | None) -> int:
    return get_config().daily_send_limit if limit is None else limit


def _slots() -> Any:
    return firestore_client().collection(paths.SEND_SLOTS)


def slot_ref(slot: Slot) -> Any:
    return paths.slot_ref(slot.doc_id)


def used_at(snap: Any) -> datetime | None:
    """When the send that holds this slot was made; None for an absent slot."""
    if snap is None or not snap.exists:
        return None
    return aware((snap.to_dict() or {}).get("usedAt")) or datetime(1970, 1, 1, tzinfo=UTC)


def is_free(snap: Any, now: datetime) -> bool:
    at = used_at(snap)
    return at is None or at <= now - WINDOW


def slot_doc(slot: Slot, owner: str, at: datetime, source: str = "crm") -> dict[str, Any]:
    return {"mailboxId": slot.mailbox_id, "n": slot.n, "idempotencyKey": owner, "usedAt": at, "source": source,
            "expireAt": at + 2 * WINDOW}  # TTL: a day after it left the window (a free slot, safe to delete)


def _mark_busy(mailbox_id: str, n: int, until: datetime) -> None:
    with _busy_lock:
        if len(_busy) > 10_000:
            _busy.clear()
        _busy.setdefault(mailbox_id, {})[n] = until


def _learn(mailbox_id: str, slots: dict[int, Any], now: datetime) -> None:
    """What a list of the mailbox's slots says replaces what this instance believed (a failed commit may have
    marked a slot busy that stayed free)."""
    busy = {n: (used_at(s) or now) + WINDOW for n, s in slots.items() if not is_free(s, now)}
    with _busy_lock:
        if len(_busy) > 10_000:
            _busy.clear()
        _busy[mailbox_id] = busy


def candidate(mailbox_id: str, *, limit: int | None = None, now: datetime | None = None) -> Slot | None:
    """A random slot this instance does not know to be busy, for the send's first read; None when the limit is
    0 or this instance saw every slot busy (then the general path lists them)."""
    limit, now = _limit(limit), now or _now()
    if limit <= 0:
        return None
    with _busy_lock:
        busy = {n for n, until in (_busy.get(mailbox_id) or {}).items() if until > now and n < limit}
    if len(busy) >= limit:
        return None
    rng = random.SystemRandom()
    for _ in range(8):  # cheap when few are busy; else pick among the free ones
        n = rng.randrange(limit)
        if n not in busy:
            return Slot(mailbox_id, n)
    return Slot(mailbox_id, rng.choice([n for n in range(limit) if n not in busy]))


def take_in(batch: Any, slot: Slot, snap: Any, owner: str, at: datetime, source: str = "crm") -> bool:
    """Add the taking of `slot` to `batch` (create if absent, else an update conditioned on the update time
    read); False when `snap` shows the slot busy (nothing added). The commit fails (AlreadyExists,
    FailedPrecondition) if another send took it meanwhile."""
    if not is_free(snap, at):
        _mark_busy(slot.mailbox_id, slot.n, (used_at(snap) or at) + WINDOW)
        return False
    if snap is None or not snap.exists:
        batch.create(slot_ref(slot), slot_doc(slot, owner, at, source))
    else:
        option = firestore_client().write_option(last_update_time=snap.update_time)
        batch.update(slot_ref(slot), slot_doc(slot, owner, at, source), option=option)
    _mark_busy(slot.mailbox_id, slot.n, at + WINDOW)
    return True


LOST_RACE = ("AlreadyExists", "FailedPrecondition", "Conflict", "Aborted")


def lost_race(exc: BaseException) -> bool:
    """A commit that failed because a slot (or the record beside it) was taken meanwhile."""
    return type(exc).__name__ in LOST_RACE


def list_slots(mailbox_id: str) -> dict[int, Any]:
    """Every slot document of the mailbox (one query on the id range, no composite index): n -> snapshot."""
    from google.cloud.firestore_v1.base_query import FieldFilter  # lazy: Firestore library (cold start)

    prefix = paths.window_slot_id(mailbox_id, 0)[:-5]
    col = _slots()
    q = (col.where(filter=FieldFilter("__name__", ">=", col.document(prefix)))
         .where(filter=FieldFilter("__name__", "<", col.document(prefix + "\uf8ff")))
         .select(["usedAt", "idempotencyKey"]))
    out: dict[int, Any] = {}
    for snap in q.stream():
        tail = snap.id[len(prefix):]
        if tail.isdigit():
            out[int(tail)] = snap
    return out


def reset_at(slots: dict[int, Any], now: datetime, limit: int) -> datetime:
    """When the oldest counted send leaves the window (R30); now + 24 h when nothing is counted (limit 0)."""
    counted = sorted(at for s in slots.values() if (at := used_at(s)) is not None and at > now - WINDOW)
    if not counted or limit <= 0:
        return now + WINDOW
    # the (len - limit + 1)-th oldest: once it leaves, one slot is free again
    return counted[max(0, len(counted) - limit)] + WINDOW


def _free(slots: dict[int, Any], limit: int, now: datetime) -> list[int]:
    return [n for n in range(limit) if is_free(slots.get(n), now)]


def claim_slot(mailbox_id: str, owner: str, *, limit: int | None = None, now: datetime | None = None) -> Slot:
    """The general path: list the mailbox's slots and take a free one in a random order of our own (concurrent
    senders rarely pick the same document), or DailyLimitReached with the true resetAt (R30)."""
    limit, now = _limit(limit), now or _now()
    rng = random.SystemRandom()
    slots: dict[int, Any] = {}
    for _ in range(LIST_ROUNDS):
        slots = list_slots(mailbox_id) if limit > 0 else {}
        _learn(mailbox_id, slots, now)
        free = _free(slots, limit, now)
        if not free:
            break
        for n in rng.sample(free, min(TRIES_PER_LIST, len(free))):
            slot = Slot(mailbox_id, n)
            batch = firestore_client().batch()
            take_in(batch, slot, slots.get(n), owner, now)
            try:
                batch.commit()
            except Exception as exc:
                if not lost_race(exc):
                    raise
                continue
            return slot
    raise DailyLimitReached(reset_at(slots, now, limit), limit)


def release_slot(slot: Slot) -> None:
    """Give the slot back: the send did not happen."""
    with _busy_lock:
        (_busy.get(slot.mailbox_id) or {}).pop(slot.n, None)
    slot_ref(slot).delete()


def slot_held_by(owner: str, mailbox_id: str, now: datetime | None = None) -> Slot | None:
    """The slot an earlier attempt of this idempotency record took and still holds (a crashed send's retry
    reuses it)."""
    from google.cloud.firestore_v1.base_query import FieldFilter  # lazy: Firestore library (cold start)

    now = now or _now()
    q = _slots().where(filter=FieldFilter("idempotencyKey", "==", owner)).select(["mailboxId", "n", "usedAt"])
    for snap in q.stream():
        d = snap.to_dict() or {}
        if d.get("mailboxId") == mailbox_id and isinstance(d.get("n"), int) and not is_free(snap, now):
            return Slot(mailbox_id, int(d["n"]))
    return None


def gmail_owner(gmail_message_id: str) -> str:
    return f"gmail:{gmail_message_id}"


def count_gmail_sends(mailbox_id: str, sends: list[tuple[str, datetime]], *, limit: int | None = None,
                      now: datetime | None = None) -> int:
    """R30: count sends the rep made in Gmail itself (gmail id, when Gmail sent it): each takes a slot dated
    then. Idempotent (a replayed pass finds its owners among the slots). A send that finds no free slot is not
    counted (Gmail only lets it through when our count was behind, e.g. slots given back); logged. Returns the
    slots taken."""
    limit, now = _limit(limit), now or _now()
    sends = [(g, at) for g, at in sends if now - WINDOW < at <= now + timedelta(minutes=5)]
    if not sends or limit <= 0:
        return 0
    rng = random.SystemRandom()
    for _ in range(LIST_ROUNDS):
        slots = list_slots(mailbox_id)
        _learn(mailbox_id, slots, now)
        owners = {(s.to_dict() or {}).get("idempotencyKey") for s in slots.values() if not is_free(s, now)}
        todo = [(g, at) for g, at in sends if gmail_owner(g) not in owners]
        if not todo:
            return 0
        free = _free(slots, limit, now)
        rng.shuffle(free)
        if len(free) < len(todo):
            log.warning("sends made in Gmail exceed the free send slots; not all counted", mailboxId=mailbox_id,
                        sends=len(todo), free=len(free))
        batch = firestore_client().batch()
        taken = 0
        for (g, at), n in zip(todo, free, strict=False):
            taken += take_in(batch, Slot(mailbox_id, n), slots.get(n), gmail_owner(g), min(at, now), "gmail")
        if not taken:
            return 0
        try:
            batch.commit()
        except Exception as exc:
            if not lost_race(exc):
                raise
            continue  # a CRM send took one of them meanwhile: list again
        return taken
    log.warning("sends made in Gmail not counted: the slots kept changing", mailboxId=mailbox_id)
    return 0


def delete_expired(now: datetime | None = None, *, page_size: int = 400, deadline: float | None = None) -> int:
    """What the TTL policy on `expireAt` deletes in production (the local stack's daily tick emulates it; by
    `usedAt`, since `expireAt` is exempt from indexing): slots a day past the window."""
    from google.cloud.firestore_v1.base_query import FieldFilter  # lazy: Firestore library (cold start)

    q = _slots().where(filter=FieldFilter("usedAt", "<", (now or _now()) - 2 * WINDOW))
    return delete_matching(q, page_size=page_size, deadline=deadline)


# --- the day-keyed slot documents of 0.2, deleted by the daily tick -------------------------------------------

def _tz() -> ZoneInfo:
    return ZoneInfo(get_config().send_limit_timezone)


def today(now: datetime | None = None) -> date:
    return (now or datetime.now(_tz())).astimezone(_tz()).date()


def day_key(d: date) -> str:
    return d.isoformat()


def delete_days_before(day: str, *, page_size: int = 400, deadline: float | None = None) -> int:
    """Delete 0.2's day-keyed slot documents of days before `day` (quota_reset); window slots have no `day`."""
    from google.cloud.firestore_v1.base_query import FieldFilter  # lazy: Firestore library (cold start)

    q = _slots().where(filter=FieldFilter("day", "<", day))
    return delete_matching(q, page_size=page_size, deadline=deadline)
