"""Events for the CRM on the `crm-events` topic, so its UI updates live.

Published after the Firestore write they announce, so a CRM that reacts to an
event always finds the document. Attributes carry the type and account so a
CRM subscription can filter without parsing the body.

Every event carries an `eventId` derived from its type, the ids it is about
and the state that makes it distinct (`event_id`), never from the clock or a
random number: Pub/Sub delivers at least once, and the sync re-announces what
an interrupted pass had written, so the CRM must be able to drop a repeat by
its id. Each type's body is documented by a JSON Schema in
`schemas/events/<type>.json`; tests validate every event the suite publishes
against it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Literal, get_args

from shared.core.clients import event_publisher
from shared.core.config import get_config

EventType = Literal["message.synced", "message.sent", "message.updated", "connection.status"]
EVENT_TYPES: tuple[str, ...] = get_args(EventType)


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
    # message.updated (R19): the message's state in Gmail after the change.
    read: bool | None = None
    starred: bool | None = None
    trashed: bool | None = None
    deletedInGmail: bool | None = None
    # What tells two otherwise equal changes apart (read -> unread -> read): the Gmail
    # historyId of the change for message.updated, the stored time of the status change
    # for connection.status. Part of the eventId, so pass what is stored, not the clock.
    version: str | None = None
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    eventId: str = field(init=False, default="")

    def __post_init__(self) -> None:
        self.eventId = event_id(self)

    def payload(self) -> bytes:
        return json.dumps({k: v for k, v in asdict(self).items() if v is not None}).encode("utf-8")


def _flag(value: bool | None) -> str:
    return "" if value is None else str(int(value))


def event_id(e: CrmEvent) -> str:
    """32 hex digits from what the event is about; the same change always gets the same id.

    - message.synced / message.sent: the message document (account, conversation, message):
      a message is announced as synced or sent once, however often the pass is replayed.
    - message.updated: the message and its new Gmail state, plus `version` (the history id).
    - connection.status: the user, the new status, address and reason, plus `version`
      (the stored time of the change; without one, the event's own `at`, so that a
      reconnect after a re-authentication is not mistaken for the first connect).
    """
    parts: list[str] = [e.type, e.accountId]
    if e.type in ("message.synced", "message.sent"):
        parts += [e.conversationId or "", e.messageId or ""]
    elif e.type == "message.updated":
        parts += [e.conversationId or "", e.messageId or "", _flag(e.read), _flag(e.starred), _flag(e.trashed),
                  _flag(e.deletedInGmail), e.version or ""]
    else:
        parts += [e.userId or "", e.status or "", e.address or "", e.reason or "", e.version or e.at]
    return hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()[:32]


MAX_MESSAGES_PER_PUBLISH = 1000  # Pub/Sub's limit per Publish request


MAX_ATTRIBUTE_BYTES = 1024  # Pub/Sub's limit per attribute value (the emulator does not enforce it)


def _attributes(e: CrmEvent) -> dict[str, str]:
    """type, accountId and eventId for subscription filters; an accountId too long for an attribute (ids may
    be 1,500 bytes) is left to the body, so a long id never fails the publish after Gmail sent the mail."""
    attrs = {"type": e.type, "accountId": e.accountId, "eventId": e.eventId}
    return {k: v for k, v in attrs.items() if len(v.encode("utf-8", "surrogatepass")) <= MAX_ATTRIBUTE_BYTES}


def publish(events: Iterable[CrmEvent], timeout: float = 30.0) -> None:
    """Publish the events in one Publish RPC (per 1,000) and return when Pub/Sub has accepted them.

    The client library's `publish()` batches: it waits its batch timer (`max_latency`) before sending,
    so even one event cost that timer plus the round trip. A caller here always has all its events at
    hand, so it sends them itself in one request, with the library's own retry settings for Publish.
    """
    from google.pubsub_v1.types import PubsubMessage  # lazy: Pub/Sub library (cold start)

    messages = [PubsubMessage(data=e.payload(), attributes=_attributes(e)) for e in events]
    topic = get_config().topic_path(get_config().crm_events_topic)
    client = event_publisher()
    for i in range(0, len(messages), MAX_MESSAGES_PER_PUBLISH):
        client.publish(topic=topic, messages=messages[i:i + MAX_MESSAGES_PER_PUBLISH], timeout=timeout)
