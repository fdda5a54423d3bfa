"""Quota units per method and user, the per-user rate (429) and the daily sending limit."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
from googleapiclient.errors import HttpError

from tests.simulator.conftest import b64, deliver, gmail_service, rfc822

REP = "rep@example.com"
OTHER = "other@example.com"
ALICE = "alice@customer.example"


def stats(sim: str) -> dict[str, Any]:
    out: dict[str, Any] = requests.get(f"{sim}/sim/stats", timeout=5).json()
    return out


def settings(sim: str, **kw: Any) -> None:
    requests.put(f"{sim}/sim/settings", json=kw, timeout=5).raise_for_status()


def test_units_are_gmails_published_costs_per_method_and_user(sim: str, token_for: Callable[..., str]) -> None:
    gmail = gmail_service(sim, token_for(REP))
    other = gmail_service(sim, token_for(OTHER))
    msg = deliver(sim, REP, rfc822(ALICE, REP, "hi"))
    gmail.users().getProfile(userId="me").execute()
    gmail.users().messages().list(userId="me").execute()
    gmail.users().messages().get(userId="me", id=msg["id"]).execute()
    gmail.users().history().list(userId="me", startHistoryId="1").execute()
    gmail.users().messages().send(userId="me", body={"raw": b64(rfc822(REP, ALICE, "x"))}).execute()
    other.users().getProfile(userId="me").execute()
    s = stats(sim)
    assert s["quotaUnits"][REP] == {
        "getProfile": 1, "messages.list": 5, "messages.get": 5, "history.list": 2, "messages.send": 100
    }
    assert s["quotaUnits"][OTHER] == {"getProfile": 1}
    assert s["calls"][REP]["messages.get"] == 1


def test_over_the_per_user_rate_is_429_rate_limit_exceeded(sim: str, token_for: Callable[..., str]) -> None:
    settings(sim, rateLimitUnitsPerSecond=20)
    gmail = gmail_service(sim, token_for(REP))
    for _ in range(4):  # 4 x 5 units: the bucket's one second of 20 units
        gmail.users().messages().list(userId="me").execute()
    with pytest.raises(HttpError) as err:
        gmail.users().messages().list(userId="me").execute()
    assert err.value.resp.status == 429
    detail = err.value.error_details[0]
    assert detail["reason"] == "rateLimitExceeded" and detail["domain"] == "usageLimits"
    assert "Retry after" in detail["message"]


def test_rate_limit_refills_and_counts_only_admitted_calls(sim: str, token_for: Callable[..., str]) -> None:
    settings(sim, rateLimitUnitsPerSecond=20)
    gmail = gmail_service(sim, token_for(REP))
    for _ in range(4):
        gmail.users().messages().list(userId="me").execute()
    with pytest.raises(HttpError):
        gmail.users().messages().list(userId="me").execute()
    time.sleep(0.3)  # 20 units/s refills 5 units in 0.25 s
    gmail.users().messages().list(userId="me").execute()
    s = stats(sim)
    assert s["quotaUnits"][REP]["messages.list"] == 25 and s["calls"][REP]["messages.list"] == 6


def test_users_have_separate_rate_buckets(sim: str, token_for: Callable[..., str]) -> None:
    settings(sim, rateLimitUnitsPerSecond=5)
    gmail_service(sim, token_for(REP)).users().messages().list(userId="me").execute()
    gmail_service(sim, token_for(OTHER)).users().messages().list(userId="me").execute()


def test_daily_sending_limit_answers_gmails_mail_sending_error(sim: str, token_for: Callable[..., str]) -> None:
    settings(sim, dailySendLimit=2, rateLimitUnitsPerSecond=10_000)
    gmail = gmail_service(sim, token_for(REP))
    for i in range(2):
        gmail.users().messages().send(userId="me", body={"raw": b64(rfc822(REP, ALICE, f"s{i}"))}).execute()
    with pytest.raises(HttpError) as err:
        gmail.users().messages().send(userId="me", body={"raw": b64(rfc822(REP, ALICE, "s3"))}).execute()
    assert err.value.resp.status == 429
    detail = err.value.error_details[0]
    assert detail["reason"] == "rateLimitExceeded" and detail["message"].endswith("(Mail sending)")
    sent = requests.get(f"{sim}/sim/mailboxes/{REP}/messages", params={"label": "SENT"}, timeout=5).json()
    assert len(sent["messages"]) == 2


def test_sends_from_gmails_ui_count_toward_the_daily_limit(sim: str, token_for: Callable[..., str]) -> None:
    settings(sim, dailySendLimit=1)
    gmail = gmail_service(sim, token_for(REP))
    ui = requests.post(f"{sim}/sim/mailboxes/{REP}/send", data=rfc822(REP, ALICE, "ui"),
                       headers={"Content-Type": "message/rfc822"}, timeout=5)
    assert ui.status_code == 200
    with pytest.raises(HttpError) as err:
        gmail.users().messages().send(userId="me", body={"raw": b64(rfc822(REP, ALICE, "api"))}).execute()
    assert err.value.resp.status == 429


def test_a_refused_send_does_not_use_up_the_daily_limit(sim: str, token_for: Callable[..., str]) -> None:
    settings(sim, dailySendLimit=1)
    gmail = gmail_service(sim, token_for(REP))
    no_rcpt = b64(b"From: rep@example.com\r\nSubject: x\r\n\r\nbody")
    with pytest.raises(HttpError):
        gmail.users().messages().send(userId="me", body={"raw": no_rcpt}).execute()
    gmail.users().messages().send(userId="me", body={"raw": b64(rfc822(REP, ALICE, "ok"))}).execute()
