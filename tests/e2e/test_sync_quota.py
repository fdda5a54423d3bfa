"""Gmail quota under today's limits (SPEC §5 0.3): the sync paces a backlog to the per-user limit in force and
draws no refusal, and never fetches mail in the categories the account skips.

The stack runs Gmail's 2026 model (the simulator's and the functions' default): messages.get costs 20 units,
a user may spend 6,000 a minute. The simulator's counters (`/sim/stats`: calls per method, refused per reason)
are the evidence.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.crm import paths
from tests.e2e.sync_steps import (
    alice_with_carla,
    mail,
    messages_of,
    push,
    wait_for,
    wait_synced,
)

pytestmark = pytest.mark.e2e

REP = "rep@gmail.test"
CLIENT = "carla@client.test"
STRANGER = "news@shop.test"
DROP_ALL = {"notifications": {"dropRate": 1.0}}


@pytest.fixture
def world(clean: Any, firestore_db: Any, sim_client: Any, stack: Any) -> Any:
    return alice_with_carla(stack, sim_client, firestore_db, REP, CLIENT)


def gmail_ids(db: Any) -> set[str]:
    return {d["gmailMessageId"] for d in messages_of(db, "acme").values()}


def gets(sim: Any) -> int:
    """messages.get calls Gmail admitted and charged (a call refused with 429 and retried is charged once)."""
    return int(sim.stats()["quotaUnits"].get(REP, {}).get("messages.get", 0)) // 20


def test_a_120_message_backlog_is_caught_up_at_the_per_user_limit_without_a_refusal(
    world: Any, sim_client: Any, stack: Any
) -> None:
    assert sim_client.stats()["limits"]["model"] == "2026"
    sim_client.set_faults(DROP_ALL)
    ids = {sim_client.deliver(REP, mail(CLIENT, REP, f"backlog {i}"))["id"] for i in range(120)}
    sim_client.set_faults({})
    stats = sim_client.stats()
    before = stats["quotaUnits"].get(REP, {}).get("messages.get", 0)
    refused_before = stats["refused"].get(REP, {})  # connecting is not under test (its users.watch may be)
    started = time.monotonic()
    push(stack, {"emailAddress": REP, "force": True})
    wait_for(lambda: ids <= gmail_ids(world), 90, "backlog synced")
    seconds = time.monotonic() - started
    stats = sim_client.stats()
    assert stats["refused"].get(REP, {}) == refused_before  # not one 429: the pace stayed under Gmail's window
    units = stats["quotaUnits"][REP]["messages.get"] - before
    assert units == 120 * 20  # each message fetched once
    floor = units / (6_000 / 60)
    print(f"backlog of 120: {seconds:.1f} s for {units} units of messages.get; per-user floor {floor:.1f} s")


def test_promotions_social_and_spam_cost_no_messages_get(world: Any, sim_client: Any) -> None:
    before = gets(sim_client)
    promo = sim_client.deliver(REP, mail(CLIENT, REP, "20% off"), label_ids=["CATEGORY_PROMOTIONS"])
    social = sim_client.deliver(REP, mail(STRANGER, REP, "liked your post"), label_ids=["CATEGORY_SOCIAL"])
    forum = sim_client.deliver(REP, mail(STRANGER, REP, "new topic"), label_ids=["CATEGORY_FORUMS"])
    spam = sim_client.deliver(REP, mail(CLIENT, REP, "win"), label_ids=["SPAM"])
    primary = sim_client.deliver(REP, mail(CLIENT, REP, "the contract"))
    wait_synced(world, sim_client, REP)
    assert gets(sim_client) - before == 1  # the Primary message only
    assert primary["id"] in gmail_ids(world)
    assert not {promo["id"], social["id"], forum["id"], spam["id"]} & gmail_ids(world)


def test_a_contacts_mail_in_updates_is_logged(world: Any, sim_client: Any) -> None:
    got = sim_client.deliver(REP, mail(CLIENT, REP, "your invoice"), label_ids=["CATEGORY_UPDATES"])
    wait_for(lambda: got["id"] in gmail_ids(world), 20, "Updates mail logged")


def test_the_watch_leaves_out_the_categories_every_linked_account_skips(world: Any, sim_client: Any) -> None:
    watch = sim_client.mailbox(REP)["watch"]
    assert watch["labelFilterBehavior"] == "exclude"
    assert watch["labelIds"] == ["CATEGORY_FORUMS", "CATEGORY_PROMOTIONS", "CATEGORY_SOCIAL"]


def test_a_reply_filed_under_promotions_in_a_logged_thread_is_logged_by_the_next_pass(
    world: Any, sim_client: Any, stack: Any
) -> None:
    first = mail(CLIENT, REP, "offer", message_id="<offer-1@client.test>")
    got = sim_client.deliver(REP, first)
    wait_for(lambda: got["id"] in gmail_ids(world), 20, "first message logged")
    reply = sim_client.deliver(REP, mail(CLIENT, REP, "Re: offer", in_reply_to="<offer-1@client.test>"),
                               label_ids=["CATEGORY_PROMOTIONS"])
    assert reply["threadId"] == got["threadId"]
    push(stack, {"emailAddress": REP, "force": True})  # Promotions notifies nobody: the next pass (a sweep)
    wait_for(lambda: reply["id"] in gmail_ids(world), 20, "the reply in Promotions logged with its thread")


def test_an_account_that_skips_no_category_gets_its_promotions_logged(
    world: Any, sim_client: Any, stack: Any
) -> None:
    world.document(paths.email_sync_settings_path("acme")).set({"skipCategories": []})
    got = sim_client.deliver(REP, mail(CLIENT, REP, "newsletter"), label_ids=["CATEGORY_PROMOTIONS"])
    push(stack, {"emailAddress": REP, "force": True})  # the watch made at connect still leaves Promotions out
    wait_for(lambda: got["id"] in gmail_ids(world), 20, "Promotions mail logged")


def test_a_renewed_watch_notifies_the_categories_an_account_stopped_skipping(
    world: Any, sim_client: Any, stack: Any
) -> None:
    world.document(paths.email_sync_settings_path("acme")).set({"skipCategories": []})
    mailbox = world.collection(paths.MAILBOXES).document(paths.mailbox_id(REP))
    mailbox.update({"watchExpiration": datetime.now(UTC) + timedelta(hours=1)})  # the renewal is due
    push(stack, {"emailAddress": REP, "force": True})
    wait_for(lambda: sim_client.mailbox(REP)["watch"]["labelIds"] == [], 20, "watch renewed without a filter")
