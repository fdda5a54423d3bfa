"""A CRM account is a team (SPEC 0.3, issue 20): several reps of one account connected at once.

The world: acme's contact Carla, acme's reps Alice (rep@gmail.test) and Carol
(carol@gmail.test), both connected through the real oauth flow. One behaviour
per test, named after the rule; each failed on 0.2.
"""

from __future__ import annotations

from email import message_from_bytes
from typing import Any

import pytest
import requests

from tests.e2e.sync_steps import connect_rep, logged_id, mail, messages_of, seed_contact, wait_synced

pytestmark = pytest.mark.e2e

ALICE = "rep@gmail.test"
CAROL = "carol@gmail.test"
CLIENT = "carla@client.test"


def team(stack: Any, sim: Any, db: Any, *, carla_assigned: list[str] | None = None) -> Any:
    seed_contact(db, "acme", "carla", CLIENT, assigned=carla_assigned)
    connect_rep(stack, sim, db, "acme", "alice", ALICE, user_email="alice@acme.test")
    connect_rep(stack, sim, db, "acme", "carol", CAROL, user_email="carol@acme.test")
    return db


@pytest.fixture
def world(clean: Any, firestore_db: Any, sim_client: Any, stack: Any) -> Any:
    return team(stack, sim_client, firestore_db)


def by_subject(db: Any) -> dict[str, dict[str, Any]]:
    return {d["subject"]: d for d in messages_of(db, "acme").values()}


# --------------------------------------------------------------------------- R29 forwards


def test_r29_replies_quoting_a_forwarded_or_original_message_block_are_replies(world: Any, sim_client: Any) -> None:
    sim_client.deliver(ALICE, mail(CLIENT, ALICE, "Specs", message_id="<r29a@client.test>"))
    sim_client.send_as_user(ALICE, mail(ALICE, CLIENT, "Re: Specs", "Here they are.\n\n"
                                        "---------- Forwarded message ---------\nFrom: eng@acme.test\nSpecs v2",
                                        in_reply_to="<r29a@client.test>"))
    sim_client.send_as_user(ALICE, mail(ALICE, CLIENT, "Re: Specs", "And the old ones.\n\n"
                                        "-----Original Message-----\nFrom: eng@acme.test\nSpecs v1",
                                        in_reply_to="<r29a@client.test>"))
    wait_synced(world, sim_client, ALICE)
    replies = [d for d in messages_of(world, "acme").values() if d["direction"] == "outbound"]
    assert len(replies) == 2 and [d["isForward"] for d in replies] == [False, False]


def test_r29_a_german_wg_forward_of_a_logged_thread_to_a_non_contact_is_logged_there(
        world: Any, sim_client: Any) -> None:
    first = sim_client.deliver(ALICE, mail(CLIENT, ALICE, "Angebot", message_id="<r29b@client.test>"))
    fwd = sim_client.send_as_user(ALICE, mail(ALICE, "ingenieur@partner.test", "WG: Angebot", "Bitte prüfen.",
                                              in_reply_to="<r29b@client.test>"))
    assert fwd["threadId"] == first["threadId"]
    wait_synced(world, sim_client, ALICE)
    doc = messages_of(world, "acme")["carla/" + logged_id(sim_client, ALICE, fwd)]
    assert (doc["direction"], doc["isForward"], doc["to"]) == ("outbound", True, ["ingenieur@partner.test"])
    assert [s.id for s in world.collection("accounts/acme/contacts").stream()] == ["carla"]  # no contact made


# --------------------------------------------------------------------------- R26 assignment inside one account


def test_r26_a_contact_assigned_to_carol_still_answers_alice_and_it_is_logged(
        clean: Any, firestore_db: Any, sim_client: Any, stack: Any) -> None:
    db = team(stack, sim_client, firestore_db, carla_assigned=["carol"])
    resp = requests.post(stack.function_url("send_email"), json={
        "accountId": "acme", "userId": "alice", "contactId": "carla", "subject": "Offer", "text": "Our offer.",
        "idempotencyKey": "r26-offer"}, headers={"Authorization": f"Bearer {stack.secrets.crm_api_key}"}, timeout=60)
    assert resp.status_code == 200, resp.text
    offer_id = message_from_bytes(sim_client.raw_message(ALICE, resp.json()["gmailMessageId"]))["Message-ID"]
    answer = sim_client.deliver(ALICE, mail(CLIENT, ALICE, "Re: Offer", "Deal.", in_reply_to=offer_id))
    wait_synced(db, sim_client, ALICE)
    doc = messages_of(db, "acme")["carla/" + logged_id(sim_client, ALICE, answer)]
    assert (doc["direction"], doc["userId"], doc["contactId"]) == ("inbound", "alice", "carla")


# --------------------------------------------------------------------------- R28 internal = every user address


def _forward_a_logged_mail(sim: Any, db: Any, to: str, tag: str) -> tuple[dict[str, Any], dict[str, Any]]:
    first = sim.deliver(ALICE, mail(CLIENT, ALICE, "Quote", message_id=f"<{tag}@client.test>"))
    fwd = sim.send_as_user(ALICE, mail(ALICE, to, "Fwd: Quote", "FYI", in_reply_to=f"<{tag}@client.test>"))
    assert fwd["threadId"] == first["threadId"]
    wait_synced(db, sim, ALICE)
    return first, fwd


