"""R17 daily limit and R18 idempotency under concurrency and crashes, through the local stack.

The test stack runs send_email with DAILY_SEND_LIMIT=20 (tests/conftest.py);
the simulator's own sending limit and rate are raised so that only our limit
decides, except in the test of Gmail's own limit.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import pytest
import requests

from tests.e2e.send_steps import REP, World, drain_sync, make_world, wait_for

pytestmark = pytest.mark.e2e

LIMIT = 20  # DAILY_SEND_LIMIT of the test stack


@pytest.fixture
def world(stack: Any, clean: Any, firestore_db: Any, sim_client: Any) -> Iterator[World]:
    w = make_world(stack, firestore_db, sim_client)
    sim_client.settings(dailySendLimit=10_000, rateLimitUnitsPerSecond=1_000_000)
    yield w
    drain_sync(w)


def concurrently(n: int, fn: Any) -> list[requests.Response]:
    with ThreadPoolExecutor(max_workers=min(n, 64)) as pool:
        return list(pool.map(fn, range(n)))


def latency_summary(responses: list[requests.Response]) -> str:
    by: dict[int, list[float]] = {}
    for r in responses:
        by.setdefault(r.status_code, []).append(r.elapsed.total_seconds())
    return ", ".join(f"{code}: n={len(v)} median {sorted(v)[len(v) // 2]:.2f} s max {max(v):.2f} s"
                     for code, v in sorted(by.items()))


def test_r17_limit_plus_100_concurrent_sends_accept_exactly_the_limit(world: World) -> None:
    t0 = time.monotonic()
    responses = concurrently(LIMIT + 100, lambda i: world.send(key=f"bulk-{i}", text=f"message {i}"))
    elapsed = time.monotonic() - t0
    codes = Counter(r.status_code for r in responses)
    assert codes == {200: LIMIT, 429: 100}, [r.text for r in responses if r.status_code not in (200, 429)][:3]
    refused = [r.json() for r in responses if r.status_code == 429]
    assert {b["error"] for b in refused} == {"daily_limit_reached"}
    reset_at = datetime.fromisoformat(refused[0]["resetAt"])
    now = datetime.now(reset_at.tzinfo)  # R30: the oldest counted send leaves the rolling 24 hours, no midnight
    assert now + timedelta(hours=23) < reset_at <= now + timedelta(hours=24)
    assert len(world.sent()) == LIMIT
    assert len(world.collection("sync_send_slots")) == LIMIT
    assert len(world.messages()) == LIMIT
    print(f"\n{LIMIT + 100} concurrent sends in {elapsed:.2f} s ({latency_summary(responses)})")


def test_r17_gmails_own_sending_limit_is_reported_as_daily_limit_reached(world: World) -> None:
    world.sim.settings(dailySendLimit=1)
    assert world.send(key="one").status_code == 200
    resp = world.send(key="two")
    assert resp.status_code == 429, resp.text
    body = resp.json()
    assert body["error"] == "daily_limit_reached" and body["resetAt"]
    assert len(world.collection("sync_send_slots")) == 1  # the refused send gave its slot back
    assert len(world.collection("sync_idempotency")) == 1  # and its key: a retry tomorrow sends


def test_r18_twenty_concurrent_retries_of_one_key_send_once(world: World) -> None:
    responses = concurrently(20, lambda i: world.send(key="same-key"))
    assert {r.status_code for r in responses} == {200}, [r.text for r in responses][:3]
    assert len({json.dumps(r.json(), sort_keys=True) for r in responses}) == 1
    assert len(world.sent()) == 1
    assert world.send_calls() == 1
    assert len(world.messages()) == 1
    assert len(world.collection("sync_send_slots")) == 1


def test_r18_a_later_retry_returns_the_first_result(world: World) -> None:
    first = world.send(key="k")
    again = world.send(key="k")
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert world.send_calls() == 1


def test_r18_the_same_key_with_other_content_is_refused(world: World) -> None:
    assert world.send(key="k", text="one").status_code == 200
    resp = world.send(key="k", text="two")
    assert resp.status_code == 422 and resp.json()["error"] == "idempotency_key_reused"
    assert world.send_calls() == 1


def test_r18_a_crash_between_gmails_answer_and_the_log_does_not_send_twice(world: World, function_env: Any) -> None:
    """The function process dies right after Gmail accepted the message (a local-stack-only switch makes the
    worker call os._exit there); the client's retry must find the message at Gmail and finish the job."""
    function_env("send_email", SEND_TEST_CRASH_AFTER_GMAIL="1", SEND_LEASE_SECONDS="1")
    with pytest.raises(requests.ConnectionError):
        world.send(key="crash", timeout=30)
    sent = wait_for(world.sent, 10, "the message in the Sent folder")
    assert len(sent) == 1
    assert world.messages() == {}  # nothing logged: the crash came first
    record = next(iter(world.collection("sync_idempotency").values()))
    assert record["state"] == "pending"

    def retry() -> requests.Response | None:
        r = world.send(key="crash", timeout=30)
        return r if r.status_code == 200 else None  # 409 send_in_progress until the lease lapses

    resp = wait_for(retry, 20, "the retry to succeed")
    assert resp.json()["gmailMessageId"] == sent[0]["id"]
    assert len(world.sent()) == 1 and world.send_calls(REP) == 1
    assert list(world.messages()) == [resp.json()["messageId"]]
    assert len(world.collection("sync_send_slots")) == 1
