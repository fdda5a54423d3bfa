"""Pub/Sub topics and subscriptions of the local stack, on the emulator.

Mirrors production (deploy.sh): every subscription has a retry policy with
backoff and a dead-letter topic, because the emulator (like Pub/Sub)
otherwise redelivers a failed push every second forever; push subscriptions
have an explicit ack deadline longer than the function's timeout (600 s,
Pub/Sub's maximum), so a running invocation is never delivered twice. Gmail's
notifications (`gmail-watch`) and the sync's own control messages
(`sync-control`) reach `gmail_push` through two subscriptions. Push endpoints use functions-framework's
`/projects/P/topics/T` path: it turns the emulator's raw push envelope into a
CloudEvent and takes the topic from that path.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

TOPICS = ("gmail-watch", "sync-control", "crm-events", "daily-tick", "dead-letters")
DEAD_LETTER_TOPIC = "dead-letters"
CRM_EVENTS_TAP = "crm-events-tap"
DEAD_LETTERS_TAP = "dead-letters-tap"  # what exhausted its delivery attempts (tests assert on it)
MIN_BACKOFF_SECONDS = 1
MAX_BACKOFF_SECONDS = 10
MAX_DELIVERY_ATTEMPTS = 20
ACK_DEADLINE_SECONDS = 60  # pull subscriptions (taps)
PUSH_ACK_DEADLINE_SECONDS = 600  # longer than any function's timeout (deploy.sh: 300 s and 540 s)


@dataclass(frozen=True)
class PushRoute:
    subscription: str
    topic: str
    function: str


PUSH_ROUTES = (
    PushRoute("gmail-watch-push", "gmail-watch", "gmail_push"),
    PushRoute("sync-control-push", "sync-control", "gmail_push"),
    PushRoute("daily-tick-push", "daily-tick", "quota_reset"),
)

_env_lock = threading.Lock()


@contextlib.contextmanager
def _emulator_env(host: str) -> Iterator[None]:
    """The Pub/Sub client reads PUBSUB_EMULATOR_HOST once, at construction."""
    with _env_lock:
        old = os.environ.get("PUBSUB_EMULATOR_HOST")
        os.environ["PUBSUB_EMULATOR_HOST"] = host
        try:
            yield
        finally:
            if old is None:
                os.environ.pop("PUBSUB_EMULATOR_HOST", None)
            else:
                os.environ["PUBSUB_EMULATOR_HOST"] = old


def push_endpoint(function_url: str, project_id: str, topic: str) -> str:
    return f"{function_url.rstrip('/')}/projects/{project_id}/topics/{topic}"


@dataclass
class PubSubAdmin:
    """Topic/subscription administration and test helpers against one emulator."""

    host: str
    project_id: str

    def __post_init__(self) -> None:
        from google.cloud.pubsub_v1 import PublisherClient, SubscriberClient

        with _emulator_env(self.host):
            self.publisher = PublisherClient()
            self.subscriber = SubscriberClient()

    def topic_path(self, topic: str) -> str:
        return f"projects/{self.project_id}/topics/{topic}"

    def subscription_path(self, subscription: str) -> str:
        return f"projects/{self.project_id}/subscriptions/{subscription}"

    def create_topic(self, topic: str) -> None:
        from google.api_core.exceptions import AlreadyExists

        with contextlib.suppress(AlreadyExists):
            self.publisher.create_topic(request={"name": self.topic_path(topic)})

    def create_subscription(
        self, name: str, topic: str, push_endpoint: str | None = None,
        max_delivery_attempts: int = MAX_DELIVERY_ATTEMPTS,
    ) -> None:
        """Create (or replace) a subscription with the production-like retry and dead-letter policy."""
        from google.api_core.exceptions import NotFound
        from google.protobuf import duration_pb2

        with contextlib.suppress(NotFound):
            self.subscriber.delete_subscription(request={"subscription": self.subscription_path(name)})
        request: dict[str, Any] = {
            "name": self.subscription_path(name),
            "topic": self.topic_path(topic),
            "ack_deadline_seconds": PUSH_ACK_DEADLINE_SECONDS if push_endpoint else ACK_DEADLINE_SECONDS,
            "retry_policy": {
                "minimum_backoff": duration_pb2.Duration(seconds=MIN_BACKOFF_SECONDS),
                "maximum_backoff": duration_pb2.Duration(seconds=MAX_BACKOFF_SECONDS),
            },
        }
        if topic != DEAD_LETTER_TOPIC:
            request["dead_letter_policy"] = {
                "dead_letter_topic": self.topic_path(DEAD_LETTER_TOPIC),
                "max_delivery_attempts": max_delivery_attempts,  # Pub/Sub allows 5..100
            }
        if push_endpoint:
            request["push_config"] = {"push_endpoint": push_endpoint}
        self.subscriber.create_subscription(request=request)

    def delete_subscription(self, name: str) -> None:
        from google.api_core.exceptions import NotFound

        with contextlib.suppress(NotFound):
            self.subscriber.delete_subscription(request={"subscription": self.subscription_path(name)})

    def create_all(self, function_urls: dict[str, str]) -> None:
        for topic in TOPICS:
            self.create_topic(topic)
        for route in PUSH_ROUTES:
            url = function_urls.get(route.function)
            if url:
                self.create_subscription(
                    route.subscription, route.topic, push_endpoint(url, self.project_id, route.topic)
                )
        self.create_subscription(CRM_EVENTS_TAP, "crm-events")
        self.create_subscription(DEAD_LETTERS_TAP, DEAD_LETTER_TOPIC)

    def purge(self, subscription: str) -> None:
        """Drop every message published so far (seek to now acks them all)."""
        from google.protobuf import timestamp_pb2

        now = timestamp_pb2.Timestamp()
        now.GetCurrentTime()
        self.subscriber.seek(request={"subscription": self.subscription_path(subscription), "time": now})

    def publish(self, topic: str, data: bytes, **attributes: str) -> str:
        return str(self.publisher.publish(self.topic_path(topic), data, **attributes).result(timeout=30))

    def pull(self, subscription: str, max_messages: int = 100, wait: float = 1.0) -> list[Any]:
        """Pull and ack what is there; returns the PubsubMessage objects (empty after `wait` s)."""
        from google.api_core.exceptions import DeadlineExceeded

        path = self.subscription_path(subscription)
        try:
            resp = self.subscriber.pull(
                request={"subscription": path, "max_messages": max_messages}, timeout=wait
            )
        except DeadlineExceeded:
            return []
        if resp.received_messages:
            self.subscriber.acknowledge(
                request={"subscription": path, "ack_ids": [m.ack_id for m in resp.received_messages]}
            )
        return [m.message for m in resp.received_messages]

    def pull_until(
        self, subscription: str, count: int, timeout: float = 15.0, max_messages: int = 100
    ) -> list[Any]:
        """Pull until at least `count` messages arrived or `timeout` passed."""
        got: list[Any] = []
        deadline = time.monotonic() + timeout
        while len(got) < count and time.monotonic() < deadline:
            got.extend(self.pull(subscription, max_messages, wait=min(1.0, max(0.1, deadline - time.monotonic()))))
        return got

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.subscriber.close()
        with contextlib.suppress(Exception):
            self.publisher.transport.close()
