"""Sequential Firestore round trips of one operation, counted where they happen (SPEC §5, Speed).

The quality bar is stated in round trips, not milliseconds ("a send adds at
most 5 sequential Firestore round trips"), because counts are deterministic
and times are not. So the code counts them itself: every Firestore call of a
counted operation calls `note(what)` just before it goes out. Calls that run
concurrently under `parallel()` overlap in time: the group adds the round
trips of its longest branch (a branch that reads and then writes adds two),
not the sum of all branches.

`note` is a no-op outside `counting()`, so shared helpers can note their
calls whoever uses them. The counter lives in a context variable: each
request thread counts its own, and `parallel` gives each branch its own.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

_POOL_WORKERS = 32  # per process; each parallel group is a handful of calls, never nested


@dataclass
class Counter:
    count: int = 0
    stages: list[str] = field(default_factory=list)  # what each round trip was, in order

    def add_group(self, branches: list[Counter]) -> None:
        """A parallel group: as many round trips as its longest branch; its stages side by side."""
        longest = max((b.count for b in branches), default=0)
        if longest == 0:
            return
        self.count += longest
        self.stages.append(" | ".join(", ".join(b.stages) for b in branches if b.stages))


_counter: contextvars.ContextVar[Counter | None] = contextvars.ContextVar("roundtrip_counter", default=None)
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


@contextmanager
def counting() -> Iterator[Counter]:
    """Count the round trips of everything inside (in this thread and its `parallel` workers)."""
    counter = Counter()
    token = _counter.set(counter)
    try:
        yield counter
    finally:
        _counter.reset(token)


def note(what: str) -> None:
    """One Firestore round trip is about to go out (no-op when nothing is counting)."""
    counter = _counter.get()
    if counter is None:
        return
    counter.count += 1
    counter.stages.append(what)


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=_POOL_WORKERS, thread_name_prefix="parallel")
        return _pool


def parallel(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls concurrently and return their results in order; the first exception is raised
    after every call has finished (so no call is left running behind the caller's back).

    The Firestore, Secret Manager and HTTP clients used here are thread-safe; httplib2 is not, so a
    Gmail call inside must use its own connection (shared.gmail.service.kept_connection hands out one each).
    """
    if len(calls) <= 1:
        return [fn() for fn in calls]
    parent = _counter.get()
    branches = [Counter() for _ in calls]

    def in_branch(fn: Callable[[], Any], branch: Counter) -> Callable[[], Any]:
        ctx = contextvars.copy_context()
        if parent is not None:
            ctx.run(_counter.set, branch)
        return lambda: ctx.run(fn)

    # The first call runs in the caller's thread (one thread hop less), the others in the pool.
    futures = [_executor().submit(in_branch(fn, b)) for fn, b in zip(calls[1:], branches[1:], strict=True)]
    results: list[Any] = []
    error: BaseException | None = None
    try:
        results.append(in_branch(calls[0], branches[0])())
    except BaseException as exc:  # re-raised below, after the others finished
        results.append(None)
        error = exc
    for f in futures:
        try:
            results.append(f.result())
        except BaseException as exc:
            results.append(None)
            error = error or exc
    if parent is not None:
        parent.add_group(branches)
    if error is not None:
        raise error
    return results
