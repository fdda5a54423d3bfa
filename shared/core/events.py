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
from typing import Any, Literal

from shared.core.clients import publisher
from shared.core.config import get_config

EventType = Literal["message.synced", "message.sent", "message.updated", "connection.status"]


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
    # message.updated (R19): the message's state in Gmail after the change
    read: bool | None = None
    starred: bool | None = None
    trashed: bool | None = None
    deletedInGmail: bool | None = None
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    def payload(self) -> bytes:
        return json.dumps({k: v for k, v in asdict(self).items() if v is not None}).encode("utf-8")


def publish(events: Iterable[CrmEvent], timeout: float = 30.0) -> None:
    """Publish and wait for the emulator/Google to accept every event."""
    topic = get_config().topic_path(get_config().crm_events_topic)
    client = publisher()
    futures: list[Any] = [
        client.publish(topic, e.payload(), type=e.type, accountId=e.accountId) for e in events
    ]
    for f in futures:
        f.result(timeout=timeout)
