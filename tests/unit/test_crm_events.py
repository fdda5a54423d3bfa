"""crm-events: a JSON Schema per event type and a deterministic eventId (SPEC §6, 0.2)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devstack.console.event_schemas import problems, schemas
from shared.core.events import EVENT_TYPES, CrmEvent


def _synced(**kw: Any) -> CrmEvent:
    base: dict[str, Any] = dict(type="message.synced", accountId="acme", userId="alice", contactId="carla",
                                conversationId="carla", messageId="gm_1", direction="inbound", source="gmail",
                                gmailMessageId="1", gmailThreadId="1")
    return CrmEvent(**{**base, **kw})


EXAMPLES: dict[str, CrmEvent] = {
    "message.synced": _synced(),
    "message.sent": CrmEvent(type="message.sent", accountId="acme", userId="alice", contactId="carla",
                             conversationId="carla", messageId="m1", direction="outbound", source="crm",
                             gmailMessageId="18f", gmailThreadId="18f"),
    "message.updated": CrmEvent(type="message.updated", accountId="acme", conversationId="carla", messageId="gm_1",
                                read=True, starred=False, trashed=False, deletedInGmail=False, version="4711"),
    "connection.status": CrmEvent(type="connection.status", accountId="acme", userId="alice", status="connected",
                                  address="rep@example.com"),
}


def _body(e: CrmEvent) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(e.payload())
    return body


def test_every_event_type_has_a_schema_and_nothing_else_does() -> None:
    assert sorted(schemas()) == sorted(EVENT_TYPES)


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_each_event_type_validates_against_its_schema(event_type: str) -> None:
    event = EXAMPLES[event_type]
    attributes = {"type": event.type, "accountId": event.accountId, "eventId": event.eventId}
    assert problems(_body(event), attributes) == []


def test_every_event_carries_an_event_id_in_body_and_attributes() -> None:
    body = _body(EXAMPLES["message.synced"])
    assert len(body["eventId"]) == 32
    assert problems({k: v for k, v in body.items() if k != "eventId"}) == ["(body): 'eventId' is a required property"]


def test_event_id_is_the_same_for_a_replayed_publish() -> None:
    first, replay = _synced(at="2026-01-01T00:00:00+00:00"), _synced(at="2026-01-01T00:05:00+00:00")
    assert first.eventId == replay.eventId


def test_event_id_differs_per_message_and_per_account() -> None:
    ids = {_synced().eventId, _synced(messageId="gm_2").eventId, _synced(accountId="globex").eventId}
    assert len(ids) == 3


def test_event_id_of_an_update_follows_the_new_state_and_the_history_id() -> None:
    def updated(read: bool, version: str) -> str:
        return CrmEvent(type="message.updated", accountId="acme", conversationId="c", messageId="m",
                        read=read, version=version).eventId

    assert updated(True, "10") == updated(True, "10")  # the same history record announced twice
    assert len({updated(True, "10"), updated(False, "11"), updated(True, "12")}) == 3  # read, unread, read again


def test_event_id_of_a_status_change_tells_a_reconnect_from_the_first_connect() -> None:
    def status(status: str, version: str) -> str:
        return CrmEvent(type="connection.status", accountId="acme", userId="alice", status=status,
                        address="rep@example.com", version=version).eventId

    assert status("connected", "t1") == status("connected", "t1")
    assert len({status("connected", "t1"), status("reauth_required", "t2"), status("connected", "t3")}) == 3


def test_schema_refuses_unknown_types_and_undocumented_fields() -> None:
    assert problems({"type": "message.deleted"}) == [
        "unknown event type 'message.deleted': no schemas/events/message.deleted.json"]
    extra = {**_body(EXAMPLES["message.sent"]), "body": "secret text"}
    assert any("Additional properties are not allowed" in p for p in problems(extra))


def test_schema_refuses_attributes_that_disagree_with_the_body() -> None:
    event = EXAMPLES["connection.status"]
    found = problems(_body(event), {"type": event.type, "accountId": "globex", "eventId": event.eventId})
    assert found == ["attribute accountId='globex' differs from the body's 'acme'"]


def test_message_updated_must_say_what_changed() -> None:
    body = _body(CrmEvent(type="message.updated", accountId="acme", conversationId="c", messageId="m"))
    assert problems(body) and "is not valid under any of the given schemas" in problems(body)[0]


def test_an_account_id_too_long_for_a_pubsub_attribute_stays_in_the_body_only() -> None:
    from shared.core.events import MAX_ATTRIBUTE_BYTES, CrmEvent, _attributes

    long_id = "a" * 1500  # a valid Firestore id, over Pub/Sub's 1,024-byte attribute limit
    attrs = _attributes(CrmEvent(type="message.synced", accountId=long_id, messageId="gm_1"))
    assert "accountId" not in attrs and attrs["type"] == "message.synced"
    assert all(len(v.encode()) <= MAX_ATTRIBUTE_BYTES for v in attrs.values())
