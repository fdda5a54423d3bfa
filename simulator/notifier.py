"""Gmail watch notifications, published to the Pub/Sub emulator as Gmail publishes them.

Each message's data is the JSON `{"emailAddress": …, "historyId": …}` (historyId
a number), no attributes. Like Gmail, at most one notification per mailbox is
sent per `notification_min_interval_ms`: changes in between are coalesced into
the next one, which carries the newest historyId (0 sends one per change).
Faults (drop, duplicate, reorder, delay) are drawn per notification from
`Faults`; a reordered notification is held back until the next one has been
published (or two intervals have passed), so it really arrives out of order.

Publishing goes over the emulator's REST API (`POST /v1/{topic}:publish`)
from one background thread; a failure is logged and the notification lost,
which is also what Gmail does when it cannot publish.
"""

from __future__ import annotations

import base64
import heapq
import http.client
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.core import log
from simulator.faults import Faults
from simulator.state import Watch


@dataclass(frozen=True)
class Notification:
    topic: str
    address: str
    history_id: int

    def data(self) -> bytes:
        return json.dumps({"emailAddress": self.address, "historyId": self.history_id}).encode()


class PubSubRest:
    """The few REST calls of the Pub/Sub emulator the simulator needs."""

    def __init__(self, host: str) -> None:
        self.host = host

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection(self.host, timeout=10)
        try:
            data = json.dumps(body).encode() if body is not None else None
            conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def topic_exists(self, topic: str) -> bool:
        status, _ = self._call("GET", f"/v1/{topic}")
        return status == 200

    def publish(self, topic: str, data: bytes) -> None:
        status, body = self._call(
            "POST", f"/v1/{topic}:publish", {"messages": [{"data": base64.b64encode(data).decode()}]}
        )
        if status != 200:
            raise RuntimeError(f"publish answered {status}: {body[:200]!r}")


class Notifier:
    def __init__(
        self,
        pubsub_host: str | None,
        faults: Faults,
        min_interval_ms: int = 1000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pubsub = PubSubRest(pubsub_host) if pubsub_host else None
        self.faults = faults
        self.min_interval_ms = min_interval_ms
        self._clock = clock
        self._cv = threading.Condition()
        self._heap: list[tuple[float, int, str, Any]] = []
        self._seq = itertools.count()
        self._pending: dict[str, Notification] = {}  # address -> coalesced notification not yet due
        self._last_sent: dict[str, float] = {}
        self._held: list[Notification] = []
        self.counts = {"published": 0, "dropped": 0, "duplicated": 0, "reordered": 0, "failed": 0}
        self._stopped = False
        self._thread: threading.Thread | None = None

    # -- producer side (called by GmailState under its lock: must stay cheap) ------------

    def changed(self, address: str, history_id: int, label_ids: tuple[str, ...], watch: Watch | None) -> None:
        if self.pubsub is None or watch is None or not watch.wants(label_ids, int(time.time() * 1000)):
            return
        with self._cv:
            now = self._clock()
            interval = self.min_interval_ms / 1000.0
            note = Notification(watch.topic_name, address, history_id)
            if interval <= 0:
                self._push(now, "fire", note)
            else:
                if address not in self._pending:  # else it joins the one already due (coalesced)
                    due = max(now, self._last_sent.get(address, -1e18) + interval)
                    self._push(due, "coalesced", address)
                self._pending[address] = note
            self._ensure_thread()
            self._cv.notify()

    def _push(self, due: float, kind: str, item: Any) -> None:
        heapq.heappush(self._heap, (due, next(self._seq), kind, item))

    # -- the publishing thread ---------------------------------------------------------

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="sim-notifier", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._stopped and (not self._heap or self._heap[0][0] > self._clock()):
                    self._cv.wait(None if not self._heap else max(0.0, self._heap[0][0] - self._clock()))
                if self._stopped:
                    return
                _, _, kind, item = heapq.heappop(self._heap)
                batch = self._take(kind, item)
            for n in batch:
                self._publish(n)

    def _take(self, kind: str, item: Any) -> list[Notification]:
        """Under the lock: turn a due heap item into what to publish now, applying faults."""
        now = self._clock()
        if kind == "coalesced":
            n = self._pending.pop(item, None)
            if n is None:
                return []
            self._last_sent[item] = now
            kind, item = "fire", n
        if kind == "release":
            if item in self._held:
                self._held.remove(item)
                return [item]
            return []
        if kind == "publish":
            out = [item, *self._held]
            self._held.clear()
            return out
        fate = self.faults.for_notification()
        if fate.drop:
            self.counts["dropped"] += 1
            return []
        copies = 2 if fate.duplicate else 1
        self.counts["duplicated"] += copies - 1
        if fate.reorder:
            self.counts["reordered"] += 1
            self._held.extend([item] * copies)
            hold = max(2.0, 2 * self.min_interval_ms / 1000.0) + fate.delay_ms / 1000.0
            for _ in range(copies):
                self._push(now + hold, "release", item)
            return []
        if fate.delay_ms:
            for _ in range(copies):
                self._push(now + fate.delay_ms / 1000.0, "publish", item)
            return []
        out = [item] * copies + self._held
        self._held.clear()
        return out

    def _publish(self, n: Notification) -> None:
        assert self.pubsub is not None
        try:
            self.pubsub.publish(n.topic, n.data())
            with self._cv:
                self.counts["published"] += 1
        except Exception as exc:
            with self._cv:
                self.counts["failed"] += 1
            log.warning("simulator: notification not published", topic=n.topic, error=str(exc)[:200])

    # -- control -------------------------------------------------------------------------

    def stats(self) -> dict[str, int]:
        with self._cv:
            return dict(self.counts)

    def idle(self) -> bool:
        with self._cv:
            return not self._heap and not self._pending and not self._held

    def reset(self) -> None:
        with self._cv:
            self._heap.clear()
            self._pending.clear()
            self._last_sent.clear()
            self._held.clear()
            for k in self.counts:
                self.counts[k] = 0
            self._cv.notify()

    def stop(self) -> None:
        with self._cv:
            self._stopped = True
            self._cv.notify()
