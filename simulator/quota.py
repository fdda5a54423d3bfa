"""Gmail's usage limits: quota units per method, the per-user and per-project rates, the sending limit.

Two models, as Google runs them (SPEC §4, 0.3):
- "2026" (the default): Cloud projects created on or after 1 May 2026 — per
  user 6,000 units a minute, per project 1,200,000 a minute, a per-project
  daily count against the 80,000,000-unit no-charge threshold, and the
  current per-method table (messages.get 20, threads.get 40,
  messages.attachments.get 20, messages.trash 20, …);
- "legacy": older projects — per user 15,000 a minute (Google's former "250
  units per second, moving average"), messages.get 5, threads.get 10, ….
A method the 2026 table does not reprice keeps its legacy price.

Both rates are moving windows: a token bucket per user (and one for the
project) that refills at the limit / 60 per second and holds `burst_seconds`
of it. Legacy: one second, Google's former "moving average of 250 units per
second (allows short bursts)"; in practice a batch of 100 messages.get was
refused in part, which this reproduces. 2026: Google states only the
per-minute figure, so a burst within the minute passes: the bucket holds 10
seconds of the limit (1,000 units: eight sends at once, a connect's
getProfile + users.watch), and a rate kept above the limit is refused within
seconds (a backlog fetched at 240 units/s is, from its seventh second on).
`rateBurstSeconds` sets another burst. A call larger than the bucket passes
only when the bucket is full. A refused call is not charged; it is
counted in `refused` under Gmail's reason (`userRateLimitExceeded` for the
user's limit, `rateLimitExceeded` for the project's). The sending limit is a
rolling 24 hours of sends per mailbox (API and Gmail UI alike).
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

# Per method, short names as in /sim/stats (https://developers.google.com/workspace/gmail/api/reference/quota).
LEGACY_UNITS: Mapping[str, int] = MappingProxyType({
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
})
UNITS_2026: Mapping[str, int] = MappingProxyType({
    **LEGACY_UNITS,
    "messages.get": 20,
    "threads.get": 40,
    "attachments.get": 20,
    "messages.trash": 20,
})
SEND_WINDOW_SECONDS = 86400
USER_LIMIT_REASON = "userRateLimitExceeded"
PROJECT_LIMIT_REASON = "rateLimitExceeded"
SENDING_LIMIT_REASON = "dailySendingLimit"  # Gmail answers rateLimitExceeded "(Mail sending)"; counted apart


@dataclass(frozen=True)
class QuotaModel:
    name: str
    units: Mapping[str, int]
    user_units_per_minute: int
    project_units_per_minute: int
    daily_threshold: int | None  # units a project may spend a day before Google bills (None: no threshold)
    burst_seconds: float  # the buckets hold this many seconds of the rate


MODELS: dict[str, QuotaModel] = {
    "2026": QuotaModel("2026", UNITS_2026, 6_000, 1_200_000, 80_000_000, 10.0),
    "legacy": QuotaModel("legacy", LEGACY_UNITS, 15_000, 1_200_000, None, 1.0),
}
DEFAULT_MODEL = "2026"


@dataclass(frozen=True)
class Refusal:
    """A call the rate limits refused: Gmail's reason and the seconds until it would be admitted."""

    reason: str
    wait: float


class _Bucket:
    """Tokens refilled at `rate` per second, capped at `cap`."""

    __slots__ = ("at", "tokens")

    def __init__(self, tokens: float, at: float) -> None:
        self.tokens, self.at = tokens, at

    def level(self, rate: float, cap: float, now: float) -> float:
        return min(cap, self.tokens + (now - self.at) * rate)


