"""Gmail's per-user rate, paced on our side: the quota model in force and a token bucket per mailbox.

Why: Gmail refuses (429 `userRateLimitExceeded`) what passes the user's
limit; a sync that fires batches as fast as it can gets parts of them refused
and retries them — a 429 storm that wastes round trips and quota and ends in
redeliveries. Waiting for our own bucket instead costs nothing at Gmail.

Which limit: Google's model for Cloud projects created on or after 1 May 2026
(GMAIL_QUOTA_MODEL=2026, the default; a new deployment gets it) allows 6,000
units a minute per user (100/s) and prices messages.get at 20 units; older
projects (GMAIL_QUOTA_MODEL=legacy) 15,000 a minute (250/s) and 5 units. The
pace is 90 % of the model's per-user limit (GMAIL_USER_UNITS_PER_SECOND
overrides it), so Gmail's moving window never sees us over it even when
latency bunches two batches together, and a CRM send landing in the middle of
a backlog still finds room (send_email retries the rare 429 it may meet).

The bucket holds one second's worth of units (the strictest window Gmail has
used: the legacy "per second, moving average"; the 2026 limit is stated per
minute and tolerates larger bursts, which the sync does not count on); a batch
of messages.get is cut to fit it (`Limits.batch_size`: 4 gets of 20 units at
90 units/s), so no batch is larger than what Gmail admits at once. A call
larger than the bucket (users.watch, 100 units) waits for a full bucket and
then runs it into debt, which the next calls wait out (Gmail itself admits
such a call when the user is idle).

One instance syncs a mailbox at a time (the lease), so a bucket per mailbox
in the process is the whole story for the sync.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from shared.core.config import get_config

# Gmail's cost per call (https://developers.google.com/workspace/gmail/api/reference/quota), per model.
# Short method names as the simulator's /sim/stats counts them; scripts/scale_model.py prices with these too.
LEGACY_UNITS: Mapping[str, int] = MappingProxyType({
    "history.list": 2, "messages.get": 5, "messages.list": 5, "getProfile": 1, "watch": 100, "stop": 50,
    "messages.send": 100, "attachments.get": 5, "threads.get": 10, "threads.list": 10, "messages.trash": 5,
    "messages.untrash": 5, "messages.delete": 10, "messages.modify": 5, "labels.list": 1, "labels.get": 1,
})
UNITS_2026: Mapping[str, int] = MappingProxyType({
    **LEGACY_UNITS, "messages.get": 20, "attachments.get": 20, "threads.get": 40, "messages.trash": 20,
})
MODELS: dict[str, tuple[Mapping[str, int], int]] = {  # model -> (units, per-user units a minute)
    "2026": (UNITS_2026, 6_000),
    "legacy": (LEGACY_UNITS, 15_000),
}
HEADROOM = 0.9  # of the per-user limit
MAX_BATCH = 50  # Gmail's advice for one batch request
_MAX_BUCKETS = 10_000


@dataclass(frozen=True)
class Limits:
    """The quota model in force on our side: what each call costs and how fast one mailbox may spend."""

    model: str
    units: Mapping[str, int]
    user_units_per_minute: int  # Gmail's per-user limit
    pace: float  # units per second the sync spends per mailbox

    def cost(self, method: str) -> int:
        return self.units.get(method, 1)

    def batch_size(self, method: str = "messages.get") -> int:
        """How many calls of `method` one batch may hold: what the bucket admits at once (at least 1)."""
        return max(1, min(MAX_BATCH, int(self.pace // self.cost(method))))


def limits_for(model: str, units_per_second: float | None = None) -> Limits:
    """The limits of `model` ("2026" | "legacy"); `units_per_second` overrides the pace (else 90 % of the limit)."""
    if model not in MODELS:
        raise ValueError(f"GMAIL_QUOTA_MODEL must be one of {', '.join(MODELS)}, not {model!r}")
    units, per_minute = MODELS[model]
    pace = units_per_second if units_per_second else per_minute / 60 * HEADROOM
    return Limits(model, units, per_minute, pace)


def limits() -> Limits:
    """The limits the configuration puts in force (GMAIL_QUOTA_MODEL, GMAIL_USER_UNITS_PER_SECOND)."""
    cfg = get_config()
    return limits_for(cfg.gmail_quota_model, cfg.gmail_user_units_per_second)


def cost(method: str) -> int:
    """Units one call of `method` costs under the model in force."""
    return limits().cost(method)


class TokenBucket:
    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.rate = max(rate, 1e-6)
        self.capacity = self.rate
        self._tokens = self.capacity
        self._at = clock()
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self.waited = 0.0  # seconds spent waiting (reported by the sync)

    def _wait_needed(self, units: float) -> float:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
        self._at = now
        need = min(units, self.capacity)
        if self._tokens + 1e-6 >= need:
            self._tokens -= units
            return 0.0
        return (need - self._tokens) / self.rate

    def take(self, units: float) -> float:
        """Block until `units` may be spent; returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                delay = self._wait_needed(units)
            if delay <= 0:
                self.waited += waited
                return waited
            self._sleep(delay)
            waited += delay


_buckets: dict[str, TokenBucket] = {}
_lock = threading.Lock()


def bucket_for(mailbox_id: str, rate: float | None = None) -> TokenBucket:
    """The process's bucket for one mailbox, at `rate` or the pace of the limits in force."""
    rate = limits().pace if rate is None else rate
    with _lock:
        b = _buckets.get(mailbox_id)
        if b is None or b.rate != max(rate, 1e-6):
            if len(_buckets) >= _MAX_BUCKETS:
                _buckets.clear()
            b = _buckets[mailbox_id] = TokenBucket(rate)
        return b
