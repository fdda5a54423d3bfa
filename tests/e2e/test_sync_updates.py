"""R19 end to end: what the rep does to a logged message in Gmail reaches the CRM's copy of it.

Reading, starring, trashing and deleting happen in the simulated Gmail (its
admin API makes the same changes Gmail's UI makes, and writes the same
history records); the watch notification drives the real gmail_push, and the
test reads the message document and the `message.updated` events as the CRM
would. No change may cost a messages.get: the history record carries the labels.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.sync_steps import (
    alice_with_carla,
    connect_rep,
    logged_id,
    mail,
    messages_of,
    seed_contact,
    wait_for,
    wait_synced,
)

pytestmark = pytest.mark.e2e

REP = "rep@gmail.test"
CLIENT = "carla@client.test"


@pytest.fixture
def world(clean: Any, firestore_db: Any, sim_client: Any, stack: Any) -> Any:
    return alice_with_carla(stack, sim_client, firestore_db, REP, CLIENT)


def gets(sim: Any) -> int:
    return int(sim.stats().get("calls", {}).get(REP, {}).get("messages.get", 0))


def logged(db: Any, sim: Any, subject: str = "Quote") -> tuple[dict[str, Any], Any]:
    """Deliver one mail from the contact and wait until it is logged; returns Gmail's answer and the doc ref."""
    got = sim.deliver(REP, mail(CLIENT, REP, subject))
    wait_synced(db, sim, REP)
    return got, db.document(f"accounts/acme/conversations/carla/messages/{logged_id(sim, REP, got)}")


def wait_field(ref: Any, field: str, value: Any) -> dict[str, Any]:
    return wait_for(lambda: (d := ref.get().to_dict() or {}).get(field) == value and d, 20, f"{field} == {value}")


def updated_events(pull: Any, count: int) -> list[dict[str, Any]]:
    return [e for e in pull(count + 2, timeout=5) if e["type"] == "message.updated"]


def test_r19_new_message_takes_read_and_starred_from_its_labels(world: Any, sim_client: Any) -> None:
    _, ref = logged(world, sim_client)
    doc = ref.get().to_dict()
    assert (doc["read"], doc["starred"], doc["trashed"], doc["deletedInGmail"]) == (False, False, False, False)


def test_r19_read_in_gmail_marks_message_read(world: Any, sim_client: Any, crm_events: Any) -> None:
    got, ref = logged(world, sim_client)
    crm_events(1)  # message.synced
    before = gets(sim_client)
    sim_client.modify(REP, got["id"], remove=["UNREAD"])
    doc = wait_field(ref, "read", True)
    assert (doc["starred"], doc["trashed"], doc["deletedInGmail"]) == (False, False, False)
    wait_synced(world, sim_client, REP)
    assert gets(sim_client) == before  # the history record carried the labels
    events = updated_events(crm_events, 1)
    assert [(e["messageId"], e["conversationId"], e["read"]) for e in events] == [(ref.id, "carla", True)]


def test_r19_unread_again_in_gmail_marks_message_unread(world: Any, sim_client: Any) -> None:
    got, ref = logged(world, sim_client)
    sim_client.modify(REP, got["id"], remove=["UNREAD"])
    wait_field(ref, "read", True)
    sim_client.modify(REP, got["id"], add=["UNREAD"])
    wait_field(ref, "read", False)


def test_r19_starred_and_unstarred_in_gmail(world: Any, sim_client: Any) -> None:
    got, ref = logged(world, sim_client)
    sim_client.modify(REP, got["id"], add=["STARRED"])
    wait_field(ref, "starred", True)
    sim_client.modify(REP, got["id"], remove=["STARRED"])
    wait_field(ref, "starred", False)


def test_r19_moved_to_trash_and_back_in_gmail(world: Any, sim_client: Any) -> None:
    got, ref = logged(world, sim_client)
    sim_client.modify(REP, got["id"], add=["TRASH"], remove=["INBOX"])
    wait_field(ref, "trashed", True)
    sim_client.modify(REP, got["id"], add=["INBOX"], remove=["TRASH"])
    doc = wait_field(ref, "trashed", False)
    assert doc["deletedInGmail"] is False


