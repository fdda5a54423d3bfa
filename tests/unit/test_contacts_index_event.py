"""R11b: the contacts_index trigger's event, as Firestore sends it and as the devstack feeder makes it."""

from __future__ import annotations

from datetime import UTC, datetime

from cloudevents.http import CloudEvent, from_http

from devstack.firestore_triggers import EVENT_TYPE, Route, cloud_event, parse_route
from functions.contacts_index import contact_of


def event(**attrs: str) -> CloudEvent:
    base = {"type": EVENT_TYPE, "source": "//firestore.googleapis.com/projects/p/databases/(default)"}
    return CloudEvent({**base, **attrs}, None)


def test_r11b_the_contact_comes_from_the_document_attribute_or_the_subject() -> None:
    assert contact_of(event(document="accounts/acme/contacts/carla")) == ("acme", "carla")
    assert contact_of(event(subject="documents/accounts/acme/contacts/carla")) == ("acme", "carla")


def test_r11b_events_for_other_documents_are_not_contacts() -> None:
    assert contact_of(event(subject="documents/accounts/acme/users/alice")) is None
    assert contact_of(event(subject="documents/accounts/acme/contacts/carla/notes/n1")) is None
    assert contact_of(event()) is None


def test_r11b_the_feeders_event_carries_firestores_attributes() -> None:
    headers, body = cloud_event("p", "accounts/acme/contacts/carla", False, datetime(2025, 1, 1, tzinfo=UTC))
    ev = from_http(headers, body)
    assert ev["type"] == EVENT_TYPE and ev["subject"] == "documents/accounts/acme/contacts/carla"
    assert ev["source"] == "//firestore.googleapis.com/projects/p/databases/(default)"
    assert contact_of(ev) == ("acme", "carla")
    assert ev.data == {"value": {"name": "projects/p/databases/(default)/documents/accounts/acme/contacts/carla"}}


def test_r11b_feeder_routes_match_the_trigger_pattern_only() -> None:
    route = parse_route("accounts/{accountId}/contacts/{contactId}=http://127.0.0.1:1/")
    assert route == Route("accounts/{accountId}/contacts/{contactId}", "http://127.0.0.1:1/")
    assert route.collection_id == "contacts"
    assert route.matches("accounts/a/contacts/c")
    assert not route.matches("accounts/a/contacts/c/x/y") and not route.matches("other/a/contacts/c")


class _Snap:
    """A document snapshot's two members that needs_scan reads."""

    def __init__(self, data: dict[str, object] | None) -> None:
        self.exists = data is not None
        self._data = data

    def to_dict(self) -> dict[str, object] | None:
        return self._data


def test_r11b_scan_is_due_first_time_unfinished_or_a_week_after_the_last() -> None:
    from datetime import timedelta

    from shared.crm.contact_index import is_complete, needs_scan

    now = datetime(2025, 6, 1, tzinfo=UTC)
    assert needs_scan(_Snap(None), now) and not is_complete(_Snap(None))
    assert needs_scan(_Snap({"complete": False, "resumeAfter": "c9"}), now)
    fresh = _Snap({"complete": True, "completedAt": now - timedelta(days=1)})
    assert is_complete(fresh) and not needs_scan(fresh, now)
    stale = _Snap({"complete": True, "completedAt": now - timedelta(days=8)})
    assert is_complete(stale) and needs_scan(stale, now)
    refreshing = _Snap({"complete": True, "completedAt": now - timedelta(days=8), "resumeAfter": "c3"})
    assert is_complete(refreshing) and needs_scan(refreshing, now)
