"""Injected faults: Gmail errors and latency per method, and misbehaving notifications.

The fault set is replaced whole by `PUT /sim/faults`:

    {"seed": 7,
     "methods": {"gmail.users.messages.get": {"errorRate": 0.2, "codes": [429, 503], "latencyMs": 50},
                 "messages.send": {"latencyMs": 300, "latencyP90Ms": 600},
                 "*": {"latencyMs": 5}},
     "notifications": {"dropRate": 0.1, "duplicateRate": 0.1, "reorderRate": 0.1, "delayMs": 200}}

A method key is a discovery method id (`gmail.users.messages.get`), its short
name (`messages.get`) or `*` (any Gmail method); the most specific key wins.
The key `batch` applies to a whole batch request (its parts still draw their own).
Draws come from generators seeded with `seed` (errors, latencies and
notifications each their own), so the same seed and the same sequence of
calls give the same faults. Injected errors are answered before quota is charged.

`latencyMs` alone adds that fixed time to every call. With `latencyP90Ms` as
well, each call draws its latency from a log-normal distribution whose median
is `latencyMs` and whose 90th percentile is `latencyP90Ms` (request latencies
are right-skewed: most calls near the median, a long tail), so a benchmark can
give `messages.send` a Gmail-like latency instead of a constant.
"""

from __future__ import annotations

import math
import random
import threading
from dataclasses import dataclass
from typing import Any

SUPPORTED_CODES = (400, 401, 403, 404, 429, 500, 502, 503, 504)
MAX_LATENCY_MS = 600_000
_Z90 = 1.2815515655446004  # the standard normal's 90th percentile


@dataclass(frozen=True)
class MethodFault:
    error_rate: float = 0.0
    codes: tuple[int, ...] = (503,)
    latency_ms: int = 0
    latency_p90_ms: int = 0  # 0: latency_ms is fixed; else log-normal with that median and this p90

    def draw_latency_ms(self, rng: random.Random) -> float:
        if not self.latency_p90_ms or self.latency_p90_ms == self.latency_ms:
            return float(self.latency_ms)
        sigma = math.log(self.latency_p90_ms / self.latency_ms) / _Z90
        return min(float(MAX_LATENCY_MS), rng.lognormvariate(math.log(self.latency_ms), sigma))


@dataclass(frozen=True)
class NotificationFate:
    drop: bool = False
    duplicate: bool = False
    reorder: bool = False
    delay_ms: int = 0


def _rate(d: dict[str, Any], key: str) -> float:
    v = d.get(key, 0)
    if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= 1:
        raise ValueError(f"{key} must be a number between 0 and 1")
    return float(v)


def _ms(d: dict[str, Any], key: str) -> int:
    v = d.get(key, 0)
    if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= MAX_LATENCY_MS:
        raise ValueError(f"{key} must be milliseconds between 0 and {MAX_LATENCY_MS}")
    return int(v)


class Faults:
    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._default_seed = seed
        self.set({})

    def reset(self) -> None:
        self.set({})

    def set(self, spec: dict[str, Any]) -> None:
        """Replace the whole fault set; ValueError says what is wrong (nothing changes then)."""
        if not isinstance(spec, dict):
            raise ValueError("faults must be a JSON object")
        unknown = set(spec) - {"seed", "methods", "notifications"}
        if unknown:
            raise ValueError(f"unknown keys: {', '.join(sorted(unknown))}")
        seed = spec.get("seed", self._default_seed)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError("seed must be an integer")
        methods: dict[str, MethodFault] = {}
        for name, m in (spec.get("methods") or {}).items():
            if not isinstance(m, dict) or set(m) - {"errorRate", "codes", "latencyMs", "latencyP90Ms"}:
                raise ValueError(f"methods.{name} takes errorRate, codes, latencyMs, latencyP90Ms")
            codes = tuple(m.get("codes") or (503,))
            if any(c not in SUPPORTED_CODES for c in codes):
                raise ValueError(f"methods.{name}.codes must be among {list(SUPPORTED_CODES)}")
            latency, p90 = _ms(m, "latencyMs"), _ms(m, "latencyP90Ms")
            if p90 and (latency <= 0 or p90 < latency):
                raise ValueError(f"methods.{name}.latencyP90Ms needs latencyMs > 0 and must not be below it")
            methods[name] = MethodFault(_rate(m, "errorRate"), codes, latency, p90)
        n = spec.get("notifications") or {}
        if not isinstance(n, dict) or set(n) - {"dropRate", "duplicateRate", "reorderRate", "delayMs"}:
            raise ValueError("notifications takes dropRate, duplicateRate, reorderRate, delayMs")
        notif = (_rate(n, "dropRate"), _rate(n, "duplicateRate"), _rate(n, "reorderRate"), _ms(n, "delayMs"))
        with self._lock:
            self._spec = {"seed": seed, "methods": spec.get("methods") or {}, "notifications": n}
            self._methods = methods
            self._notif = notif
            self._call_rng = random.Random(seed)
            self._notif_rng = random.Random(seed + 1)
            self._latency_rng = random.Random(seed + 2)  # its own: a latency spread leaves the error draws alone

    def spec(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._spec)

    def for_call(self, method_id: str, short_name: str, wildcard: bool = True) -> tuple[float, int | None]:
        """(seconds of added latency, error code or None) for one call."""
        with self._lock:
            f = self._methods.get(method_id) or self._methods.get(short_name)
            if f is None and wildcard:
                f = self._methods.get("*")
            if f is None:
                return 0.0, None
            code = None
            if f.error_rate > 0 and self._call_rng.random() < f.error_rate:
                code = self._call_rng.choice(f.codes)
            return f.draw_latency_ms(self._latency_rng) / 1000.0, code

    def for_notification(self) -> NotificationFate:
        with self._lock:
            drop, dup, reorder, delay = self._notif
            if not (drop or dup or reorder or delay):
                return NotificationFate()
            rng = self._notif_rng
            return NotificationFate(
                drop=rng.random() < drop, duplicate=rng.random() < dup, reorder=rng.random() < reorder, delay_ms=delay
            )
