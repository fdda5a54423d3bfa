"""How many message bytes one instance works on at once (R32: memory stays within the deploy setting).

Keeping a message whole holds it in memory several times over for a moment
(Gmail's JSON answer, the decoded bytes, the MIME tree, the part being
written): the standard library's MIME parser alone peaks near 8 times the
raw size (one string per line; measured with tracemalloc, 205 MB for a
26.6 MB message), and scripts/bench_memory.py measures the functions. An
instance serving several large messages at once (Pub/Sub pushes, webhook
calls) would multiply that past its memory. So each large message first takes
its size from one per-process budget and gives it back when done; a message
that does not fit waits for others to finish. Small messages (most mail) are
under `FREE_BYTES` and never wait. A message larger than the whole budget
runs alone.

`KEEP_BUDGET_BYTES` sets the budget (default 32 MiB: one 25 MB message at a
time, whose parse fits a 512 MiB function beside the interpreter, its
libraries and the small messages that never wait).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

FREE_BYTES = 1024 * 1024
DEFAULT_BUDGET = 32 * 1024 * 1024


class ByteBudget:
    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self._used = 0
        self._cond = threading.Condition()

    @property
    def used(self) -> int:
        with self._cond:
            return self._used

    @contextmanager
    def hold(self, size: int) -> Iterator[None]:
        """Hold `size` bytes of the budget while the block runs (waiting until they are free)."""
        if size <= FREE_BYTES:
            yield
            return
        need = min(size, self.limit)
        with self._cond:
            while self._used + need > self.limit:
                self._cond.wait()
            self._used += need
        try:
            yield
        finally:
            with self._cond:
                self._used -= need
                self._cond.notify_all()


_budget = ByteBudget(int(os.environ.get("KEEP_BUDGET_BYTES") or DEFAULT_BUDGET))


def hold(size: int) -> AbstractContextManager[None]:
    """Hold `size` bytes of the process's budget (see the module doc)."""
    return _budget.hold(size)
