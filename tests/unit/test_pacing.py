"""The sync's pace follows Gmail's limit in force (shared/gmail/pacing.py), checked against the simulator's own
quota model on one fake clock: a paced backlog draws no refusal and takes about what the limit allows."""

from __future__ import annotations

import pytest

from shared.core.config import Config
from shared.gmail.pacing import Limits, TokenBucket, limits_for
from simulator.quota import MODELS, Quota

REP = "rep@example.com"


class FakeClock:
    def __init__(self) -> None:
        self.t = 1_000_000.0  # small enough that a microsecond still moves the float

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


def test_the_2026_model_paces_at_90_percent_of_6000_units_a_minute() -> None:
    lim = limits_for("2026")
    assert lim.pace == pytest.approx(90.0) and lim.cost("messages.get") == 20 and lim.cost("threads.get") == 40


def test_the_legacy_model_paces_at_90_percent_of_15000_units_a_minute() -> None:
    lim = limits_for("legacy")
    assert lim.pace == pytest.approx(225.0) and lim.cost("messages.get") == 5


def test_gmail_user_units_per_second_overrides_the_pace() -> None:
    assert limits_for("2026", 50).pace == 50


def test_a_batch_of_gets_holds_what_gmail_admits_at_once() -> None:
    assert limits_for("2026").batch_size() == 4  # 4 x 20 = 80 units of a 90-unit bucket
    assert limits_for("legacy").batch_size() == 45
    assert limits_for("2026", 10).batch_size() == 1  # never empty


def test_an_unknown_quota_model_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError):
        limits_for("2027")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "p")
    monkeypatch.setenv("GMAIL_QUOTA_MODEL", "2027")
    with pytest.raises(Exception, match="GMAIL_QUOTA_MODEL"):
        Config.from_env()


def backlog(lim: Limits, quota: Quota, clock: FakeClock, messages: int) -> tuple[int, float]:
    """The sync's calls for a backlog (one history page, then batches of gets), each paced by our bucket and
    admitted or refused by the simulator's model; returns (refusals, seconds)."""
    bucket = TokenBucket(lim.pace, clock=clock, sleep=clock.sleep)
    start, refused = clock.t, 0
    calls = [("history.list", 1)] + [("messages.get", min(lim.batch_size(), messages - i))
                                     for i in range(0, messages, lim.batch_size())]
    for method, count in calls:
        bucket.take(lim.cost(method) * count)
        for _ in range(count):  # a batch's parts reach Gmail one after another
            refused += quota.admit(REP, method) is not None
            clock.t += 0.002
    return refused, clock.t - start


@pytest.mark.parametrize("model", ["2026", "legacy"])
def test_a_paced_backlog_of_120_messages_draws_no_refusal_and_runs_near_the_per_user_floor(model: str) -> None:
    clock = FakeClock()
    lim = limits_for(model)
    refused, seconds = backlog(lim, Quota(MODELS[model], clock=clock), clock, 120)
    floor = (120 * lim.cost("messages.get") + 2) / (lim.user_units_per_minute / 60) - 1  # one second of burst
    assert refused == 0
    assert floor <= seconds <= floor / 0.9 + 1.5  # the 10 % headroom, plus a batch's rounding


def test_the_old_pace_of_240_units_a_second_draws_refusals_under_the_2026_model() -> None:
    clock = FakeClock()
    old = Limits("2026", limits_for("2026").units, 6_000, 240.0)
    refused, _ = backlog(old, Quota(MODELS["2026"], clock=clock), clock, 120)
    assert refused > 0


def test_the_sync_prices_every_method_as_the_simulator_charges_it() -> None:
    from shared.gmail.pacing import LEGACY_UNITS, UNITS_2026

    assert dict(UNITS_2026) == dict(MODELS["2026"].units)
    assert dict(LEGACY_UNITS) == dict(MODELS["legacy"].units)
