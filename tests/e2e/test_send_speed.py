"""SPEC §5 Speed: a send adds at most 5 sequential Firestore round trips to Gmail's own send (issue 12).

The send runs inside the Firestore meter (shared.core.roundtrips), which
counts every RPC at the client, and the local stack returns its rounds and
calls in response headers, so the test asserts the counts, which are
deterministic, never a time. The calls catch what the rounds cannot: a new
Firestore read beside an existing one adds no round but one call. send_email runs here with a daily
limit far above the test's sends: with the test stack's 20, a random slot
would collide now and then and take the general path (which R17's tests cover).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from shared.send.flow import CALLS_HEADER, ROUND_TRIPS_HEADER
from tests.e2e.send_steps import ACCOUNT, World, drain_sync, make_world

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def big_limit(stack: Any) -> Iterator[None]:
    """send_email restarted once for this module with a limit the tests never come near (no collisions)."""
    stack.restart_function("send_email", {"DAILY_SEND_LIMIT": "1000000"})
    yield
    stack.restart_function("send_email", None)


@pytest.fixture
def world(big_limit: None, stack: Any, clean: Any, firestore_db: Any, sim_client: Any) -> Iterator[World]:
    w = make_world(stack, firestore_db, sim_client)
    yield w
    drain_sync(w)


def round_trips(resp: Any) -> int:
    assert resp.status_code == 200, resp.text
    return int(resp.headers[ROUND_TRIPS_HEADER])


def calls(resp: Any) -> int:
    assert resp.status_code == 200, resp.text
    return int(resp.headers[CALLS_HEADER])


def test_speed_a_send_takes_3_round_trips_and_an_instances_first_send_of_a_user_4(world: World) -> None:
    from tests.e2e.oauth_steps import connect, crm_for, seed_user

    user = f"new-{time.monotonic_ns()}"  # a user this instance has never sent for
    seed_user(world.db, ACCOUNT, user)
    assert connect(crm_for(world.stack), world.sim, ACCOUNT, user, f"{user}@gmail.test")["status"] == "connected"
    # the sync must not log the sent message before send_email does (R18b's race): it would turn the send's log
    # commit into its slower path; this test measures send_email's own round trips
    world.sim.set_faults({"notifications": {"dropRate": 1.0}})
    first = world.send(key="first", userId=user)  # reads the mailbox and token once more
    second = world.send(key="second", userId=user)
    assert (round_trips(first), round_trips(second)) == (4, 3)  # read, (mailbox), record + slot, log: ≤ 5 (SPEC §5)
    assert (calls(first), calls(second)) == (4, 3)  # one Firestore call per round: nothing beside them


def test_speed_a_reply_takes_no_more_round_trips_than_a_new_send(world: World) -> None:
    parent = world.send(key="parent")
    reply = world.send(key="reply", subject=None, text="Following up.", replyToMessageId=parent.json()["messageId"])
    assert round_trips(reply) == 3  # the parent is in the first batch, its thread map read beside the reserve
    assert calls(reply) == 4


def test_speed_a_retry_of_a_finished_send_is_answered_after_one_round_trip(world: World) -> None:
    world.send(key="once")
    again = world.send(key="once")
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert (round_trips(again), calls(again)) == (1, 1)


def test_speed_8_concurrent_sends_to_one_contact_take_turns_on_its_conversation(world: World) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from tests.e2e.send_steps import CONTACT

    round_trips(world.send(key="warm"))  # the instance now knows the user's mailbox
    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(lambda i: world.send(key=f"burst-{i}", text=f"message {i}"), range(8)))
    assert [(round_trips(r), calls(r)) for r in responses] == [(3, 3)] * 8  # no guarded write failed and retried
    msgs = world.messages()
    assert len(msgs) == 9
    conv = world.db.document(f"accounts/{ACCOUNT}/conversations/{CONTACT}").get().to_dict()
    assert conv["lastMessageAt"] == max(m["sentAt"] for m in msgs.values())  # moved forward only


def test_speed_a_summary_changed_elsewhere_is_seen_by_the_first_read_and_not_moved_back(world: World) -> None:
    from datetime import UTC, datetime, timedelta

    from tests.e2e.send_steps import CONTACT

    round_trips(world.send(key="first"))  # the instance remembers the summary it wrote
    conv = world.db.document(f"accounts/{ACCOUNT}/conversations/{CONTACT}")
    later = datetime.now(UTC) + timedelta(hours=1)  # e.g. the sync logged mail dated later meanwhile
    conv.update({"lastMessageAt": later, "lastMessageSnippet": "from elsewhere"})

    resp = world.send(key="second")
    assert (round_trips(resp), calls(resp)) == (3, 3)  # the first batch's snapshot is newer than what was remembered
    assert resp.json()["messageId"] in world.messages()
    data = conv.get().to_dict()
    assert (data["lastMessageAt"], data["lastMessageSnippet"]) == (later, "from elsewhere")