def test_r19_deleted_in_gmail_stays_in_the_crm_marked(world: Any, sim_client: Any, crm_events: Any) -> None:
    got, ref = logged(world, sim_client)
    crm_events(1)
    sim_client.delete_message(REP, got["id"])
    doc = wait_field(ref, "deletedInGmail", True)
    assert doc["subject"] == "Quote" and doc["text"]  # the CRM keeps what was logged
    events = updated_events(crm_events, 1)
    assert [(e["messageId"], e["deletedInGmail"]) for e in events] == [(ref.id, True)]


def test_r19_changes_to_mail_that_was_never_logged_write_nothing(world: Any, sim_client: Any) -> None:
    stranger = sim_client.deliver(REP, mail("stranger@nowhere.test", REP, "Buy now"))
    wait_synced(world, sim_client, REP)
    sim_client.modify(REP, stranger["id"], remove=["UNREAD"], add=["STARRED"])
    sim_client.delete_message(REP, stranger["id"])
    wait_synced(world, sim_client, REP)
    assert messages_of(world, "acme") == {}


def test_r19_a_replayed_pass_announces_a_change_once(world: Any, sim_client: Any, crm_events: Any,
                                                     stack: Any) -> None:
    from shared.crm import paths
    from tests.e2e.sync_steps import mailbox_doc, push

    got, ref = logged(world, sim_client)
    crm_events(1)
    cursor = mailbox_doc(world, REP)["historyId"]
    sim_client.modify(REP, got["id"], add=["STARRED"])
    wait_field(ref, "starred", True)
    wait_synced(world, sim_client, REP)
    # A crash before the cursor write: the next pass reads the same label record again.
    world.collection("sync_mailboxes").document(paths.mailbox_id(REP)).update({"historyId": cursor})
    push(stack, {"emailAddress": REP, "force": True})
    wait_synced(world, sim_client, REP)
    assert len(updated_events(crm_events, 2)) == 1


def test_r19_update_reaches_every_accounts_copy(clean: Any, firestore_db: Any, sim_client: Any, stack: Any) -> None:
    db = firestore_db
    seed_contact(db, "acme", "carla", CLIENT)
    seed_contact(db, "globex", "carla-g", CLIENT)
    connect_rep(stack, sim_client, db, "acme", "alice", REP)
    connect_rep(stack, sim_client, db, "globex", "gary", REP)
    got = sim_client.deliver(REP, mail(CLIENT, REP, "Hello both"))
    wait_synced(db, sim_client, REP)
    doc_id = logged_id(sim_client, REP, got)
    refs = [db.document(f"accounts/acme/conversations/carla/messages/{doc_id}"),
            db.document(f"accounts/globex/conversations/carla-g/messages/{doc_id}")]
    assert all(r.get().exists for r in refs)
    sim_client.modify(REP, got["id"], remove=["UNREAD"], add=["STARRED"])
    for r in refs:
        doc = wait_field(r, "starred", True)
        assert doc["read"] is True


def test_r19_a_crm_send_starred_in_gmail_is_marked(world: Any, sim_client: Any, stack: Any) -> None:
    import requests

    resp = requests.post(stack.function_url("send_email"), json={
        "accountId": "acme", "userId": "alice", "contactId": "carla", "subject": "Offer", "text": "Our offer.",
        "idempotencyKey": "offer-1"}, headers={"Authorization": f"Bearer {stack.secrets.crm_api_key}"}, timeout=60)
    assert resp.status_code == 200, resp.text
    gmail_id = resp.json()["gmailMessageId"]
    ref = world.document(f"accounts/acme/conversations/carla/messages/{resp.json()['messageId']}")
    assert ref.get().to_dict()["read"] is True
    sim_client.modify(REP, gmail_id, add=["STARRED"])
    wait_field(ref, "starred", True)
