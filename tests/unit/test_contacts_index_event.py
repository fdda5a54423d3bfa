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
