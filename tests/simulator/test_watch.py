"""users.watch / users.stop and the notifications they cause, on the real Pub/Sub emulator."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
from googleapiclient.errors import HttpError

from simulator.app import BackgroundServer
from simulator.config import SimConfig
from simulator.faults import Faults
from tests.simulator.conftest import PROJECT, Topic, b64, deliver, gmail_service, mint_token, rfc822

REP = "rep@example.com"
ALICE = "alice@customer.example"


def setup(watched: tuple[BackgroundServer, Topic], interval_ms: int = 0, **watch: Any) -> tuple[str, Any, Topic]:
    server, topic = watched
    requests.put(f"{server.url}/sim/settings", json={"notificationMinIntervalMs": interval_ms}, timeout=5)
    gmail = gmail_service(server.url, mint_token(server, REP))
    gmail.users().watch(userId="me", body={"topicName": topic.path, **watch}).execute()
    return server.url, gmail, topic


def test_watch_answers_history_id_and_a_seven_day_expiration(watched: tuple[BackgroundServer, Topic]) -> None:
    server, topic = watched
    gmail = gmail_service(server.url, mint_token(server, REP))
    resp = gmail.users().watch(userId="me", body={"topicName": topic.path, "labelIds": ["INBOX"]}).execute()
    days = (int(resp["expiration"]) / 1000 - time.time()) / 86400
    assert 6.99 < days <= 7
    assert resp["historyId"] == gmail.users().getProfile(userId="me").execute()["historyId"]
    box = requests.get(f"{server.url}/sim/mailboxes/{REP}", timeout=5).json()
    assert box["watch"]["topicName"] == topic.path and box["watch"]["labelIds"] == ["INBOX"]


def test_delivery_publishes_email_address_and_history_id(watched: tuple[BackgroundServer, Topic]) -> None:
    sim, _, topic = setup(watched)
    got = deliver(sim, REP, rfc822(ALICE, REP, "hi"))
    assert topic.pull(1) == [{"emailAddress": REP, "historyId": int(got["historyId"])}]


def test_changes_within_the_interval_are_coalesced_into_one_with_the_newest_id(
    watched: tuple[BackgroundServer, Topic],
) -> None:
    sim, _, topic = setup(watched, interval_ms=700)
    ids = [int(deliver(sim, REP, rfc822(ALICE, REP, f"m{i}"))["historyId"]) for i in range(5)]
    got = topic.pull(2, timeout=5, settle=0.8)
    assert len(got) == 2  # the first change at once, the other four together after the interval
    assert got[0]["historyId"] == ids[0] and got[1]["historyId"] == ids[-1]


def test_interval_zero_notifies_every_change(watched: tuple[BackgroundServer, Topic]) -> None:
    sim, _, topic = setup(watched, interval_ms=0)
    ids = [int(deliver(sim, REP, rfc822(ALICE, REP, f"m{i}"))["historyId"]) for i in range(3)]
    assert sorted(n["historyId"] for n in topic.pull(3, settle=0.3)) == ids


def test_stop_ends_notifications(watched: tuple[BackgroundServer, Topic]) -> None:
    sim, gmail, topic = setup(watched)
    gmail.users().stop(userId="me").execute()
    deliver(sim, REP, rfc822(ALICE, REP, "hi"))
    assert topic.pull(1, timeout=1.0) == []
    assert requests.get(f"{sim}/sim/mailboxes/{REP}", timeout=5).json()["watch"] is None


def test_label_filter_include_skips_other_changes(watched: tuple[BackgroundServer, Topic]) -> None:
    sim, gmail, topic = setup(watched, labelIds=["INBOX"], labelFilterBehavior="include")
    gmail.users().messages().send(userId="me", body={"raw": b64(rfc822(REP, ALICE, "out"))}).execute()
    got = deliver(sim, REP, rfc822(ALICE, REP, "in"))
    assert [n["historyId"] for n in topic.pull(1, settle=0.5)] == [int(got["historyId"])]


def test_injected_drop_loses_the_notification(watched: tuple[BackgroundServer, Topic]) -> None:
    sim, _, topic = setup(watched)
    requests.put(f"{sim}/sim/faults", json={"notifications": {"dropRate": 1}}, timeout=5).raise_for_status()
    deliver(sim, REP, rfc822(ALICE, REP, "hi"))
    assert topic.pull(1, timeout=1.0) == []
    assert requests.get(f"{sim}/sim/stats", timeout=5).json()["notifications"]["dropped"] == 1


def test_injected_duplicate_publishes_twice(watched: tuple[BackgroundServer, Topic]) -> None:
    sim, _, topic = setup(watched)
    requests.put(f"{sim}/sim/faults", json={"notifications": {"duplicateRate": 1}}, timeout=5).raise_for_status()
    got = deliver(sim, REP, rfc822(ALICE, REP, "hi"))
    assert [n["historyId"] for n in topic.pull(2, settle=0.3)] == [int(got["historyId"])] * 2


def test_injected_delay_holds_the_notification_back(watched: tuple[BackgroundServer, Topic]) -> None:
    sim, _, topic = setup(watched)
    requests.put(f"{sim}/sim/faults", json={"notifications": {"delayMs": 600}}, timeout=5).raise_for_status()
    t0 = time.monotonic()
    deliver(sim, REP, rfc822(ALICE, REP, "hi"))
    assert len(topic.pull(1)) == 1 and time.monotonic() - t0 >= 0.6


def _seed_reordering_only_the_first() -> int:
    """A seed whose first notification is reordered and the second is not (draws as the simulator makes them)."""
    for seed in range(1000):
        f = Faults()
        f.set({"seed": seed, "notifications": {"reorderRate": 0.5}})
        if f.for_notification().reorder and not f.for_notification().reorder:
            return seed
    raise AssertionError("no such seed")


def test_injected_reorder_delivers_an_older_history_id_after_a_newer_one(
    watched: tuple[BackgroundServer, Topic],
) -> None:
    sim, _, topic = setup(watched)
    spec = {"seed": _seed_reordering_only_the_first(), "notifications": {"reorderRate": 0.5}}
    requests.put(f"{sim}/sim/faults", json=spec, timeout=5).raise_for_status()
    first = int(deliver(sim, REP, rfc822(ALICE, REP, "one"))["historyId"])
    second = int(deliver(sim, REP, rfc822(ALICE, REP, "two"))["historyId"])
    assert [n["historyId"] for n in topic.pull(2)] == [second, first]


def test_watch_on_another_projects_topic_is_400(watched: tuple[BackgroundServer, Topic]) -> None:
    server, _ = watched
    gmail = gmail_service(server.url, mint_token(server, REP))
    with pytest.raises(HttpError) as err:
        gmail.users().watch(userId="me", body={"topicName": "projects/elsewhere/topics/t"}).execute()
    assert err.value.resp.status == 400
    assert f"projects/{PROJECT}/topics/*" in str(err.value)


def test_watch_on_a_missing_topic_is_404(watched: tuple[BackgroundServer, Topic]) -> None:
    server, _ = watched
    gmail = gmail_service(server.url, mint_token(server, REP))
    with pytest.raises(HttpError) as err:
        gmail.users().watch(userId="me", body={"topicName": f"projects/{PROJECT}/topics/nope"}).execute()
    assert err.value.resp.status == 404


def test_an_expired_watch_stops_notifying_until_renewed(watched: tuple[BackgroundServer, Topic]) -> None:
    sim, gmail, topic = setup(watched)
    requests.post(f"{sim}/sim/mailboxes/{REP}/watch/expire", timeout=5).raise_for_status()
    deliver(sim, REP, rfc822(ALICE, REP, "while expired"))
    assert topic.pull(1, timeout=1.0) == []
    gmail.users().watch(userId="me", body={"topicName": topic.path}).execute()  # renewal
    got = deliver(sim, REP, rfc822(ALICE, REP, "after renewal"))
    assert [n["historyId"] for n in topic.pull(1)] == [int(got["historyId"])]


# -- watch lifetime (watchLifetimeSeconds: Gmail's 7 days, shortened for a soak) -------------------


def test_watch_lifetime_setting_sets_the_expiration_users_watch_answers(
    sim: str, token_for: Callable[..., str]
) -> None:
    requests.put(f"{sim}/sim/settings", json={"watchLifetimeSeconds": 90}, timeout=5).raise_for_status()
    gmail = gmail_service(sim, token_for(REP))
    before = time.time()
    resp = gmail.users().watch(userId="me", body={"topicName": f"projects/{PROJECT}/topics/t"}).execute()
    assert before + 90 <= int(resp["expiration"]) / 1000 <= time.time() + 90
    box = requests.get(f"{sim}/sim/mailboxes/{REP}", timeout=5).json()
    assert box["watch"]["expiration"] == int(resp["expiration"]) and box["watch"]["expired"] is False


def test_watch_lifetime_comes_from_the_config_file_and_reset_restores_it(sim: str) -> None:
    assert SimConfig.from_dict({"watchLifetimeSeconds": 30}).settings.watch_lifetime_seconds == 30
    assert SimConfig.from_dict({}).settings.watch_lifetime_seconds == 7 * 86400
    requests.put(f"{sim}/sim/settings", json={"watchLifetimeSeconds": 5}, timeout=5).raise_for_status()
    requests.post(f"{sim}/sim/reset", timeout=5).raise_for_status()
    assert requests.get(f"{sim}/sim/settings", timeout=5).json()["watchLifetimeSeconds"] == 7 * 86400


@pytest.mark.parametrize("bad", [0, -5, "soon", True])
def test_watch_lifetime_below_one_second_or_not_a_number_is_refused(sim: str, bad: Any) -> None:
    resp = requests.put(f"{sim}/sim/settings", json={"watchLifetimeSeconds": bad}, timeout=5)
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_settings"
    with pytest.raises(ValueError, match="watchLifetimeSeconds"):
        SimConfig.from_dict({"watchLifetimeSeconds": bad})


def test_a_watch_past_its_lifetime_stops_notifying_until_renewed(watched: tuple[BackgroundServer, Topic]) -> None:
    server, _ = watched
    requests.put(f"{server.url}/sim/settings", json={"watchLifetimeSeconds": 1}, timeout=5).raise_for_status()
    sim, gmail, topic = setup(watched)
    deadline = time.monotonic() + 10
    while not requests.get(f"{sim}/sim/mailboxes/{REP}", timeout=5).json()["watch"]["expired"]:
        assert time.monotonic() < deadline, "the watch did not expire"
        time.sleep(0.1)
    deliver(sim, REP, rfc822(ALICE, REP, "after expiry"))
    assert topic.pull(1, timeout=1.0) == []
    requests.put(f"{sim}/sim/settings", json={"watchLifetimeSeconds": 3600}, timeout=5).raise_for_status()
    gmail.users().watch(userId="me", body={"topicName": topic.path}).execute()
    got = deliver(sim, REP, rfc822(ALICE, REP, "after renewal"))
    assert [n["historyId"] for n in topic.pull(1)] == [int(got["historyId"])]
