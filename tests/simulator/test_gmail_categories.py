"""Gmail's classifier on arrival: `deliver ?labelIds=` files mail under a category tab or in Spam, history
records carry the labels, and a watch's label filter (`labelFilterBehavior`) decides what notifies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests

from simulator.app import BackgroundServer
from tests.simulator.conftest import Topic, deliver, gmail_service, mint_token, rfc822

REP = "rep@example.com"
SHOP = "news@shop.example"


@pytest.fixture
def gmail(sim: str, token_for: Callable[..., str]) -> Any:
    return gmail_service(sim, token_for(REP))


def labels(gmail: Any, msg_id: str) -> list[str]:
    return list(gmail.users().messages().get(userId="me", id=msg_id, format="minimal").execute()["labelIds"])


def test_plain_delivery_is_primary(sim: str, gmail: Any) -> None:
    got = deliver(sim, REP, rfc822(SHOP, REP, "hi"))
    assert labels(gmail, got["id"]) == ["UNREAD", "CATEGORY_PERSONAL", "INBOX"]


@pytest.mark.parametrize("category", ["CATEGORY_PROMOTIONS", "CATEGORY_SOCIAL", "CATEGORY_UPDATES",
                                      "CATEGORY_FORUMS"])
def test_a_category_replaces_primary_and_stays_in_the_inbox(sim: str, gmail: Any, category: str) -> None:
    got = deliver(sim, REP, rfc822(SHOP, REP, "sale"), label_ids=category)
    assert labels(gmail, got["id"]) == ["UNREAD", category, "INBOX"] == got["labelIds"]


def test_spam_leaves_the_inbox_and_its_tab(sim: str, gmail: Any) -> None:
    got = deliver(sim, REP, rfc822(SHOP, REP, "win"), label_ids="SPAM,CATEGORY_PROMOTIONS")
    assert labels(gmail, got["id"]) == ["UNREAD", "SPAM"]


def test_important_is_kept_beside_the_category(sim: str, gmail: Any) -> None:
    got = deliver(sim, REP, rfc822(SHOP, REP, "bill"), label_ids="CATEGORY_UPDATES,IMPORTANT")
    assert labels(gmail, got["id"]) == ["UNREAD", "CATEGORY_UPDATES", "INBOX", "IMPORTANT"]


@pytest.mark.parametrize("bad", ["SENT", "DRAFT", "TRASH", "Label_1", "CATEGORY_SOCIAL,CATEGORY_FORUMS"])
def test_a_label_the_classifier_does_not_set_is_400_and_nothing_arrives(sim: str, gmail: Any, bad: str) -> None:
    resp = requests.post(f"{sim}/sim/mailboxes/{REP}/deliver", params={"labelIds": bad}, data=rfc822(SHOP, REP, "x"),
                         headers={"Content-Type": "message/rfc822"}, timeout=5)
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_argument"
    assert requests.get(f"{sim}/sim/mailboxes/{REP}/messages", timeout=5).json()["messages"] == []


def test_messages_added_history_records_carry_the_labels(sim: str, gmail: Any) -> None:
    start = gmail.users().getProfile(userId="me").execute()["historyId"]
    promo = deliver(sim, REP, rfc822(SHOP, REP, "sale"), label_ids="CATEGORY_PROMOTIONS")
    page = gmail.users().history().list(userId="me", startHistoryId=start, historyTypes=["messageAdded"]).execute()
    (record,) = page["history"]
    assert record["messagesAdded"] == [
        {"message": {"id": promo["id"], "threadId": promo["threadId"],
                     "labelIds": ["UNREAD", "CATEGORY_PROMOTIONS", "INBOX"]}}
    ]


def test_history_label_filter_finds_a_category(sim: str, gmail: Any) -> None:
    start = gmail.users().getProfile(userId="me").execute()["historyId"]
    deliver(sim, REP, rfc822(SHOP, REP, "primary"))
    social = deliver(sim, REP, rfc822(SHOP, REP, "liked"), label_ids="CATEGORY_SOCIAL")
    page = gmail.users().history().list(userId="me", startHistoryId=start, labelId="CATEGORY_SOCIAL").execute()
    assert [r["messages"][0]["id"] for r in page["history"]] == [social["id"]]


def _watch(watched: tuple[BackgroundServer, Topic], **body: Any) -> tuple[str, Topic]:
    server, topic = watched
    requests.put(f"{server.url}/sim/settings", json={"notificationMinIntervalMs": 0}, timeout=5).raise_for_status()
    gmail = gmail_service(server.url, mint_token(server, REP))
    gmail.users().watch(userId="me", body={"topicName": topic.path, **body}).execute()
    return server.url, topic


def test_watch_exclude_filter_publishes_nothing_for_excluded_categories(
    watched: tuple[BackgroundServer, Topic],
) -> None:
    sim, topic = _watch(watched, labelIds=["CATEGORY_PROMOTIONS", "CATEGORY_SOCIAL", "SPAM"],
                        labelFilterBehavior="exclude")
    for category in ("CATEGORY_PROMOTIONS", "CATEGORY_SOCIAL", "SPAM"):
        deliver(sim, REP, rfc822(SHOP, REP, category), label_ids=category)
    primary = deliver(sim, REP, rfc822(SHOP, REP, "primary"))
    assert [n["historyId"] for n in topic.pull(1, settle=0.5)] == [int(primary["historyId"])]


def test_watch_include_filter_publishes_only_its_labels(watched: tuple[BackgroundServer, Topic]) -> None:
    sim, topic = _watch(watched, labelIds=["CATEGORY_UPDATES"], labelFilterBehavior="include")
    deliver(sim, REP, rfc822(SHOP, REP, "primary"))
    update = deliver(sim, REP, rfc822(SHOP, REP, "receipt"), label_ids="CATEGORY_UPDATES")
    assert [n["historyId"] for n in topic.pull(1, settle=0.5)] == [int(update["historyId"])]
