"""An instance's first request without Python's cyclic garbage collector (the send path's cold start).

A cold start is mostly the import of the client libraries: some 136,000 new
objects, all of them alive for the life of the instance. The collector finds
no garbage among them, yet it scans them again and again while they load
(about 45 ms of a 390 ms import of send_email's libraries on these machines,
over a tenth of the cold start). So the instance's first request runs with
the collector paused; when it ends, what it loaded is frozen into the
permanent generation (`gc.freeze`, which Python's documentation recommends
for the same reason in pre-fork servers) and the collector is enabled again,
so no later collection rescans the libraries either.

The price: reference cycles that the first request itself left behind are
never collected (objects without cycles are freed by reference counting as
usual). That is one request's worth, once per instance. Functions whose
first request can run for minutes (gmail_push's first sync of a mailbox)
do not use this: garbage would pile up for the whole pass.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_done: set[str] = set()


@contextmanager
def first_request(function: str) -> Iterator[None]:
    """Pause the collector for `function`'s first request in this process (a no-op for every other)."""
    with _lock:
        paused = function not in _done and gc.isenabled()
        _done.add(function)
        if paused:
            gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.freeze()
            gc.enable()
