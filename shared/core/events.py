"""Events for the CRM on the `crm-events` topic, so its UI updates live.

Published after the Firestore write they announce, so a CRM that reacts to an
event always finds the document. Attributes carry the type and account so a
CRM subscription can filter without parsing the body.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Literal

from shared.core.clients import publisher
from shared.core.config import get_config

EventType = Literal["message.synced", "message.sent", "connection.status"]


@dataclass
class CrmEvent:
    type: EventType
    accountId: str
    userId: str | None = None
    contactId: str | None = None
    conversationId: str | None = None
    messageId: str | None = None
    direction: str | None = None
    source: str | None = None
    status: str | None = None
    reason: str | None = None
    address: str | None = None
    gmailMessageId: str | None = None
    gmailThreadId: str | None = None
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    def payload(self) -> bytes:
        return json.dumps({k: v for k, v in asdict(self).items() if v is not None}).encode("utf-8")


MAX_MESSAGES_PER_PUBLISH = 1000  # Pub/Sub's limit per Publish request


def publish(events: Iterable[CrmEvent], timeout: float = 30.0) -> None:
    """Publish the events in one Publish RPC (per 1,000) and return when Pub/Sub has accepted them.

    The client library's `publish()` batches: it waits its batch timer (`max_latency`) before sending,
    so even one event cost that timer plus the round trip. A caller here always has all its events at
    hand, so it sends them itself in one request, with the library's own retry settings for Publish.
    """
    from google.pubsub_v1 import PubsubMessage
    from google.pubsub_v1.services.publisher.client import PublisherClient as GapicPublisher

    messages = [PubsubMessage(data=e.payload(), attributes={"type": e.type, "accountId": e.accountId})
                for e in events]
    topic = get_config().topic_path(get_config().crm_events_topic)
    client = publisher()
    for i in range(0, len(messages), MAX_MESSAGES_PER_PUBLISH):
        # The GAPIC method of the same client: its transport (and the emulator setting) without the batcher.
        GapicPublisher.publish(client, topic=topic, messages=messages[i:i + MAX_MESSAGES_PER_PUBLISH],
                               timeout=timeout)
