"""The simulator's admin API under /sim/ (the contract tests and CRM developers rely on)."""

from __future__ import annotations

from collections.abc import Callable

import requests

from simulator.client import SimClient
from tests.simulator.conftest import rfc822

REP = "Rep@Example.com"
ALICE = "alice@customer.example"


def test_create_mailbox_is_201_then_200_and_lower_cases_the_address(sim: str) -> None:
    first = requests.post(f"{sim}/sim/mailboxes", json={"address": REP}, timeout=5)
    again = requests.post(f"{sim}/sim/mailboxes", json={"address": REP.lower()}, timeout=5)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json() and first.json()["address"] == "rep@example.com"


def test_mailbox_shows_history_watch_and_active_tokens(sim: str, token_for: Callable[..., str]) -> None:
    token_for(REP)
    box = SimClient(sim).mailbox(REP)
    assert box["address"] == "rep@example.com" and box["watch"] is None and box["activeTokens"] == 1
    assert box["historyId"].isdigit()


def test_deliver_answers_ids_and_history_id(sim: str) -> None:
    c = SimClient(sim)
    c.create_mailbox(REP)
    got = c.deliver(REP, rfc822(ALICE, REP, "hi"), internal_date_ms=1_700_000_000_000)
    assert set(got) == {"id", "threadId", "labelIds", "historyId"}
    assert got["historyId"] == c.mailbox(REP)["historyId"]
    (msg,) = c.messages(REP)
    assert msg["internalDate"] == "1700000000000" and msg["headers"]["Subject"] == "hi"


def test_send_as_user_lands_in_sent_and_in_simulated_recipients_inbox(sim: str) -> None:
    c = SimClient(sim)
    c.create_mailbox(REP)
    c.create_mailbox(ALICE)
    sent = c.send_as_user(REP, rfc822(REP, ALICE, "from the UI"))
    assert [m["id"] for m in c.messages(REP, label="SENT")] == [sent["id"]]
    assert c.messages(REP, label="INBOX") == []
    assert [m["headers"]["Subject"] for m in c.messages(ALICE, label="INBOX")] == ["from the UI"]


def test_raw_message_is_what_the_mailbox_stored(sim: str) -> None:
    c = SimClient(sim)
    c.create_mailbox(REP)
    raw = rfc822(ALICE, REP, "raw", Message_ID="<raw@customer.example>")
    got = c.deliver(REP, raw)
    assert c.raw_message(REP, got["id"]) == b"Delivered-To: rep@example.com\r\n" + raw


def test_delivery_adds_a_message_id_when_the_sender_had_none(sim: str) -> None:
    c = SimClient(sim)
    c.create_mailbox(REP)
    got = c.deliver(REP, rfc822(ALICE, REP, "no id"))
    assert c.messages(REP)[0]["headers"]["Message-ID"].startswith("<")
    assert got["id"]


def test_unknown_mailbox_is_404_with_an_error_code(sim: str) -> None:
    resp = requests.get(f"{sim}/sim/mailboxes/nobody@example.com", timeout=5)
    assert resp.status_code == 404 and resp.json()["error"] == "not_found"
    resp = requests.post(f"{sim}/sim/mailboxes/nobody@example.com/deliver", data=b"x",
                         headers={"Content-Type": "message/rfc822"}, timeout=5)
    assert resp.status_code == 404


def test_deliver_needs_a_message_rfc822_body(sim: str) -> None:
    SimClient(sim).create_mailbox(REP)
    resp = requests.post(f"{sim}/sim/mailboxes/{REP}/deliver", json={"raw": "x"}, timeout=5)
    assert resp.status_code == 415


def test_bad_mailbox_address_and_bad_json_are_400(sim: str) -> None:
    assert requests.post(f"{sim}/sim/mailboxes", json={"address": "nope"}, timeout=5).status_code == 400
    resp = requests.post(f"{sim}/sim/mailboxes", data=b"{", headers={"Content-Type": "application/json"}, timeout=5)
    assert resp.status_code == 400 and resp.json()["error"] == "malformed_json"


def test_settings_round_trip_and_reject_unknown_keys(sim: str) -> None:
    c = SimClient(sim)
    assert c.settings(rate_limit_units_per_second=100)["rateLimitUnitsPerSecond"] == 100
    resp = requests.put(f"{sim}/sim/settings", json={"nope": 1}, timeout=5)
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_settings"


def test_reset_empties_mailboxes_and_restores_settings(sim: str) -> None:
    c = SimClient(sim)
    c.create_mailbox(REP)
    c.settings(daily_send_limit=1)
    c.reset()
    assert c.mailboxes() == []
    assert c.settings()["dailySendLimit"] == 500


def test_modify_and_delete_change_history(sim: str) -> None:
    c = SimClient(sim)
    c.create_mailbox(REP)
    got = c.deliver(REP, rfc822(ALICE, REP, "hi"))
    before = int(c.mailbox(REP)["historyId"])
    requests.post(f"{sim}/sim/mailboxes/{REP}/messages/{got['id']}/modify",
                  json={"addLabelIds": ["STARRED"]}, timeout=5).raise_for_status()
    assert int(c.mailbox(REP)["historyId"]) > before
    assert requests.delete(f"{sim}/sim/mailboxes/{REP}/messages/{got['id']}", timeout=5).status_code == 204
    assert c.messages(REP) == []


def test_stats_start_empty(sim: str) -> None:
    stats = SimClient(sim).stats()
    assert stats["quotaUnits"] == {} and stats["calls"] == {}
