"""Gmail's usage limits: quota units per method and user, the per-user rate, the sending limit.

Units are Gmail's published ones. The per-user rate is a token bucket that
refills at `rate` units per second and holds one second's worth (Gmail calls
it a moving average of 250 units/s; in practice a burst of 100 messages.get in
one batch, 500 units, is refused in part, which is what this reproduces). A
call larger than the bucket passes only when the bucket is full. The sending
limit is a rolling 24 hours of sends per mailbox (API and Gmail UI alike).
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable

# https://developers.google.com/gmail/api/reference/quota (per method, short names as in /sim/stats)
UNITS: dict[str, int] = {
    "getProfile": 1,
    "watch": 100,
    "stop": 50,
    "history.list": 2,
    "labels.list": 1,
    "labels.get": 1,
    "messages.list": 5,
    "messages.get": 5,
    "messages.send": 100,
    "messages.modify": 5,
    "messages.trash": 5,
    "messages.untrash": 5,
    "messages.delete": 10,
    "attachments.get": 5,
    "threads.get": 10,
    "threads.list": 10,
}
SEND_WINDOW_SECONDS = 86400


class Quota:
    def __init__(self, rate_units_per_second: float = 250.0, clock: Callable[[], float] = time.time) -> None:
        self.rate = rate_units_per_second
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # address -> (tokens, at)
        self._units: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self._calls: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self._sends: dict[str, deque[float]] = defaultdict(deque)

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()
            self._units.clear()
            self._calls.clear()
            self._sends.clear()

    def count_call(self, address: str, method: str) -> None:
        with self._lock:
            self._calls[address][method] += 1

    def admit(self, address: str, method: str) -> float | None:
        """Charge the call's units; None when admitted, else the seconds until it would be."""
        units = UNITS.get(method, 1)
        now = self._clock()
        with self._lock:
            cap = max(self.rate, 1e-9)
            tokens, at = self._buckets.get(address, (cap, now))
            tokens = min(cap, tokens + (now - at) * self.rate)
            need = min(units, cap)
            if tokens + 1e-9 < need:
                self._buckets[address] = (tokens, now)
                return (need - tokens) / self.rate if self.rate > 0 else 3600.0
            self._buckets[address] = (tokens - units, now)
            self._units[address][method] += units
            return None

    def reserve_send(self, address: str, limit: int) -> float | None:
        """Count one send in the rolling day; None when allowed, else when the oldest send leaves the window."""
        now = self._clock()
        with self._lock:
            sends = self._sends[address]
            while sends and sends[0] <= now - SEND_WINDOW_SECONDS:
                sends.popleft()
            if len(sends) >= limit:
                return (sends[0] if sends else now) + SEND_WINDOW_SECONDS
            sends.append(now)
            return None

    def release_send(self, address: str) -> None:
        """Give back the newest reservation (the send failed before it was made)."""
        with self._lock:
            if self._sends[address]:
                self._sends[address].pop()

    def stats(self) -> dict[str, dict[str, dict[str, int]]]:
        with self._lock:
            return {
                "quotaUnits": {a: dict(m) for a, m in self._units.items()},
                "calls": {a: dict(m) for a, m in self._calls.items()},
            }
