"""The one polling loop of the local stack, its demo and its tests.

Everything here is eventually consistent (Pub/Sub pushes, a sync pass after a
delivery), so callers wait for a condition with a deadline instead of sleeping
a fixed time; four copies of this loop had grown apart.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """The condition did not hold in time (an AssertionError, so pytest reports it as a failed check)."""


def wait_until(probe: Callable[[], T | None], timeout: float = 20.0, what: str = "condition",
               interval: float = 0.1) -> T:
    """The first truthy value `probe()` returns, or WaitTimeout after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise WaitTimeout(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
