"""Quota units per method and user, the per-user rate (429) and the daily sending limit."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
from googleapiclient.errors import HttpError

from tests.simulator.conftest import MODIFY, READ, SEND, b64, deliver, gmail_service, rfc822

REP = "rep@example.com"
OTHER = "other@example.com"
ALICE = "alice@customer.example"


def stats(sim: str) -> dict[str, Any]:
    out: dict[str, Any] = requests.get(f"{sim}/sim/stats", timeout=5).json()
    return out


def settings(sim: str, **kw: Any) -> None:
    requests.put(f"{sim}/sim/settings", json=kw, timeout=5).raise_for_status()


def _spend_one_of_each(sim: str, gmail: Any) -> None:
    msg = deliver(sim, REP, rfc822(ALICE, REP, "hi"))
    gmail.users().getProfile(userId="me").execute()
    gmail.users().messages().list(userId="me").execute()
    gmail.users().messages().get(userId="me", id=msg["id"]).execute()
    gmail.users().threads().get(userId="me", id=msg["threadId"]).execute()
    gmail.users().history().list(userId="me", startHistoryId="1").execute()
    gmail.users().messages().trash(userId="me", id=msg["id"]).execute()


def test_the_2026_model_is_the_default_with_googles_current_prices(sim: str, token_for: Callable[..., str]) -> None:
    gmail = gmail_service(sim, token_for(REP, (READ, SEND, MODIFY)))
    other = gmail_service(sim, token_for(OTHER))
    _spend_one_of_each(sim, gmail)
    gmail.users().messages().send(userId="me", body={"raw": b64(rfc822(REP, ALICE, "x"))}).execute()
    other.users().getProfile(userId="me").execute()
    s = stats(sim)
    assert s["quotaUnits"][REP] == {
        "getProfile": 1, "messages.list": 5, "messages.get": 20, "threads.get": 40, "history.list": 2,
        "messages.trash": 20, "messages.send": 100,
    }
    assert s["quotaUnits"][OTHER] == {"getProfile": 1}
    assert s["calls"][REP]["messages.get"] == 1
    assert s["limits"]["model"] == "2026" and s["projectDaily"]["threshold"] == 80_000_000


def test_the_legacy_model_keeps_the_old_prices_and_250_units_a_second(
    sim: str, token_for: Callable[..., str]
) -> None:
    settings(sim, quotaModel="legacy", rateLimitUnitsPerSecond=None)
    _spend_one_of_each(sim, gmail_service(sim, token_for(REP, (READ, MODIFY))))
    s = stats(sim)
    assert s["quotaUnits"][REP] == {
        "getProfile": 1, "messages.list": 5, "messages.get": 5, "threads.get": 10, "history.list": 2,
        "messages.trash": 5,
    }
    assert s["limits"]["userUnitsPerSecond"] == 250 and s["projectDaily"]["threshold"] is None


def test_the_per_user_limit_of_the_2026_model_is_6000_units_a_minute(sim: str) -> None:
    settings(sim, rateLimitUnitsPerSecond=None)  # the model's own rate
    limits = stats(sim)["limits"]
    assert limits["userUnitsPerSecond"] * 60 == 6_000 and limits["burstSeconds"] == 10
    assert limits["projectUnitsPerSecond"] * 60 == 1_200_000


def test_an_unknown_quota_model_is_refused(sim: str) -> None:
    resp = requests.put(f"{sim}/sim/settings", json={"quotaModel": "2027"}, timeout=5)
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_settings"
    assert requests.get(f"{sim}/sim/settings", timeout=5).json()["quotaModel"] == "2026"


def test_over_the_per_user_rate_is_429_user_rate_limit_exceeded(sim: str, token_for: Callable[..., str]) -> None:
    settings(sim, rateLimitUnitsPerSecond=20, rateBurstSeconds=1)
    gmail = gmail_service(sim, token_for(REP))
    for _ in range(4):  # 4 x 5 units: the bucket's one second of 20 units
        gmail.users().messages().list(userId="me").execute()
    with pytest.raises(HttpError) as err:
        gmail.users().messages().list(userId="me").execute()
    assert err.value.resp.status == 429
    detail = err.value.error_details[0]
    assert detail["reason"] == "userRateLimitExceeded" and detail["domain"] == "usageLimits"
    assert "Retry after" in detail["message"]
    assert stats(sim)["refused"][REP] == {"userRateLimitExceeded": 1}


def test_over_the_per_project_rate_is_429_rate_limit_exceeded_for_any_user(
    sim: str, token_for: Callable[..., str]
) -> None:
    settings(sim, projectRateLimitUnitsPerSecond=20, rateBurstSeconds=1)
    gmail, other = gmail_service(sim, token_for(REP)), gmail_service(sim, token_for(OTHER))
    for _ in range(4):  # the project's one second of 20 units, spent by REP
        gmail.users().messages().list(userId="me").execute()
    with pytest.raises(HttpError) as err:
        other.users().messages().list(userId="me").execute()
    assert err.value.resp.status == 429
    detail = err.value.error_details[0]
    assert detail["reason"] == "rateLimitExceeded" and detail["domain"] == "usageLimits"
    s = stats(sim)
    assert s["refused"] == {OTHER: {"rateLimitExceeded": 1}}
    assert OTHER not in s["quotaUnits"]  # a refused call is not charged


def test_the_project_daily_count_adds_every_users_admitted_units(sim: str, token_for: Callable[..., str]) -> None:
    gmail_service(sim, token_for(REP)).users().messages().list(userId="me").execute()
    gmail_service(sim, token_for(OTHER)).users().getProfile(userId="me").execute()
    assert stats(sim)["projectDaily"]["units"] == 6


def test_rate_limit_refills_and_counts_only_admitted_calls(sim: str, token_for: Callable[..., str]) -> None:
    settings(sim, rateLimitUnitsPerSecond=20, rateBurstSeconds=1)
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
    settings(sim, rateLimitUnitsPerSecond=5, rateBurstSeconds=1)
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
    assert stats(sim)["refused"][REP] == {"dailySendingLimit": 1}


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
    settings(sim, dailySendLimit=1, rateLimitUnitsPerSecond=10_000)  # two sends in a second: 200 units
    gmail = gmail_service(sim, token_for(REP))
    no_rcpt = b64(b"From: rep@example.com\r\nSubject: x\r\n\r\nbody")
    with pytest.raises(HttpError):
        gmail.users().messages().send(userId="me", body={"raw": no_rcpt}).execute()
    gmail.users().messages().send(userId="me", body={"raw": b64(rfc822(REP, ALICE, "ok"))}).execute()
