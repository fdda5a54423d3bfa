"""R18b end to end: a CRM send Gmail accepted is logged exactly once, even when send_email died after
Gmail's answer and the CRM never retried.

send_email runs with the local-stack-only switch SEND_TEST_CRASH_AFTER_GMAIL=1
(the worker exits right after Gmail accepted the message, before anything is
logged). The Gmail notification of the sent message then reaches gmail_push,
which finds the send's idempotency record unfinished and logs the message in
the sending account, as send_email would have.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.e2e.sync_steps import connect_rep, logged_id, messages_of, seed_contact, wait_for, wait_synced

pytestmark = pytest.mark.e2e

REP = "rep@gmail.test"
CLIENT = "carla@client.test"


@pytest.fixture
def world(clean: Any, firestore_db: Any, sim_client: Any, stack: Any) -> Any:
    seed_contact(firestore_db, "acme", "carla", CLIENT)
    seed_contact(firestore_db, "globex", "carla-g", CLIENT)
    connect_rep(stack, sim_client, firestore_db, "acme", "alice", REP)
    connect_rep(stack, sim_client, firestore_db, "globex", "gary", REP)
    return firestore_db


def send(stack: Any, key: str, timeout: float = 30) -> requests.Response:
    return requests.post(stack.function_url("send_email"), json={
        "accountId": "acme", "userId": "alice", "contactId": "carla", "subject": "Offer", "text": "Our offer.",
        "idempotencyKey": key}, headers={"Authorization": f"Bearer {stack.secrets.crm_api_key}"}, timeout=timeout)


def crash_one_send(stack: Any, sim: Any, function_env: Any, key: str) -> dict[str, Any]:
    function_env("send_email", SEND_TEST_CRASH_AFTER_GMAIL="1", SEND_LEASE_SECONDS="1")
    with pytest.raises(requests.ConnectionError):
        send(stack, key)
    sent = sim.messages(REP, label="SENT")
    assert len(sent) == 1
    return sent[0]


def test_r18b_a_send_that_crashed_after_gmail_is_logged_once_in_the_sending_account(
        world: Any, sim_client: Any, stack: Any, function_env: Any, crm_events: Any) -> None:
    sent = crash_one_send(stack, sim_client, function_env, "crashed-1")
    doc_path = f"carla/{logged_id(sim_client, REP, sent)}"
    wait_for(lambda: doc_path in messages_of(world, "acme"), 20, "the sync to log the crashed send")
    wait_synced(world, sim_client, REP)
    msgs = messages_of(world, "acme")
    assert list(msgs) == [doc_path]
    doc = msgs[doc_path]
    assert (doc["source"], doc["direction"], doc["userId"], doc["contactId"]) == ("crm", "outbound", "alice", "carla")
    assert (doc["subject"], doc["to"], doc["gmailThreadId"]) == ("Offer", [CLIENT], sent["threadId"])
    assert messages_of(world, "globex") == {}  # R14: a CRM send belongs to the account it was sent from
    events = [e for e in crm_events(3, timeout=5) if e.get("messageId") == doc_path.split("/")[1]]
    assert [(e["type"], e["accountId"], e["source"]) for e in events] == [("message.sent", "acme", "crm")]


def test_r18b_a_late_retry_of_the_crashed_send_finds_it_logged_once(
        world: Any, sim_client: Any, stack: Any, function_env: Any) -> None:
    sent = crash_one_send(stack, sim_client, function_env, "crashed-2")
    doc_path = f"carla/{logged_id(sim_client, REP, sent)}"
    wait_for(lambda: doc_path in messages_of(world, "acme"), 20, "the sync to log it")
    function_env("send_email")  # the CRM retries much later, against a healthy function
    resp = wait_for(lambda: (r := send(stack, "crashed-2")).status_code == 200 and r, 20, "the retry to succeed")
    assert resp.json()["gmailMessageId"] == sent["id"]
    assert len(sim_client.messages(REP, label="SENT")) == 1
    wait_synced(world, sim_client, REP)
    assert list(messages_of(world, "acme")) == [doc_path]


def test_r18b_a_crm_send_that_finished_is_still_left_to_send_email(world: Any, sim_client: Any, stack: Any) -> None:
    resp = send(stack, "fine-1")
    assert resp.status_code == 200, resp.text
    wait_synced(world, sim_client, REP)
    msgs = messages_of(world, "acme")
    assert list(msgs) == [f"carla/{resp.json()['messageId']}"] and messages_of(world, "globex") == {}


def test_a_crm_send_send_email_logged_costs_the_sync_no_messages_get(world: Any, sim_client: Any,
                                                                       stack: Any) -> None:
    """send_email marks the Gmail id it logged (sync_crm_sent): the sync drops it before fetching (0.3)."""
    before = sim_client.stats()["quotaUnits"].get(REP, {}).get("messages.get", 0)
    resp = send(stack, "marked-1")
    assert resp.status_code == 200, resp.text
    wait_synced(world, sim_client, REP)
    assert sim_client.stats()["quotaUnits"][REP].get("messages.get", 0) == before
    assert list(messages_of(world, "acme")) == [f"carla/{resp.json()['messageId']}"]
