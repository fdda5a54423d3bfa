"""Firestore round trips, reads and writes of one invocation, counted at the client.

Why: SPEC §5 (0.2) bounds the sync in Firestore round trips, not milliseconds
(a pass for one new message takes at most 6 from notification to the
message written), and docs/SCALE.md prices the design from reads and writes
per mailbox. Counting at the GAPIC client sees every RPC the code makes,
whatever helper made it, so the figure cannot drift from the code.

- `rounds`: the longest chain of RPCs each of which had to wait for the one
  before it. RPCs that overlap (a pool of look-ups, a read running beside a
  Gmail call) add one round between them, the way they add one round trip of
  latency. Computed from what the code waited for, not from the clock: an
  RPC's depth is one more than the deepest RPC its thread of work has seen
  finish: its own earlier RPCs, those before the task was submitted (a
  `ContextPool` task starts from its submitter's depth) and those of every
  task whose result it has taken. A clock-based count ("one more than the
  deepest RPC finished anywhere") made the figure depend on thread
  scheduling: on a loaded machine a read submitted beside the lease write,
  but started a moment after it, counted one round more (a CI failure).
- `calls`: every RPC; `reads`: documents returned (a query or aggregation
  that returns nothing still bills one); `writes`: writes committed.
- `marks`: the rounds when a named point was first reached (`message_written`),
  counted from the start of the sync pass that reached it (`pass_began()`):
  SPEC §5 bounds a pass, and an invocation that runs a second pass (mail
  arrived during the first) would otherwise charge the first pass to it.

A meter is active inside `metering()`; threads started by the code see it
only through `ContextPool` (contextvars are per thread). Without a meter the
wrapper is one attribute lookup per RPC.

One meter for every path: the sync's invocation (shared/sync/control.py),
quota_reset and the send (shared/send/flow.py, whose bar is "at most 5
sequential round trips", SPEC §5) each run inside `metering()`, and their
concurrent work runs in `ContextPool`s, so a Firestore call anywhere below
them is counted without anyone noting it: a new read cannot slip past the
tests that assert the counts.
"""


from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, cast

_current: contextvars.ContextVar[Meter | None] = contextvars.ContextVar("firestore_meter", default=None)
# the deepest RPC this thread of work has waited for (per context: a pool task starts from its submitter's)
_depth: contextvars.ContextVar[int] = contextvars.ContextVar("firestore_depth", default=0)

UNARY = frozenset({"commit", "begin_transaction", "rollback", "batch_write", "get_document", "update_document",
                   "delete_document", "create_document"})
STREAMS = frozenset({"batch_get_documents", "run_query", "run_aggregation_query"})
PAGED = frozenset({"list_documents", "list_collection_ids", "partition_query"})


@dataclass
class Meter:
    calls: int = 0
    rounds: int = 0
    reads: int = 0
    writes: int = 0
    marks: dict[str, int] = field(default_factory=dict)
    origin: int = 0  # the depth the current pass began at (marks count from it)
    trace: list[tuple[str, int]] = field(default_factory=list, repr=False)  # (rpc, depth), the first 200
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def start(self, name: str = "") -> int:
        depth = _depth.get() + 1
        with self._lock:
            self.calls += 1
            if len(self.trace) < 200:
                self.trace.append((name, depth))
        return depth

    def finish(self, depth: int, reads: int = 0, writes: int = 0) -> None:
        if _current.get() is self:  # not a stream of an earlier invocation closed late (by the collector)
            _saw(depth)
        with self._lock:
            self.rounds = max(self.rounds, depth)
            self.reads += reads
            self.writes += writes

    def mark(self, name: str) -> None:
        """Remember the rounds spent on the way to `name` (e.g. the first message written)."""
        depth = _depth.get()
        with self._lock:
            self.marks.setdefault(name, depth - self.origin)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rounds": self.rounds, "calls": self.calls, "reads": self.reads, "writes": self.writes}
        out.update({f"roundsTo_{k}": v for k, v in self.marks.items()})
        return out


