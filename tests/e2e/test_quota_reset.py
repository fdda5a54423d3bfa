"""quota_reset through the local stack: past send slots go (the local stack's stand-in for the TTL
policies), watches near expiry are renewed at the simulator (fanned out to gmail_push, one message
per due mailbox), re-auth mailboxes are skipped, and a second run changes nothing."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from shared.core import paths
from tests.e2e.oauth_steps import connect, crm_for, seed_user

pytestmark = pytest.mark.e2e

ACCOUNT = "acme"
DUE, REAUTH, FRESH = "due.rep@gmail.test", "reauth.rep@gmail.test", "fresh.rep@gmail.test"


def tick(stack: Any) -> None:
    """Deliver one daily-tick as Pub/Sub would (a CloudEvent in binary mode); returns when the run is done."""
    data = {"message": {"data": base64.b64encode(b"{}").decode(), "messageId": uuid.uuid4().hex},
            "subscription": f"projects/{stack.project_id}/subscriptions/daily-tick"}
    resp = requests.post(stack.function_url("quota_reset"), data=json.dumps(data), timeout=60, headers={
        "Content-Type": "application/json", "ce-specversion": "1.0", "ce-id": uuid.uuid4().hex,
        "ce-source": f"//pubsub.googleapis.com/projects/{stack.project_id}/topics/daily-tick",
        "ce-type": "google.cloud.pubsub.topic.v1.messagePublished"})
    assert resp.status_code == 200, resp.text


def watch_calls(sim: Any, address: str) -> int:
    return int(sim.stats().get("calls", {}).get(address, {}).get("watch", 0))


def renewed(db: Any, sim: Any, address: str, calls_before: int) -> bool:
    """The fanned-out renewal for `address` has run: Gmail was called and the sync wrote the new expiry."""
    doc = db.document(f"sync_mailboxes/{paths.mailbox_id(address)}").get().to_dict() or {}
    return watch_calls(sim, address) > calls_before and doc["watchExpiration"] > datetime.now(UTC) + timedelta(days=6) \
        and not doc.get("leaseOwner")


def wait_renewed(db: Any, sim: Any, address: str, calls_before: int, timeout: float = 20.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not renewed(db, sim, address, calls_before):
        assert time.monotonic() < deadline, f"watch of {address} not renewed within {timeout:.0f} s"
        time.sleep(0.1)


def ids(db: Any, collection: str) -> set[str]:
    return {s.id for s in db.collection(collection).stream()}


@pytest.fixture
def world(stack: Any, clean: Any, firestore_db: Any, sim_client: Any) -> dict[str, Any]:
    crm = crm_for(stack)
    now = datetime.now(UTC)
    for user, address in (("due", DUE), ("reauth", REAUTH), ("fresh", FRESH)):
        seed_user(firestore_db, ACCOUNT, user)
        assert connect(crm, sim_client, ACCOUNT, user, address)["status"] == "connected"
    mb = {a: firestore_db.document(f"sync_mailboxes/{paths.mailbox_id(a)}") for a in (DUE, REAUTH, FRESH)}
    mb[DUE].update({"watchExpiration": now + timedelta(hours=20)})
    mb[REAUTH].update({"watchExpiration": now + timedelta(hours=20), "status": "reauth_required"})
    mb[FRESH].update({"watchExpiration": now + timedelta(days=6)})

    due_id = paths.mailbox_id(DUE)
    today = now.date()
    yesterday, last_week = today - timedelta(days=1), today - timedelta(days=7)
    for day, n in ((yesterday, 3), (last_week, 2), (today, 2)):
        for i in range(n):
            firestore_db.document(f"sync_send_slots/{paths.send_slot_id(due_id, day.isoformat(), i)}").set(
                {"mailboxId": due_id, "day": day.isoformat(), "idempotencyKey": f"r{i}", "createdAt": now})
    firestore_db.document("sync_idempotency/old").set({"state": "done", "expireAt": now - timedelta(hours=1)})
    firestore_db.document("sync_idempotency/new").set({"state": "done", "expireAt": now + timedelta(days=6)})
    return {"mailboxes": mb, "today_slots": {paths.send_slot_id(due_id, today.isoformat(), i) for i in range(2)}}


def test_daily_tick_resets_counters_and_renews_watches_near_expiry(stack: Any, world: dict[str, Any],
                                                                   firestore_db: Any, sim_client: Any) -> None:
    before = {a: sim_client.mailbox(a)["watch"]["expiration"] for a in (DUE, REAUTH, FRESH)}
    calls = {a: watch_calls(sim_client, a) for a in (DUE, REAUTH, FRESH)}

    tick(stack)

    assert ids(firestore_db, "sync_send_slots") == world["today_slots"]  # past days gone, today's kept
    assert ids(firestore_db, "sync_idempotency") == {"new"}
    wait_renewed(firestore_db, sim_client, DUE, calls[DUE])  # renewals are fanned out to gmail_push
    assert watch_calls(sim_client, DUE) == calls[DUE] + 1
    assert int(sim_client.mailbox(DUE)["watch"]["expiration"]) > int(before[DUE])
    renewed = world["mailboxes"][DUE].get().to_dict()["watchExpiration"]
    assert renewed > datetime.now(UTC) + timedelta(days=6)
    # re-auth mailbox skipped (no Gmail call at all), fresh watch left alone
    assert watch_calls(sim_client, REAUTH) == calls[REAUTH]
    assert watch_calls(sim_client, FRESH) == calls[FRESH]
    assert sim_client.mailbox(FRESH)["watch"]["expiration"] == before[FRESH]


def test_a_second_daily_tick_changes_nothing(stack: Any, world: dict[str, Any], firestore_db: Any,
                                             sim_client: Any) -> None:
    calls = watch_calls(sim_client, DUE)
    tick(stack)
    wait_renewed(firestore_db, sim_client, DUE, calls)
    slots, records = ids(firestore_db, "sync_send_slots"), ids(firestore_db, "sync_idempotency")
    stats = sim_client.stats()["calls"]
    mailboxes = {a: ref.get().to_dict() for a, ref in world["mailboxes"].items()}

    tick(stack)

    assert ids(firestore_db, "sync_send_slots") == slots
    assert ids(firestore_db, "sync_idempotency") == records
    assert sim_client.stats()["calls"] == stats
    assert {a: ref.get().to_dict() for a, ref in world["mailboxes"].items()} == mailboxes


def test_the_daily_tick_topic_triggers_quota_reset(stack: Any, world: dict[str, Any], firestore_db: Any) -> None:
    """What Cloud Scheduler does: publish to daily-tick; the push subscription runs quota_reset."""
    import time

    stack.pubsub.publish("daily-tick", b"{}")
    deadline = time.monotonic() + 20
    while ids(firestore_db, "sync_send_slots") != world["today_slots"]:
        assert time.monotonic() < deadline, "quota_reset did not run after a daily-tick message"
        time.sleep(0.2)


def test_a_run_out_of_time_leaves_the_rest_for_the_next_tick(stack: Any, world: dict[str, Any], firestore_db: Any,
                                                            sim_client: Any, function_env: Any) -> None:
    """Bounded in time: with no budget left nothing is renewed (and nothing breaks); the next run catches up."""
    function_env("quota_reset", QUOTA_RESET_BUDGET_SECONDS="0")
    calls = watch_calls(sim_client, DUE)
    tick(stack)
    assert watch_calls(sim_client, DUE) == calls
    function_env("quota_reset", QUOTA_RESET_BUDGET_SECONDS="50")
    tick(stack)
    wait_renewed(firestore_db, sim_client, DUE, calls)
    assert watch_calls(sim_client, DUE) == calls + 1
