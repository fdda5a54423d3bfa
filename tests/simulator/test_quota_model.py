"""The quota model's arithmetic on a fake clock: moving windows, refusals, the daily count (no server)."""

from __future__ import annotations

from simulator.quota import MODELS, Quota

REP = "rep@example.com"
OTHER = "other@example.com"


class Clock:
    def __init__(self, t: float = 1_780_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_a_burst_is_admitted_up_to_ten_seconds_of_the_per_user_limit() -> None:
    q = Quota(MODELS["2026"], clock=Clock())
    admitted = [q.admit(REP, "messages.get") is None for _ in range(51)]
    assert admitted == [True] * 50 + [False]  # 50 x 20 units = 1,000: ten seconds of 6,000 / 60


def test_eight_sends_at_once_pass_the_2026_model() -> None:
    q = Quota(MODELS["2026"], clock=Clock())
    assert all(q.admit(REP, "messages.send") is None for _ in range(8))


def test_a_minute_of_greedy_calls_gets_the_limit_plus_one_burst() -> None:
    clock = Clock()
    q = Quota(MODELS["2026"], clock=clock)
    spent = 0
    for _ in range(6000):  # a call every 10 ms for a minute, as fast as admitted
        spent += 20 if q.admit(REP, "messages.get") is None else 0
        clock.t += 0.01
    assert 6000 <= spent <= 6000 + 1000  # the limit, plus at most the one burst of ten seconds


def test_a_refusal_says_which_limit_and_when_to_retry() -> None:
    q = Quota(MODELS["2026"], clock=Clock(), burst_seconds=1)
    for _ in range(5):
        q.admit(REP, "messages.get")
    refused = q.admit(REP, "messages.get")
    assert refused is not None and refused.reason == "userRateLimitExceeded"
    assert abs(refused.wait - 0.2) < 1e-6  # 20 units at 100 units/s
    assert q.stats()["refused"] == {REP: {"userRateLimitExceeded": 1}}


def test_the_project_limit_refuses_another_user_with_rate_limit_exceeded() -> None:
    q = Quota(MODELS["2026"], project_rate=40, clock=Clock(), burst_seconds=1)
    assert q.admit(REP, "messages.get") is None and q.admit(REP, "messages.get") is None
    refused = q.admit(OTHER, "messages.get")
    assert refused is not None and refused.reason == "rateLimitExceeded"
    assert q.stats()["quotaUnits"] == {REP: {"messages.get": 40}}  # the refused call is not charged


def test_a_call_above_the_bucket_passes_only_when_the_bucket_is_full() -> None:
    clock = Clock()
    q = Quota(MODELS["2026"], user_rate=50, clock=clock, burst_seconds=1)
    assert q.admit(REP, "history.list") is None  # 48 of 50 left
    assert q.admit(REP, "watch") is not None  # 100 units need a full bucket
    clock.t += 0.05  # 2.5 units back: full
    assert q.admit(REP, "watch") is None


def test_the_project_daily_count_starts_again_each_utc_day() -> None:
    clock = Clock(1_780_012_800.0 - 1)  # one second before a UTC midnight
    q = Quota(MODELS["2026"], clock=clock)
    q.admit(REP, "messages.get")
    assert q.stats()["projectDaily"]["units"] == 20
    clock.t += 2
    q.admit(OTHER, "getProfile")
    daily = q.stats()["projectDaily"]
    assert daily["units"] == 1 and daily["threshold"] == 80_000_000


def test_the_legacy_model_charges_five_units_a_get_at_250_units_a_second() -> None:
    q = Quota(MODELS["legacy"], clock=Clock())
    admitted = [q.admit(REP, "messages.get") is None for _ in range(51)]
    assert admitted == [True] * 50 + [False]
