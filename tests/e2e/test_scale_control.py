"""The sync's control path at scale (issue 11), through the real emulators and simulator.

Most tests run the sync's one operation in-process (`shared.sync.control.handle`, the code
gmail_push runs) with Gmail's notifications dropped at the simulator, so the stack's own
gmail_push does not race them and the test can read what the invocation measured: its
Firestore rounds, reads and writes (shared/core/roundtrips.py).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.core import paths
from tests.e2e.sync_steps import connect_rep, mail, mailbox_doc, messages_of, push, seed_contact, wait_for, wait_synced

pytestmark = pytest.mark.e2e

REP = "rep@gmail.test"
CLIENT = "carla@client.test"
DROP_ALL = {"notifications": {"dropRate": 1.0}}


@pytest.fixture
def world(clean: Any, firestore_db: Any, sim_client: Any, stack: Any, shared_env: Any) -> Any:
    seed_contact(firestore_db, "acme", "carla", CLIENT)
    connect_rep(stack, sim_client, firestore_db, "acme", "alice", REP)
    sim_client.set_faults(DROP_ALL)  # nothing reaches the stack's gmail_push by itself
    return firestore_db


def run(**kw: Any) -> Any:
    """One message through the sync's one operation, in this process."""
    from shared.sync.control import handle
    from shared.sync.messages import PushMessage

    return handle(PushMessage(**kw))


def notification(sim: Any, address: str = REP) -> Any:
    return run(address=address, history_id=int(sim.mailbox(address)["historyId"]))


def gets(sim: Any, method: str, address: str = REP) -> int:
    return int(sim.stats().get("calls", {}).get(address, {}).get(method, 0))


def mb_ref(db: Any, address: str = REP) -> Any:
    return db.collection("sync_mailboxes").document(paths.mailbox_id(address))


# ----------------------------------------------------------------- round trips (SPEC §5)


def test_a_pass_for_one_new_message_takes_at_most_6_firestore_round_trips_to_the_message_written(
        world: Any, sim_client: Any) -> None:
    # warm: the first pass of the process and of the account (token, secrets, users cache filled, and the
    # account's one-time contact-index scan, R11b: a steady pass, as measured here, pays none of these)
    sim_client.deliver(REP, mail(CLIENT, REP, "warm-up"))
    assert notification(sim_client).stored == 1
    sim_client.deliver(REP, mail(CLIENT, REP, "one new message"))
    result = notification(sim_client)
    assert result.outcome == "synced" and result.stored == 1
    assert "roundsTo_contact_index_scan" not in result.firestore  # a steady pass (what make soak's bound reads)
    assert result.firestore["roundsTo_message_written"] <= 6, (result.firestore, result.trace)
    # and the whole invocation, conversation update, events and the cursor's last write included
    # (a pass slow enough to renew its lease spends a round trip on each renewal)
    assert result.firestore["rounds"] - result.heartbeats <= 7, (result.firestore, result.trace)
    # One mailbox read, no user scans: mailbox, token, link, the linked user, the account's settings (R21) and
    # contact-index state (R11b), the contact's index entry, the thread map, the users count, the conversation.
    assert result.firestore["reads"] <= 11, (result.firestore, result.trace)


def test_r11b_the_pass_that_runs_an_accounts_one_time_contact_scan_says_so(world: Any, sim_client: Any) -> None:
    from shared.sync import contact_index

    contact_index.state_ref("acme").delete()  # as before the account's first pass
    sim_client.deliver(REP, mail(CLIENT, REP, "first pass of the account"))
    result = notification(sim_client)
    assert result.stored == 1 and "roundsTo_contact_index_scan" in result.firestore
    assert contact_index.is_complete(contact_index.state_ref("acme").get())


def test_a_forced_sync_of_an_idle_mailbox_is_one_read_and_one_write_without_a_lease(world: Any,
                                                                                    sim_client: Any) -> None:
    result = run(address=REP, force=True, requested_at_ms=int(time.time() * 1000), reason="sweep")
    assert result.outcome == "idle"
    assert result.firestore == {"rounds": 2, "calls": 2, "reads": 2, "writes": 1}  # mailbox + token, then one write
    doc = mailbox_doc(world, REP)
    assert doc["lastSyncAt"] > datetime.now(UTC) - timedelta(minutes=1) and not doc.get("leaseOwner")
    assert doc["sweepDueAt"] > datetime.now(UTC) + timedelta(minutes=10)  # live watch: swept again in 15-30 min