def test_r28_a_forward_to_a_colleagues_connected_gmail_is_internal(world: Any, sim_client: Any) -> None:
    # Carol's CRM email is carol@acme.test; the Gmail she connected is another address
    first, _ = _forward_a_logged_mail(sim_client, world, CAROL, "r28a")
    assert list(messages_of(world, "acme")) == ["carla/" + logged_id(sim_client, ALICE, first)]


def test_r28_a_forward_to_a_colleagues_send_as_alias_is_internal(
        clean: Any, firestore_db: Any, sim_client: Any, stack: Any) -> None:
    sim_client.create_mailbox(CAROL)
    sim_client.set_send_as(CAROL, ["Carol@Acme-Sales.test", {"sendAsEmail": "ceo@client.test",
                                                            "verificationStatus": "pending"}])
    db = team(stack, sim_client, firestore_db)
    assert db.document("accounts/acme/users/carol").get().to_dict()["emailSync"]["aliases"] == [
        "carol@acme-sales.test"]  # a pending alias is not hers until Gmail verified it
    first, _ = _forward_a_logged_mail(sim_client, db, "carol@acme-sales.test", "r28b")
    assert list(messages_of(db, "acme")) == ["carla/" + logged_id(sim_client, ALICE, first)]


def test_r28_aliases_added_later_are_read_again_when_the_watch_is_renewed(world: Any, sim_client: Any) -> None:
    from datetime import UTC, datetime, timedelta

    from shared.crm import paths

    sim_client.set_send_as(CAROL, ["carol@acme-sales.test"])
    world.collection("sync_mailboxes").document(paths.mailbox_id(CAROL)).update(
        {"watchExpiration": datetime.now(UTC) + timedelta(hours=20)})  # due: the next pass renews it
    sim_client.deliver(CAROL, mail("newsletter@vendor.test", CAROL, "Any mail"))
    wait_synced(world, sim_client, CAROL)
    sync = world.document("accounts/acme/users/carol").get().to_dict()["emailSync"]
    assert sync["aliases"] == ["carol@acme-sales.test"]
    first, _ = _forward_a_logged_mail(sim_client, world, "carol@acme-sales.test", "r28c")
    assert list(messages_of(world, "acme")) == ["carla/" + logged_id(sim_client, ALICE, first)]


# --------------------------------------------------------------------------- R30 Gmail's rolling 24 hours

SEND_LIMIT = 20  # DAILY_SEND_LIMIT of the test stack (tests/conftest.py)


def _crm_send(stack: Any, user: str, key: str) -> requests.Response:
    return requests.post(stack.function_url("send_email"), json={
        "accountId": "acme", "userId": user, "contactId": "carla", "subject": "Offer", "text": "Our offer.",
        "idempotencyKey": key}, headers={"Authorization": f"Bearer {stack.secrets.crm_api_key}"}, timeout=60)


def test_r30_sends_made_in_gmail_count_and_reset_when_the_oldest_leaves_the_rolling_day(
        world: Any, sim_client: Any, stack: Any) -> None:
    from datetime import UTC, datetime, timedelta

    sent = [sim_client.send_as_user(ALICE, mail(ALICE, f"friend{i}@else.test", f"Hi {i}")) for i in range(SEND_LIMIT)]
    wait_synced(world, sim_client, ALICE)
    first_at = min(int(m["internalDate"]) for m in sim_client.messages(ALICE, label="SENT")
                   if m["id"] in {s["id"] for s in sent})
    resp = _crm_send(stack, "alice", "r30-after-gmail")
    assert resp.status_code == 429 and resp.json()["error"] == "daily_limit_reached", resp.text
    reset = datetime.fromisoformat(resp.json()["resetAt"])
    assert reset == datetime.fromtimestamp(first_at / 1000, UTC) + timedelta(hours=24)
    assert _crm_send(stack, "carol", "r30-carol").status_code == 200  # the limit is per Gmail address


def test_r30_crm_sends_racing_the_count_of_gmail_sends_never_overshoot(
        world: Any, sim_client: Any, stack: Any) -> None:
    from concurrent.futures import ThreadPoolExecutor

    for i in range(12):  # the sync counts these while the CRM sends below race it for the slots
        sim_client.send_as_user(ALICE, mail(ALICE, f"friend{i}@else.test", f"Hi {i}"))
    with ThreadPoolExecutor(max_workers=15) as pool:
        codes = list(pool.map(lambda i: _crm_send(stack, "alice", f"r30-race-{i}").status_code, range(15)))
    wait_synced(world, sim_client, ALICE)
    slots = [s.to_dict() for s in world.collection("sync_send_slots").stream()]
    crm = [s for s in slots if s["source"] == "crm"]
    assert sorted(set(codes)) <= [200, 429] and codes.count(200) == len(crm)
    assert len(slots) <= SEND_LIMIT and len({s["n"] for s in slots}) == len(slots)
