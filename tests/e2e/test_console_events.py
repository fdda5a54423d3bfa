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


class _CountingSet(set):  # type: ignore[type-arg]
    """The README subscriber's `seen`, counting how often each eventId was looked up (one per delivery)."""

    def __init__(self) -> None:
        super().__init__()
        self.lookups: dict[str, int] = {}

    def __contains__(self, item: object) -> bool:
        self.lookups[str(item)] = self.lookups.get(str(item), 0) + 1
        return super().__contains__(item)


class _Delivery:
    """A Pub/Sub message as the subscriber callback sees it (data, ack, nack)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.outcome = ""

    def ack(self) -> None:
        self.outcome = "ack"

    def nack(self) -> None:
        self.outcome = "nack"


def _readme_subscriber() -> dict:
    from devstack.functions import REPO_ROOT

    section = (REPO_ROOT / "docs" / "EVENTS.md").read_text().split("### Listening to crm-events", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(compile(code, "docs/EVENTS.md (Listening to crm-events)", "exec"), namespace)
    return namespace


def test_readme_subscriber_validates_and_handles_a_replayed_event_once(clean, shared_env, monkeypatch):
    from devstack.functions import REPO_ROOT
    from shared.core.events import CrmEvent, publish
    from tests.e2e.sync_steps import wait_for

    monkeypatch.chdir(REPO_ROOT)  # the example reads schemas/events/ from the working directory
    readme = _readme_subscriber()
    readme["seen"] = seen = _CountingSet()
    clean.pubsub.create_subscription("crm-events-readme", "crm-events")
    handled: list[dict] = []
    future = readme["listen"](clean.project_id, "crm-events-readme", handled.append)
    try:
        fields = dict(type="message.sent", accountId="acme", userId="alice", contactId="carla",
                      conversationId="carla", messageId="m1", direction="outbound", source="crm",
                      gmailMessageId="18f", gmailThreadId="18f")
        event = CrmEvent(**fields)
        replay = CrmEvent(**fields, at="2026-01-01T00:00:00+00:00")  # the same change announced again later
        publish([event])
        publish([replay])

        wait_for(lambda: seen.lookups.get(event.eventId, 0) >= 2, 20, "both deliveries of the event")

        assert [e["eventId"] for e in handled] == [event.eventId]
        assert handled[0]["messageId"] == "m1"
        malformed = _Delivery(json.dumps({"type": "message.sent", "accountId": "acme"}).encode())
        readme["on_message"](malformed, handled.append)
        assert (malformed.outcome, len(handled)) == ("nack", 1)
        newer = _Delivery(json.dumps({"type": "contact.merged", "accountId": "acme"}).encode())
        readme["on_message"](newer, handled.append)
        assert (newer.outcome, len(handled)) == ("ack", 1)
    finally:
        future.cancel()
        clean.pubsub.delete_subscription("crm-events-readme")
