"""Gmail's per-user rate, paced on our side: a token bucket of quota units per mailbox.

Why: Gmail allows each user 250 quota units per second (a moving average;
SPEC §4). A sync that fires batches of 50 `messages.get` (250 units) as fast
as it can gets parts of them refused with 429 and then retries them: a 429
storm that wastes round trips and quota and ends in redeliveries. Waiting
for our own bucket instead costs nothing at Gmail. One instance syncs a
mailbox at a time (the lease), so a bucket per mailbox in the process is the
whole story for the sync; the default rate (GMAIL_USER_UNITS_PER_SECOND, 240)
stays just under Gmail's 250 (a CRM send that lands in the middle of a backlog
may still meet a 429 now and then, which send_email retries; 200 would leave
room for sends at a fifth of the backlog speed).

The bucket holds one second's worth of units; a call larger than that waits
for a full bucket and then runs the bucket into debt, which the next calls
wait out (Gmail itself admits such a call when the user is idle).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

# Gmail's published cost per call (https://developers.google.com/gmail/api/reference/quota).
UNITS = {"history.list": 2, "messages.get": 5, "messages.list": 5, "getProfile": 1, "watch": 100}
_MAX_BUCKETS = 10_000


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


def bucket_for(mailbox_id: str, rate: float) -> TokenBucket:
    """The process's bucket for one mailbox (the rate follows the configuration)."""
    with _lock:
        b = _buckets.get(mailbox_id)
        if b is None or b.rate != max(rate, 1e-6):
            if len(_buckets) >= _MAX_BUCKETS:
                _buckets.clear()
            b = _buckets[mailbox_id] = TokenBucket(rate)
        return b
