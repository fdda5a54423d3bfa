"""crm-events as a CRM receives them: a schema per type, an eventId, and the suite's own check of both."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.e2e


def test_the_session_check_flags_an_event_that_breaks_its_schema(clean, event_audit):
    bad = {"type": "message.synced", "accountId": "acme", "eventId": "0" * 32, "at": "2026-01-01T00:00:00Z"}
    clean.pubsub.publish("crm-events", json.dumps(bad).encode(), type="message.synced", accountId="acme",
                         eventId="0" * 32)

    event_audit.drain()
    invalid = event_audit.take_invalid(expected=True)

    assert [e.body for e in invalid] == [bad]
    assert "(body): 'contactId' is a required property" in invalid[0].problems


def test_published_events_carry_their_event_id_as_an_attribute(clean, shared_env):
    from devstack.topology import CRM_EVENTS_TAP
    from shared.core.events import CrmEvent, publish

    event = CrmEvent(type="connection.status", accountId="acme", userId="alice", status="disconnected")
    publish([event])

    [message] = clean.pubsub.pull_until(CRM_EVENTS_TAP, 1)
    assert dict(message.attributes) == {"type": "connection.status", "accountId": "acme", "eventId": event.eventId}
    assert json.loads(message.data)["eventId"] == event.eventId
