"""Push is a trigger, not the truth: lost notifications, expired history, revoked access, stale cursors.

Each test makes Gmail (the simulator) misbehave the way Google does and checks
that the CRM still ends with every message exactly once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.crm import paths
from tests.e2e.oauth_steps import connect, crm_for
from tests.e2e.sync_steps import (
    connect_rep,
    mail,
    mailbox_doc,
    messages_of,
    push,
    seed_contact,
    wait_for,
    wait_synced,
)

pytestmark = pytest.mark.e2e

REP = "rep@gmail.test"
CLIENT = "carla@client.test"
DROP_ALL = {"notifications": {"dropRate": 1.0}}


@pytest.fixture
def world(clean: Any, firestore_db: Any, sim_client: Any, stack: Any) -> Any:
    seed_contact(firestore_db, "acme", "carla", CLIENT)
    connect_rep(stack, sim_client, firestore_db, "acme", "alice", REP)
    return firestore_db


def gmail_ids(db: Any, account: str = "acme") -> list[str]:
    return sorted(d["gmailMessageId"] for d in messages_of(db, account).values())


def calls(sim: Any, method: str) -> int:
    """Calls Gmail answered (rejected ones, e.g. 429, included)."""
    return int(sim.stats().get("calls", {}).get(REP, {}).get(method, 0))


def gets_charged(sim: Any) -> int:
    """messages.get calls Gmail accepted and charged (at the price of the quota model in force)."""
    price = int(sim.stats()["limits"]["units"]["messages.get"])
    return int(sim.stats().get("quotaUnits", {}).get(REP, {}).get("messages.get", 0)) // price


def test_notification_already_covered_by_the_cursor_costs_no_gmail_call(world: Any, sim_client: Any,
                                                                         stack: Any) -> None:
    sim_client.deliver(REP, mail(CLIENT, REP, "one"))
    wait_synced(world, sim_client, REP)
    before = sim_client.stats()["calls"].get(REP, {})
    cursor = int(mailbox_doc(world, REP)["historyId"])
    for _ in range(3):
        push(stack, {"emailAddress": REP, "historyId": str(cursor)})
    push(stack, {"emailAddress": REP, "historyId": "not-a-number"})  # malformed: acknowledged, not retried
    push(stack, {"unexpected": True})
    sim_client.deliver(REP, mail(CLIENT, REP, "two"))  # a later real notification proves the others were handled
    wait_synced(world, sim_client, REP)
    after = sim_client.stats()["calls"][REP]
    assert after.get("history.list", 0) - before.get("history.list", 0) == 1
    assert len(gmail_ids(world)) == 2


def test_sweep_syncs_a_mailbox_whose_every_notification_was_dropped(world: Any, sim_client: Any, stack: Any) -> None:
    sim_client.deliver(REP, mail(CLIENT, REP, "seen"))
    wait_synced(world, sim_client, REP)
    sim_client.set_faults(DROP_ALL)
    lost = [sim_client.deliver(REP, mail(CLIENT, REP, f"lost {i}"))["id"] for i in range(3)]
    # A second mailbox synced just now must not be forced (no Gmail call for it).
    other = "fresh@gmail.test"
    seed_contact(world, "globex", "carla-g", CLIENT)
    connect_rep(stack, sim_client, world, "globex", "gary", other)
    world.collection("sync_mailboxes").document(paths.mailbox_id(other)).update(
        {"lastSyncAt": datetime.now(UTC), "sweepDueAt": datetime.now(UTC) + timedelta(minutes=20)})
    # The first mailbox's last sync is older than its sweep interval: it is due.
    world.collection("sync_mailboxes").document(paths.mailbox_id(REP)).update(
        {"lastSyncAt": datetime.now(UTC) - timedelta(minutes=10),
         "sweepDueAt": datetime.now(UTC) - timedelta(minutes=1)})
    other_calls = dict(sim_client.stats()["calls"].get(other, {}))

    push(stack, {"sweep": True})
    wait_for(lambda: set(lost) <= set(gmail_ids(world)), 20, "dropped-notification mail synced by the sweep")
    assert len(gmail_ids(world)) == 4
    assert sim_client.stats()["calls"].get(other, {}).get("history.list", 0) == other_calls.get("history.list", 0)
    # The pass writes lastSyncAt with the cursor, after the messages: wait for it rather than race it.
    wait_for(lambda: mailbox_doc(world, REP)["lastSyncAt"] > datetime.now(UTC) - timedelta(minutes=1), 20,
             "lastSyncAt moved by the swept pass")


def test_history_expiry_is_recovered_by_listing_since_the_last_sync(world: Any, sim_client: Any,
                                                                   stack: Any) -> None:
    sim_client.deliver(REP, mail(CLIENT, REP, "before the outage"))
    wait_synced(world, sim_client, REP)
    sim_client.set_faults(DROP_ALL)
    sim_client.settings(historyRetention=2)
    missed = [sim_client.deliver(REP, mail(CLIENT, REP, f"during the outage {i}"))["id"] for i in range(5)]
    sim_client.set_faults({})
    push(stack, {"emailAddress": REP, "force": True})
    wait_for(lambda: set(missed) <= set(gmail_ids(world)), 30, "gap recovered")
    assert len(gmail_ids(world)) == 6  # nothing twice
    assert calls(sim_client, "messages.list") >= 1
    after = sim_client.deliver(REP, mail(CLIENT, REP, "after recovery"))  # incremental sync continues
    wait_for(lambda: after["id"] in gmail_ids(world), 20, "sync continues from the fresh historyId")
    assert len(gmail_ids(world)) == 7


def test_history_expiry_recovery_never_imports_mail_from_before_the_connection(
        clean: Any, firestore_db: Any, sim_client: Any, stack: Any) -> None:
    db = firestore_db
    seed_contact(db, "acme", "carla", CLIENT)
    sim_client.create_mailbox(REP)
    sim_client.deliver(REP, mail(CLIENT, REP, "old mail"))
    sim_client.set_faults(DROP_ALL)
    sim_client.settings(historyRetention=1)
    connect_rep(stack, sim_client, db, "acme", "alice", REP)
    new = [sim_client.deliver(REP, mail(CLIENT, REP, f"new {i}"))["id"] for i in range(3)]
    sim_client.set_faults({})
    push(stack, {"emailAddress": REP, "force": True})
    wait_for(lambda: set(new) <= set(gmail_ids(db)), 30, "gap recovered")
    assert gmail_ids(db) == sorted(new)


def test_r5_revoked_access_then_reconnect_syncs_the_gap(world: Any, sim_client: Any, stack: Any) -> None:
    sim_client.deliver(REP, mail(CLIENT, REP, "before"))
    wait_synced(world, sim_client, REP)
    sim_client.revoke(REP)  # the rep changed the Google password
    gap = [sim_client.deliver(REP, mail(CLIENT, REP, "while revoked 1"))["id"]]
    wait_for(lambda: mailbox_doc(world, REP).get("status") == "reauth_required", 20, "reauth_required")
    gap.append(sim_client.deliver(REP, mail(CLIENT, REP, "while revoked 2"))["id"])
    assert len(gmail_ids(world)) == 1
    user = world.document("accounts/acme/users/alice").get().to_dict()["emailSync"]
    assert user["status"] == "reauth_required" and user["lastError"]

    assert connect(crm_for(stack), sim_client, "acme", "alice", REP) == {"status": "connected"}
    new = sim_client.deliver(REP, mail(CLIENT, REP, "after reconnect"))["id"]
    wait_for(lambda: {*gap, new} <= set(gmail_ids(world)), 20, "gap and new mail synced")
    assert len(gmail_ids(world)) == 4


def test_message_deleted_before_it_is_fetched_is_skipped(world: Any, sim_client: Any, stack: Any) -> None:
    sim_client.set_faults(DROP_ALL)
    gone = sim_client.deliver(REP, mail(CLIENT, REP, "deleted soon"))["id"]
    kept = sim_client.deliver(REP, mail(CLIENT, REP, "kept"))["id"]
    sim_client.delete_message(REP, gone)
    sim_client.set_faults({})
    push(stack, {"emailAddress": REP, "force": True})
    wait_synced(world, sim_client, REP)
    assert gmail_ids(world) == [kept]


def test_status_shows_last_sync_time_and_clears_the_error(world: Any, sim_client: Any, stack: Any) -> None:
    sim_client.deliver(REP, mail(CLIENT, REP, "hello"))
    wait_synced(world, sim_client, REP)
    status = crm_for(stack).status("acme", "alice")
    assert status["status"] == "connected"
    assert status.get("lastSyncAt"), status
    assert not status.get("lastError")


def test_concurrent_notifications_fetch_each_message_only_once(world: Any, sim_client: Any, stack: Any) -> None:
    sim_client.set_faults(DROP_ALL)
    ids = [sim_client.deliver(REP, mail(CLIENT, REP, f"burst {i}"))["id"] for i in range(30)]
    sim_client.set_faults({})
    before = gets_charged(sim_client)
    for _ in range(6):  # several instances start at once for one mailbox
        push(stack, {"emailAddress": REP, "force": True})
    wait_for(lambda: set(ids) <= set(gmail_ids(world)), 30, "burst synced")
    wait_for(lambda: not mailbox_doc(world, REP).get("leaseOwner"), 15, "lease released")
    assert gets_charged(sim_client) - before == 30  # the lease kept the others from fetching too
    assert len(gmail_ids(world)) == 30


def test_resync_from_the_crm_syncs_immediately(world: Any, sim_client: Any, stack: Any) -> None:
    sim_client.set_faults(DROP_ALL)
    got = sim_client.deliver(REP, mail(CLIENT, REP, "notification lost"))
    resp = crm_for(stack).post("/resync", {"accountId": "acme", "userId": "alice"})
    assert resp.status_code in (200, 202), resp.text
    wait_for(lambda: got["id"] in gmail_ids(world), 20, "resync")


def test_a_backlog_longer_than_one_invocation_continues_in_the_next(world: Any, sim_client: Any, stack: Any,
                                                                      function_env: Any) -> None:
    function_env("gmail_push", SYNC_MAX_PASS_SECONDS="0")  # every pass stops after one chunk of 50
    sim_client.set_faults(DROP_ALL)
    ids = [sim_client.deliver(REP, mail(CLIENT, REP, f"backlog {i}"))["id"] for i in range(120)]
    sim_client.set_faults({})
    before = gets_charged(sim_client)
    push(stack, {"emailAddress": REP, "force": True})
    wait_for(lambda: set(ids) <= set(gmail_ids(world)), 40, "backlog synced over several invocations")
    assert gets_charged(sim_client) - before == 120  # each invocation went on from the cursor