class Quota:
    def __init__(self, model: QuotaModel | None = None, user_rate: float | None = None,
                 project_rate: float | None = None, clock: Callable[[], float] = time.time,
                 burst_seconds: float | None = None) -> None:
        self.model = model or MODELS[DEFAULT_MODEL]
        self._user_rate = user_rate
        self._project_rate = project_rate
        self._burst = burst_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, _Bucket] = {}
        self._project: _Bucket | None = None
        self._units: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self._calls: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self._refused: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self._daily: dict[str, int] = {}  # UTC day -> the project's units that day
        self._sends: dict[str, deque[float]] = defaultdict(deque)

    # -- configuration ----------------------------------------------------------------

    def configure(self, model: QuotaModel, user_rate: float | None, project_rate: float | None,
                  burst_seconds: float | None = None) -> None:
        """The model in force and optional overrides of its rates (units per second) and burst (seconds)."""
        with self._lock:
            self.model, self._user_rate, self._project_rate = model, user_rate, project_rate
            self._burst = burst_seconds

    @property
    def burst_seconds(self) -> float:
        return self._burst if self._burst is not None else self.model.burst_seconds

    @property
    def user_rate(self) -> float:
        return self._user_rate if self._user_rate is not None else self.model.user_units_per_minute / 60

    @property
    def project_rate(self) -> float:
        return self._project_rate if self._project_rate is not None else self.model.project_units_per_minute / 60

    def units_of(self, method: str) -> int:
        return self.model.units.get(method, 1)

    # -- counting ----------------------------------------------------------------------

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()
            self._project = None
            self._units.clear()
            self._calls.clear()
            self._refused.clear()
            self._daily.clear()
            self._sends.clear()

    def count_call(self, address: str, method: str) -> None:
        with self._lock:
            self._calls[address][method] += 1

    def admit(self, address: str, method: str) -> Refusal | None:
        """Charge the call's units to the user and the project; None when admitted, else why not and how long."""
        units = self.units_of(method)
        now = self._clock()
        with self._lock:
            user_rate, project_rate, burst = self.user_rate, self.project_rate, self.burst_seconds
            user_cap, project_cap = max(user_rate * burst, 1e-9), max(project_rate * burst, 1e-9)
            user = self._buckets.get(address) or _Bucket(user_cap, now)
            project = self._project or _Bucket(project_cap, now)
            refusal = (_short(user, user_rate, user_cap, units, now, USER_LIMIT_REASON)
                       or _short(project, project_rate, project_cap, units, now, PROJECT_LIMIT_REASON))
            if refusal is not None:
                self._refused[address][refusal.reason] += 1
                return refusal
            for bucket, rate, cap in ((user, user_rate, user_cap), (project, project_rate, project_cap)):
                bucket.tokens, bucket.at = bucket.level(rate, cap, now) - units, now
            self._buckets[address], self._project = user, project
            self._units[address][method] += units
            day = datetime.fromtimestamp(now, UTC).date().isoformat()
            if day not in self._daily:
                self._daily = {day: 0}  # only today's count is kept
            self._daily[day] += units
            return None

    def reserve_send(self, address: str, limit: int) -> float | None:
        """Count one send in the rolling day; None when allowed, else when the oldest send leaves the window."""
        now = self._clock()
        with self._lock:
            sends = self._sends[address]
            while sends and sends[0] <= now - SEND_WINDOW_SECONDS:
                sends.popleft()
            if len(sends) >= limit:
                self._refused[address][SENDING_LIMIT_REASON] += 1
                return (sends[0] if sends else now) + SEND_WINDOW_SECONDS
            sends.append(now)
            return None

    def release_send(self, address: str) -> None:
        """Give back the newest reservation (the send failed before it was made)."""
        with self._lock:
            if self._sends[address]:
                self._sends[address].pop()

    def stats(self) -> dict[str, Any]:
        with self._lock:
            day, units = next(iter(self._daily.items()), (datetime.now(UTC).date().isoformat(), 0))
            return {
                "quotaUnits": {a: dict(m) for a, m in self._units.items()},
                "calls": {a: dict(m) for a, m in self._calls.items()},
                "refused": {a: dict(m) for a, m in self._refused.items()},
                "projectDaily": {"day": day, "units": units, "threshold": self.model.daily_threshold},
                "limits": {
                    "model": self.model.name,
                    "userUnitsPerSecond": self.user_rate,
                    "projectUnitsPerSecond": self.project_rate,
                    "burstSeconds": self.burst_seconds,
                    "units": dict(self.model.units),
                },
            }


def _short(bucket: _Bucket, rate: float, cap: float, units: int, now: float, reason: str) -> Refusal | None:
    """A refusal when the bucket cannot take `units` now (a call above a full bucket's worth needs it full)."""
    have = bucket.level(rate, cap, now)
    need = min(units, cap)
    if have + 1e-9 >= need:
        return None
    return Refusal(reason, (need - have) / rate if rate > 0 else 3600.0)
