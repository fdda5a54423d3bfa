"""The live crm-events stream of the console: a subscription of its own, kept in memory.

The console subscribes to `crm-events` like a CRM would (streaming pull on
`crm-events-console`), checks each event against its JSON Schema, and keeps
the latest ones numbered so each open page can ask for "everything after n"
(Server-Sent Events resume with Last-Event-ID). A local developer tool: the
numbering lives only as long as the process.
"""

from __future__ import annotations

import collections
import json
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from devstack.console.event_schemas import problems

SUBSCRIPTION = "crm-events-console"
TOPIC = "crm-events"


@dataclass(frozen=True)
class FeedEvent:
    seq: int
    received: str
    attributes: dict[str, str]
    body: Any
    problems: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "received": self.received, "attributes": self.attributes, "body": self.body,
                "problems": self.problems}


class EventFeed:
    def __init__(self, pubsub_host: str, project_id: str, keep: int = 500) -> None:
        self.pubsub_host = pubsub_host
        self.project_id = project_id
        self._events: collections.deque[FeedEvent] = collections.deque(maxlen=keep)
        self._seq = 0
        self._cond = threading.Condition()
        self._closed = False
        self.ready = threading.Event()
        self.error: str | None = None
        self._admin: Any = None
        self._future: Any = None

    # -- subscribing ----------------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> EventFeed:
        threading.Thread(target=self._subscribe, args=(timeout,), name="console-feed", daemon=True).start()
        return self

    def _subscribe(self, timeout: float) -> None:
        """Create the subscription once the stack has created the topic, then stream from it."""
        from devstack.topology import PubSubAdmin

        deadline = time.monotonic() + timeout
        while not self._closed:
            try:
                self._admin = self._admin or PubSubAdmin(self.pubsub_host, self.project_id)
                self._admin.create_subscription(SUBSCRIPTION, TOPIC)
                break
            except Exception as exc:  # the emulator or the topic is not there yet (NotFound)
                if time.monotonic() > deadline:
                    self.error = f"could not subscribe to {TOPIC}: {type(exc).__name__}: {exc}"
                    return
                time.sleep(0.5)
        if self._closed:
            return
        path = self._admin.subscription_path(SUBSCRIPTION)
        self._future = self._admin.subscriber.subscribe(path, callback=self._received)
        self.ready.set()

    def _received(self, message: Any) -> None:
        try:
            body: Any = json.loads(bytes(message.data).decode("utf-8"))
        except ValueError:
            body = bytes(message.data)[:500].decode("utf-8", "replace")
        attributes = dict(message.attributes)
        self.add(attributes, body)
        message.ack()

    def add(self, attributes: dict[str, str], body: Any) -> FeedEvent:
        found = problems(body, attributes if attributes else None)
        with self._cond:
            self._seq += 1
            event = FeedEvent(self._seq, datetime.now(UTC).isoformat(timespec="milliseconds"), attributes, body,
                              found)
            self._events.append(event)
            self._cond.notify_all()
        return event

    # -- reading --------------------------------------------------------------------------

    def after(self, seq: int) -> list[FeedEvent]:
        with self._cond:
            return [e for e in self._events if e.seq > seq]

    def wait_after(self, seq: int, timeout: float) -> list[FeedEvent]:
        """Events after `seq`, waiting up to `timeout` seconds for the first one."""
        with self._cond:
            self._cond.wait_for(lambda: self._closed or (self._seq > seq), timeout)
            return [e for e in self._events if e.seq > seq]

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._future is not None:
            self._future.cancel()
        if self._admin is not None:
            self._admin.close()