@contextmanager
def metering() -> Iterator[Meter]:
    """Count the Firestore RPCs made inside (this thread, and ContextPool threads it starts)."""
    meter = Meter()
    token, depth = _current.set(meter), _depth.set(0)
    try:
        yield meter
    finally:
        _depth.reset(depth)
        _current.reset(token)


def current() -> Meter | None:
    return _current.get()


def mark(name: str) -> None:
    m = _current.get()
    if m is not None:
        m.mark(name)


def pass_began() -> None:
    """A further sync pass of this invocation begins here: its marks count from this point."""
    m = _current.get()
    if m is not None:
        m.origin = _depth.get()


def _saw(depth: int) -> None:
    """This thread of work has waited for an RPC of this depth."""
    if depth > _depth.get():
        _depth.set(depth)


class _Joined(Future[Any]):
    """A pool task's future (the executor's own, given this class so cancelling and waiting behave exactly
    as the executor's): whoever takes its result has also waited for the task's RPCs."""

    _meter: Meter | None
    _task_depth: list[int]  # filled by the task when it ends

    def _taken(self) -> None:
        if self.done() and self._meter is not None and _current.get() is self._meter:
            _saw(self._task_depth[0])

    def result(self, timeout: float | None = None) -> Any:
        try:
            return super().result(timeout)
        finally:
            self._taken()

    def exception(self, timeout: float | None = None) -> BaseException | None:
        try:
            return super().exception(timeout)
        finally:
            self._taken()


class ContextPool(ThreadPoolExecutor):
    """A thread pool whose tasks run in the submitter's context (so they are metered with it)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        ctx = contextvars.copy_context()  # the meter, and the depth the task starts from
        task_depth = [0]

        def task() -> Any:
            try:
                return fn(*args, **kwargs)
            finally:
                task_depth[0] = _depth.get()

        future = super().submit(ctx.run, task)
        future.__class__ = _Joined
        joined = cast(_Joined, future)
        joined._meter, joined._task_depth = _current.get(), task_depth
        return joined


def _writes_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    request = kwargs.get("request", args[0] if args else None)
    writes = request.get("writes") if isinstance(request, dict) else getattr(request, "writes", None)
    return len(writes) if writes is not None else 0


def _counted_stream(stream: Any, meter: Meter, depth: int, name: str) -> Iterator[Any]:
    reads = 0
    try:
        for response in stream:
            if name == "batch_get_documents":
                reads += 1  # a found or a missing document: both are billed
            elif name == "run_query":
                reads += 1 if getattr(response, "document", None) and response.document.name else 0
            else:
                reads += 1
            yield response
    finally:
        meter.finish(depth, reads=max(reads, 1) if name != "batch_get_documents" else reads)


class CountingApi:
    """Stands in for the Firestore client's GAPIC client and meters the RPCs it forwards."""

    def __init__(self, api: Any) -> None:
        self._api = api

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._api, name)
        if name not in UNARY and name not in STREAMS and name not in PAGED:
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            meter = _current.get()
            if meter is None:
                return attr(*args, **kwargs)
            depth = meter.start(name)
            try:
                result = attr(*args, **kwargs)
            except BaseException:
                meter.finish(depth)
                raise
            if name in STREAMS:
                return _counted_stream(result, meter, depth, name)
            meter.finish(depth, reads=1 if name in PAGED else 0,
                         writes=_writes_of(args, kwargs) if name in ("commit", "batch_write") else 0)
            return result

        return call


def instrument(client: Any) -> Any:
    """Route the Firestore client's RPCs through a meter (idempotent); returns the client."""
    api = client._firestore_api  # builds the GAPIC client and its channel
    if not isinstance(api, CountingApi):
        client._firestore_api_internal = CountingApi(api)
    return client
