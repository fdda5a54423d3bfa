"""Every CRM event the suite publishes, checked against schemas/events/*.json.

A subscription of its own on `crm-events` (the tests' tap, crm-events-tap, is
purged between tests and read by the tests themselves) is drained by a
background thread for the whole session. Messages published through
`shared.core.events.publish` carry attributes; the few raw messages the smoke
tests publish to exercise the tap carry none and are counted, not judged.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from devstack.console.event_schemas import problems
from devstack.topology import PubSubAdmin

SUBSCRIPTION = "crm-events-audit"


@dataclass(frozen=True)
class InvalidEvent:
    body: Any
    attributes: dict[str, str]
    problems: list[str]

    def __str__(self) -> str:
        return f"{json.dumps(self.body)[:400]} attributes={self.attributes}: " + "; ".join(self.problems)


class EventAudit:
    def __init__(self, host: str, project_id: str) -> None:
        self._admin = PubSubAdmin(host, project_id)
        self._admin.create_subscription(SUBSCRIPTION, "crm-events")
        self.checked: Counter[str] = Counter()
        self.unattributed = 0
        self._invalid: list[InvalidEvent] = []
        self._reported = 0
        self._expected = 0  # invalid on purpose: a test that checks this check took them
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._quiet = threading.Condition(self._lock)
        self._last_empty_pull_started = 0.0
        self._thread = threading.Thread(target=self._run, name="crm-events-audit", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                messages = self._admin.pull(SUBSCRIPTION, max_messages=100, wait=1.0)
            except Exception:  # the emulator going away at the end of the session
                if self._stop.is_set():
                    return
                time.sleep(0.5)
                continue
            for m in messages:
                self._check(m)
            if not messages:
                with self._quiet:
                    self._last_empty_pull_started = started
                    self._quiet.notify_all()

    def _check(self, message: Any) -> None:
        attributes = dict(message.attributes)
        try:
            body = json.loads(bytes(message.data).decode("utf-8"))
        except ValueError:
            body = bytes(message.data)[:200].decode("utf-8", "replace")
        with self._lock:
            if not attributes:
                self.unattributed += 1
                return
            self.checked[str(attributes.get("type"))] += 1
            found = problems(body, attributes)
            if found:
                self._invalid.append(InvalidEvent(body, attributes, found))

    def take_invalid(self, expected: bool = False) -> list[InvalidEvent]:
        """The invalid events not reported yet (`expected`: a test published them on purpose)."""
        with self._lock:
            new = self._invalid[self._reported:]
            self._reported = len(self._invalid)
            if expected:
                self._expected += len(new)
        return new

    def drain(self, timeout: float = 5.0) -> None:
        """Wait until a pull that began after this call came back empty: all published so far is checked."""
        since = time.monotonic()
        with self._quiet:
            self._quiet.wait_for(lambda: self._last_empty_pull_started >= since, timeout)

    def summary(self) -> str:
        with self._lock:
            kinds = ", ".join(f"{t} {n}" for t, n in sorted(self.checked.items())) or "none"
            return (f"crm-events: {sum(self.checked.values())} events checked against schemas/events ({kinds}), "
                    f"{len(self._invalid) - self._expected} invalid ({self._expected} more published invalid on "
                    f"purpose); {self.unattributed} raw test messages without attributes")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(3.0)
        self._admin.close()