def test_a_forced_sync_requested_before_the_last_pass_began_is_dropped(world: Any, sim_client: Any) -> None:
    asked = int(time.time() * 1000)
    sim_client.deliver(REP, mail(CLIENT, REP, "arrives"))
    assert notification(sim_client).outcome == "synced"  # a pass started after the request
    before = gets(sim_client, "history.list")
    result = run(address=REP, force=True, requested_at_ms=asked, reason="sweep")
    assert result.outcome == "answered"
    assert gets(sim_client, "history.list") == before  # no Gmail call
    assert result.firestore["reads"] == 2 and result.firestore["writes"] == 0


def test_a_notification_covered_by_the_cursor_is_one_read(world: Any, sim_client: Any) -> None:
    result = notification(sim_client)
    assert result.outcome in ("up_to_date", "synced")
    again = notification(sim_client)
    assert again.outcome == "up_to_date" and again.firestore["writes"] == 0 and again.firestore["rounds"] == 1


# ----------------------------------------------------------------- page by page, one deadline


def test_a_long_backlog_is_stored_page_by_page_as_history_arrives(world: Any, sim_client: Any,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.core.config import get_config
    from shared.gmail import fetch

    ids = [sim_client.deliver(REP, mail(CLIENT, REP, f"backlog {i}"))["id"] for i in range(25)]
    monkeypatch.setattr(fetch, "HISTORY_PAGE_SIZE", 10)
    monkeypatch.setenv("SYNC_MAX_PASS_SECONDS", "0")  # stop at the first boundary
    get_config.cache_clear()
    before = gets(sim_client, "history.list")
    result = run(address=REP, force=True, requested_at_ms=int(time.time() * 1000), reason="resync")
    assert result.outcome == "continued" and result.stored == 10
    assert gets(sim_client, "history.list") - before == 2  # the probe's page and the pass's first page only
    stored = {d["gmailMessageId"] for d in messages_of(world, "acme").values()}
    assert stored == set(ids[:10])  # the first page is stored before the rest is listed
    # the continuation it published goes on from the cursor in the stack's gmail_push
    wait_for(lambda: {d["gmailMessageId"] for d in messages_of(world, "acme").values()} == set(ids), 40,
             "backlog finished by the continuation")


def test_one_deadline_covers_the_wait_for_a_busy_lease(world: Any, sim_client: Any,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.core.config import get_config

    mb_ref(world).update({"leaseOwner": "another-instance", "leaseUntil": datetime.now(UTC) + timedelta(minutes=5)})
    monkeypatch.setenv("SYNC_DEADLINE_SECONDS", "1")
    get_config.cache_clear()
    sim_client.deliver(REP, mail(CLIENT, REP, "waits"))
    started = time.monotonic()
    result = notification(sim_client)
    assert result.outcome == "continued"  # handed to a new invocation instead of outliving its deadline
    assert time.monotonic() - started < 30
    assert mailbox_doc(world, REP)["dirty"] is True  # the holder would pick it up too
    mb_ref(world).update({"leaseOwner": None, "leaseUntil": None})


# ----------------------------------------------------------------- the control topic


def test_control_messages_reach_gmail_push_through_their_own_subscription(world: Any, sim_client: Any,
                                                                          stack: Any) -> None:
    got = sim_client.deliver(REP, mail(CLIENT, REP, "forced"))
    push(stack, {"emailAddress": REP, "force": True, "requestedAt": int(time.time() * 1000), "reason": "resync"})
    wait_for(lambda: got["id"] in {d["gmailMessageId"] for d in messages_of(world, "acme").values()}, 20,
             "forced sync through sync-control")
    sub = stack.pubsub.subscriber
    control = sub.get_subscription(request={"subscription": stack.pubsub.subscription_path("sync-control-push")})
    watch = sub.get_subscription(request={"subscription": stack.pubsub.subscription_path("gmail-watch-push")})
    assert control.topic.endswith("/topics/sync-control") and watch.topic.endswith("/topics/gmail-watch")
    for s in (control, watch):
        assert s.ack_deadline_seconds == 600  # longer than the function's timeout
        assert s.dead_letter_policy.dead_letter_topic.endswith("/topics/dead-letters")
        assert s.push_config.push_endpoint


# ----------------------------------------------------------------- the sweep reads only what is due


def _fake_mailbox(db: Any, i: int, due: datetime) -> None:
    mid = paths.mailbox_id(f"quiet{i}@gmail.test")
    db.collection("sync_mailboxes").document(mid).set({
        "address": f"quiet{i}@gmail.test", "status": "connected", "historyId": "1",
        "sweepShard": paths.sweep_shard(mid, 16), "sweepDueAt": due})


def test_the_sweep_reads_the_due_mailboxes_and_nothing_else(world: Any, sim_client: Any) -> None:
    for i in range(40):  # mailboxes not due: the sweep must not read them
        _fake_mailbox(world, i, datetime.now(UTC) + timedelta(minutes=20))
    mb_ref(world).update({"sweepDueAt": datetime.now(UTC) - timedelta(seconds=1)})
    due_shard = mailbox_doc(world, REP)["sweepShard"]
    reads = {}
    for shard in range(16):
        reads[shard] = run(sweep=True, shard=shard).firestore
    assert reads[due_shard] == {"rounds": 2, "calls": 2, "reads": 1, "writes": 1}  # one due, claimed in one batch
    assert all(r == {"rounds": 1, "calls": 1, "reads": 1, "writes": 0} for s, r in reads.items() if s != due_shard)
    assert mailbox_doc(world, REP)["sweepDueAt"] > datetime.now(UTC)  # claimed: the next tick skips it
    assert run(sweep=True, shard=due_shard).firestore["writes"] == 0


def test_the_sweep_tick_fans_out_one_message_per_shard(world: Any, sim_client: Any, stack: Any) -> None:
    sim_client.deliver(REP, mail(CLIENT, REP, "only the sweep finds this"))
    mb_ref(world).update({"sweepDueAt": datetime.now(UTC) - timedelta(seconds=1)})
    result = run(sweep=True)
    assert result.outcome == "fanned_out" and result.firestore["calls"] == 0  # publishing only
    wait_synced(world, sim_client, REP, 30)  # a shard's sweep, then the forced sync, ran in the stack


# ----------------------------------------------------------------- watches that never lapse


def test_a_sync_renews_a_watch_that_ends_within_48_hours(world: Any, sim_client: Any) -> None:
    mb_ref(world).update({"watchExpiration": datetime.now(UTC) + timedelta(hours=20)})
    before = gets(sim_client, "watch")
    sim_client.deliver(REP, mail(CLIENT, REP, "any mail"))
    result = notification(sim_client)
    assert result.outcome == "synced" and result.renewed
    assert gets(sim_client, "watch") == before + 1
    assert mailbox_doc(world, REP)["watchExpiration"] > datetime.now(UTC) + timedelta(days=6)
    assert notification(sim_client).renewed is False  # renewed once, not on every pass


def test_a_lapsed_watch_is_visible_until_renewed(world: Any, sim_client: Any) -> None:
    sim_client._json("POST", f"/sim/mailboxes/{REP}/watch/expire")
    mb_ref(world).update({"watchExpiration": datetime.now(UTC) - timedelta(minutes=1)})
    sim_client.set_faults({**DROP_ALL, "methods": {"watch": {"errorRate": 1.0, "codes": [503]}}})
    result = run(address=REP, force=True, requested_at_ms=int(time.time() * 1000), reason="sweep")
    assert result.outcome == "idle" and not result.renewed  # the sync itself still works
    doc = mailbox_doc(world, REP)
    assert doc["watchLapsedAt"] is not None
    assert doc["sweepDueAt"] <= datetime.now(UTC) + timedelta(seconds=180)  # swept often meanwhile
    user = world.document("accounts/acme/users/alice").get().to_dict()["emailSync"]
    assert user["watchLapsedAt"] is not None  # where the CRM reads status
    sim_client.set_faults(DROP_ALL)
    result = run(address=REP, force=True, requested_at_ms=int(time.time() * 1000), reason="sweep")
    assert result.renewed
    assert mailbox_doc(world, REP)["watchLapsedAt"] is None
    assert world.document("accounts/acme/users/alice").get().to_dict()["emailSync"]["watchLapsedAt"] is None
    assert sim_client.stats()["watches"]["lapses"] == 1  # the simulator saw the one lapse, renewed late


def test_the_renewal_fan_out_resumes_behind_the_last_mailbox_it_handled(world: Any,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A continuation neither skips nor repeats a mailbox, also when expirations are equal."""
    from shared.sync import renewal

    same = datetime.now(UTC) + timedelta(hours=1)
    for i in range(5):
        mid = paths.mailbox_id(f"due{i}@gmail.test")
        world.collection("sync_mailboxes").document(mid).set(
            {"address": f"due{i}@gmail.test", "status": "connected", "watchExpiration": same})
    world.collection("sync_mailboxes").document(paths.mailbox_id("gone@gmail.test")).set(
        {"address": "gone@gmail.test", "status": "reauth_required", "watchExpiration": same})
    published: list[str] = []
    monkeypatch.setattr("shared.sync.requests.request_renewals",
                        lambda addresses, timeout=30.0: len([published.append(a) for a in addresses]))
    monkeypatch.setattr(renewal, "PAGE_SIZE", 2)
    first = renewal.fan_out(time.monotonic() + 60)
    assert first.complete and first.published == 5 and first.pages == 3
    published.clear()
    cursor = {"at": renewal._micros(same), "id": sorted(paths.mailbox_id(f"due{i}@gmail.test") for i in range(5))[1]}
    resumed = renewal.fan_out(time.monotonic() + 60, after=cursor)
    assert resumed.published == 3 and len(set(published)) == 3
    assert "gone@gmail.test" not in published  # re-auth mailboxes are not read at all


def test_a_daily_tick_out_of_budget_continues_in_a_new_invocation(world: Any, sim_client: Any, stack: Any,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.sync import daily, renewal

    others = ["b.rep@gmail.test", "c.rep@gmail.test"]
    for i, address in enumerate(others):
        connect_rep(stack, sim_client, world, "acme", f"u{i}", address)
    soon = datetime.now(UTC) + timedelta(hours=1)
    for address in [REP, *others]:
        mb_ref(world, address).update({"watchExpiration": soon})
    monkeypatch.setattr(renewal, "PAGE_SIZE", 1)
    ticks = iter([0.0, 1e12])  # the budget runs out after the first page
    monkeypatch.setattr(renewal, "_clock", lambda: next(ticks, 1e12))
    report = daily.run()
    assert report.renewalsRequested == 1 and not report.complete and report.continued
    # the continuation on daily-tick is run by the stack's quota_reset; every due watch ends renewed
    wait_for(lambda: all(mailbox_doc(world, a)["watchExpiration"] > datetime.now(UTC) + timedelta(days=6)
                         for a in [REP, *others]), 40, "every due watch renewed")


# ----------------------------------------------------------------- account users, cached


def test_account_users_are_cached_and_a_new_user_is_seen_at_once(world: Any, sim_client: Any) -> None:
    from shared.sync.users_cache import account_user_emails, invalidate

    invalidate()
    assert "alice@acme.example" in (account_user_emails("acme") or set())
    seed_contact(world, "acme", "bob-contact", "bob@acme.example")  # also a contact: only R11 keeps it out
    world.document("accounts/acme/users/bob").set({"email": "Bob@Acme.example", "name": "Bob"})
    assert "bob@acme.example" in (account_user_emails("acme") or set())  # the count changed: read again
    # R11 end to end: mail from the new colleague is internal, not synced
    sim_client.deliver(REP, mail("bob@acme.example", REP, "internal"))
    assert notification(sim_client).outcome == "synced"
    assert messages_of(world, "acme") == {}
