"""Pure parts of the scale work (issue 11): message kinds, the token bucket, the deadline, sweep due
times and shards, forward-only cursors, renewal windows and the round-trip meter; and the arithmetic of
docs/SCALE.md's model (issue 22: scripts/scale_model.py)."""

from __future__ import annotations

import base64
import contextvars
import importlib.util
import json
import math
import random
import sys
import threading
import time
import types
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.core import roundtrips
from shared.core.config import Config
from shared.crm import paths
from shared.gmail.pacing import TokenBucket
from shared.sync import renewal, sweep
from shared.sync.deadline import Deadline
from shared.sync.lease import cursor_fields
from shared.sync.messages import Malformed, PushMessage, decode, force_data, renew_data, sweep_data

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CFG = Config(project_id="p", sync_sweep_seconds=1800, sync_stale_seconds=180, sync_sweep_shards=16)


def event(body: Any) -> Any:
    data = base64.b64encode(json.dumps(body).encode() if not isinstance(body, bytes) else body).decode()
    return types.SimpleNamespace(data={"message": {"data": data}})


# ---------------------------------------------------------------- message kinds


def test_a_forced_sync_carries_its_request_time_and_reason() -> None:
    msg = decode(event(json.loads(force_data("Rep@Gmail.test", 1_700_000_000_123, "sweep"))))
    assert msg == PushMessage("rep@gmail.test", None, True, requested_at_ms=1_700_000_000_123, reason="sweep")


def test_a_renewal_is_a_forced_sync_that_says_so() -> None:
    msg = decode(event(json.loads(renew_data("rep@gmail.test", 5))))
    assert msg.force and msg.renew and msg.requested_at_ms == 5 and msg.reason == "renew"


def test_the_sweep_tick_and_a_shard_sweep() -> None:
    assert decode(event(json.loads(sweep_data()))) == PushMessage(sweep=True)
    assert decode(event(json.loads(sweep_data(7)))) == PushMessage(sweep=True, shard=7)


@pytest.mark.parametrize("body", [
    {"sweep": True, "shard": -1},
    {"sweep": True, "shard": "x"},
    {"emailAddress": "rep@gmail.test", "force": True, "requestedAt": True},
    {"emailAddress": "rep@gmail.test", "force": True, "requestedAt": "soon"},
    {"emailAddress": "rep@gmail.test", "renew": "yes"},
])
def test_malformed_control_messages_are_rejected_for_acknowledgement(body: Any) -> None:
    with pytest.raises(Malformed):
        decode(event(body))


def test_an_unknown_reason_is_dropped_not_trusted() -> None:
    assert decode(event({"emailAddress": "r@g.test", "force": True, "reason": "<script>"})).reason is None


# ---------------------------------------------------------------- token bucket


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s


def test_the_token_bucket_lets_one_second_of_units_through_at_once() -> None:
    clock = FakeClock()
    bucket = TokenBucket(200, clock=clock, sleep=clock.sleep)
    assert bucket.take(100) == 0 and bucket.take(100) == 0
    assert bucket.take(2) > 0  # empty now: the next call waits


def test_the_token_bucket_keeps_the_average_rate_under_its_limit() -> None:
    clock = FakeClock()
    bucket = TokenBucket(200, clock=clock, sleep=clock.sleep)
    spent = 0
    for _ in range(40):  # batches of 50 messages.get: 250 units, more than the bucket holds
        bucket.take(250)
        spent += 250
    assert spent / clock.t <= 200 * 1.01 + 200 / clock.t  # one bucket of burst, then the rate


def test_a_call_larger_than_the_bucket_waits_for_a_full_bucket_then_goes() -> None:
    clock = FakeClock()
    bucket = TokenBucket(200, clock=clock, sleep=clock.sleep)
    bucket.take(200)
    waited = bucket.take(250)
    assert waited == pytest.approx(1.0)  # a full bucket (200) after one second, then into debt
    assert bucket.take(1) == pytest.approx(0.255, abs=0.01)  # the debt of 50 (+1) is waited out


# ---------------------------------------------------------------- deadline


def test_one_deadline_gives_each_part_what_is_left() -> None:
    d = Deadline(10, started=time.monotonic() - 8)
    assert 1.5 < d.remaining() <= 2
    assert d.budget(20) == pytest.approx(d.remaining(), abs=0.01)
    assert d.budget(1) == 1
    assert not d.passed()
    assert Deadline(0).passed()


# ---------------------------------------------------------------- sweep due times and shards


def test_a_mailbox_with_a_live_watch_is_swept_every_15_to_30_minutes() -> None:
    rng = random.Random(1)
    dues = [sweep.next_due(NOW, True, CFG, rng) for _ in range(200)]
    assert all(NOW + timedelta(minutes=15) <= d <= NOW + timedelta(minutes=30) for d in dues)


def test_a_mailbox_without_a_live_watch_is_swept_more_often() -> None:
    rng = random.Random(2)
    dues = [sweep.next_due(NOW, False, CFG, rng) for _ in range(200)]
    assert all(NOW + timedelta(seconds=90) <= d <= NOW + timedelta(seconds=180) for d in dues)


def test_due_times_are_jittered_so_mailboxes_stop_moving_in_step() -> None:
    rng = random.Random(3)
    dues = sorted(sweep.next_due(NOW, True, CFG, rng) for _ in range(100))
    spread = (dues[-1] - dues[0]).total_seconds()
    assert spread > 600  # 100 mailboxes synced together fall due over more than ten minutes
    assert len(set(dues)) == 100


def test_a_busy_mailbox_does_not_rewrite_its_due_time_on_every_pass() -> None:
    mid = paths.mailbox_id("rep@gmail.test")
    shard = paths.sweep_shard(mid, 16)
    fresh = {"sweepShard": shard, "sweepDueAt": NOW + timedelta(minutes=20)}
    assert sweep.due_fields(mid, fresh, NOW, True, CFG) == {}
    soon = {"sweepShard": shard, "sweepDueAt": NOW + timedelta(minutes=5)}  # within a quarter interval
    assert set(sweep.due_fields(mid, soon, NOW, True, CFG)) == {"sweepShard", "sweepDueAt"}
    # the watch lapsed: a due time half an hour away is too late for the short interval
    assert sweep.due_fields(mid, fresh, NOW, False, CFG)["sweepDueAt"] <= NOW + timedelta(seconds=180)
    assert sweep.due_fields(mid, {}, NOW, True, CFG)["sweepShard"] == shard


def test_shards_are_stable_and_spread() -> None:
    ids = [paths.mailbox_id(f"rep{i}@gmail.test") for i in range(1600)]
    counts = [0] * 16
    for mid in ids:
        s = paths.sweep_shard(mid, 16)
        assert s == paths.sweep_shard(mid, 16) and 0 <= s < 16
        counts[s] += 1
    assert min(counts) > 60 and max(counts) < 140  # about 100 each


# ---------------------------------------------------------------- cursors and renewal windows


def test_the_cursor_only_moves_forward_unless_recovery_sets_it() -> None:
    data = {"historyId": "500", "lastSyncedInternalDate": 1000}
    assert cursor_fields(data, 400, 900) == {}
    assert cursor_fields(data, 600, 1100) == {"historyId": "600", "lastSyncedInternalDate": 1100}
    assert cursor_fields(data, 400, None, force_set=True) == {"historyId": "400"}


def test_a_watch_is_due_for_renewal_within_48_hours_and_live_until_it_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(renewal, "get_config", lambda: CFG)
    assert renewal.renewal_due({"watchExpiration": NOW + timedelta(hours=47)}, NOW)
    assert not renewal.renewal_due({"watchExpiration": NOW + timedelta(hours=49)}, NOW)
    assert renewal.renewal_due({}, NOW)  # no watch at all
    assert renewal.watch_live({"watchExpiration": NOW + timedelta(seconds=1)}, NOW)
    assert not renewal.watch_live({"watchExpiration": NOW}, NOW)


# ---------------------------------------------------------------- the round-trip meter


class FakeApi:
    """Stands in for the GAPIC client: unary commits and a streamed batch get."""

    def __init__(self, delay: float = 0.05, together: threading.Barrier | None = None) -> None:
        self.delay = delay
        self.together = together  # calls that must all have started before any returns
        self.started = threading.Event()

    def commit(self, request: dict[str, Any]) -> str:
        self.started.set()
        if self.together is not None and request.get("together"):
            self.together.wait(timeout=10)
        time.sleep(self.delay)
        return "ok"

    def batch_get_documents(self, request: dict[str, Any]) -> Any:
        time.sleep(self.delay)
        return iter([types.SimpleNamespace(found=1), types.SimpleNamespace(missing="x")])


def test_calls_one_after_the_other_are_rounds_and_overlapping_calls_are_one() -> None:
    api = roundtrips.CountingApi(FakeApi(together=threading.Barrier(3)))
    with roundtrips.metering() as meter:
        list(api.batch_get_documents(request={}))
        with roundtrips.ContextPool(max_workers=3) as pool:  # three at once: one round
            for f in [pool.submit(api.commit, request={"writes": [1, 2], "together": True}) for _ in range(3)]:
                f.result()
        roundtrips.mark("message_written")
        api.commit(request={"writes": [1]})
    assert meter.summary() == {"rounds": 3, "calls": 5, "reads": 2, "writes": 7, "roundsTo_message_written": 2}


def test_a_chain_beside_a_long_call_still_counts_its_length() -> None:
    slow_api = FakeApi(0.5)
    slow, fast = roundtrips.CountingApi(slow_api), roundtrips.CountingApi(FakeApi(0.01))
    with roundtrips.metering() as meter:
        t = threading.Thread(target=contextvars.copy_context().run, args=(slow.commit,), kwargs={"request": {}})
        t.start()
        assert slow_api.started.wait(10)
        fast.commit(request={})
        fast.commit(request={})  # started after the first fast one finished
        t.join()
    assert meter.rounds == 2 and meter.calls == 3


def test_a_task_that_starts_late_counts_from_when_it_was_submitted() -> None:
    # the CI failure: a read submitted beside the lease write, started after that write had finished
    # (its worker was busy), counted one round more than the code's chain
    api = roundtrips.CountingApi(FakeApi(0.01))
    with roundtrips.metering() as meter:
        list(api.batch_get_documents(request={}))  # round 1
        with roundtrips.ContextPool(max_workers=1) as pool:
            pool.submit(time.sleep, 0.2)  # the only worker is busy
            late = pool.submit(lambda: list(api.batch_get_documents(request={})))
            api.commit(request={})  # round 2, finished before the read starts
            late.result()
        api.commit(request={})  # after both: round 3
    assert meter.trace == [("batch_get_documents", 1), ("commit", 2), ("batch_get_documents", 2), ("commit", 3)]
    assert meter.rounds == 3


def test_a_task_waiting_on_another_tasks_result_counts_after_it() -> None:
    api = roundtrips.CountingApi(FakeApi(0.01))
    with roundtrips.metering() as meter:
        with roundtrips.ContextPool(max_workers=2) as pool:
            first = pool.submit(lambda: list(api.batch_get_documents(request={})))  # round 1
            second = pool.submit(lambda: (first.result(), api.commit(request={})))  # round 2
            api.commit(request={})  # beside the first: round 1
            second.result()
        roundtrips.mark("message_written")
    assert meter.summary()["rounds"] == 2 and meter.marks == {"message_written": 2}


def test_parallel_branches_count_for_the_caller_after_they_join() -> None:
    api = roundtrips.CountingApi(FakeApi(0.01))
    with roundtrips.metering() as meter:
        with roundtrips.ContextPool(max_workers=2) as pool:
            branches = [pool.submit(api.commit, request={}),
                        pool.submit(lambda: list(api.batch_get_documents(request={})))]
        for branch in branches:
            branch.result()
        api.commit(request={})
    assert meter.rounds == 2 and meter.calls == 3


def test_a_stream_of_an_earlier_invocation_closed_late_does_not_deepen_the_current_one() -> None:
    # an unfinished stream left in a reference cycle is closed whenever the collector runs: maybe in the
    # middle of another invocation, whose count it must not touch
    api = roundtrips.CountingApi(FakeApi(0))
    with roundtrips.metering():
        api.commit(request={})
        left = api.batch_get_documents(request={})
        next(left)  # depth 2, never finished
    with roundtrips.metering() as meter:
        api.commit(request={})
        left.close()
        api.commit(request={})
    assert meter.rounds == 2 and [d for _, d in meter.trace] == [1, 2]


def test_a_further_pass_counts_its_first_message_written_from_its_own_start() -> None:
    # SPEC §5 bounds a pass; a second pass of the same invocation (mail arrived during the first) is not
    # charged the first pass's rounds (CI's soak saw 9 for a message written in a second pass)
    api = roundtrips.CountingApi(FakeApi(0))
    with roundtrips.metering() as meter:
        for _ in range(5):
            api.commit(request={})  # the first pass wrote nothing
        roundtrips.pass_began()
        api.commit(request={})
        roundtrips.mark("message_written")
    assert meter.rounds == 6 and meter.marks == {"message_written": 1}


def test_a_metered_pool_cancels_and_waits_as_a_plain_pool_does() -> None:
    import concurrent.futures

    with roundtrips.metering(), roundtrips.ContextPool(max_workers=1) as pool:
        running = pool.submit(time.sleep, 0.2)
        pending = pool.submit(time.sleep, 0)
        assert pending.cancel() and pending.cancelled()  # not started: it never runs
        assert not running.cancel()  # started: it runs to its end
        done, _ = concurrent.futures.wait([running, pending])
        assert done == {running, pending} and running.result() is None


def test_nothing_is_counted_without_a_meter() -> None:
    api = roundtrips.CountingApi(FakeApi(0))
    assert api.commit(request={}) == "ok"
    assert roundtrips.current() is None


# ---------------------------------------------------------------- docs/SCALE.md's model (scripts/scale_model.py)

ROOT = Path(__file__).resolve().parents[2]


def _scale_model() -> Any:
    spec = importlib.util.spec_from_file_location("scale_model", ROOT / "scripts" / "scale_model.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["scale_model"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


sm = _scale_model()
M26, LEGACY = sm.MODELS["2026"], sm.MODELS["legacy"]
MIX = sm.RepDay()


def test_the_2026_model_prices_a_get_at_20_units_and_the_legacy_one_at_5() -> None:
    assert (M26.units["messages.get"], LEGACY.units["messages.get"]) == (20, 5)
    assert (M26.user_units_per_minute, LEGACY.user_units_per_minute) == (6_000, 15_000)
    assert M26.daily_threshold == 80_000_000 and LEGACY.daily_threshold is None
    assert M26.units["history.list"] == LEGACY.units["history.list"] == 2  # unchanged methods keep their price


def test_the_issues_mix_costs_about_2100_units_naive_under_2026() -> None:
    # 80 gets x 20 + (200 notifications + 48 sweeps + 0.2 renewals) x 2 + 0.2 watches x 100
    assert sm.units(sm.sync_calls(MIX, "naive"), M26) == pytest.approx(1600 + 496.4 + 20)
    assert sm.units(sm.sync_calls(MIX, "naive"), LEGACY) == pytest.approx(400 + 496.4 + 20)


def test_category_aware_fetching_costs_no_get_for_the_skipped_categories() -> None:
    naive = sm.units(sm.sync_calls(MIX, "naive"), M26)
    aware = sm.units(sm.sync_calls(MIX, "category-aware"), M26)
    assert naive - aware == pytest.approx(MIX.categories * 20)


def test_a_watch_label_filter_also_saves_the_skipped_categories_passes() -> None:
    aware = sm.units(sm.sync_calls(MIX, "category-aware"), M26)
    filtered = sm.units(sm.sync_calls(MIX, "category-aware + watch filter"), M26)
    assert aware - filtered == pytest.approx(MIX.categories * 2)


def test_reps_per_project_are_the_daily_threshold_over_the_units_per_rep_day() -> None:
    assert sm.reps_under_threshold(1_500, M26) == 53_333  # SPEC §5: "over 53,000 reps per project"
    assert sm.reps_under_threshold(1_500, LEGACY) is None


def test_crm_sends_count_against_the_same_daily_threshold() -> None:
    inp = sm.Inputs({}, measured_units=1_500)
    assert sm.gmail_units_per_rep_day(inp, M26) - 1_500 == pytest.approx(sm.units(sm.other_calls(MIX), M26))
    assert sm.units([sm.Call("sends", "messages.send", MIX.crm_sends)], M26) == MIX.crm_sends * 100


def test_a_measured_figure_replaces_the_modelled_one_under_its_own_model_only() -> None:
    inp = sm.Inputs({}, measured_units=1_234, measured_model="2026")
    assert sm.sync_units_per_rep_day(inp, M26) == 1_234
    assert sm.sync_units_per_rep_day(inp, LEGACY) == sm.units(sm.sync_calls(MIX), LEGACY)


def test_a_backlog_is_paced_at_90_percent_of_the_per_user_limit() -> None:
    assert sm.pace(M26) == pytest.approx(90)
    # 120 gets and two history pages: (2,400 + 4) units at 90 a second; Gmail's floor is 100 a second
    assert sm.backlog_seconds(120, M26) == pytest.approx(2404 / 90)
    assert sm.backlog_seconds(120, M26, headroom=1.0) == pytest.approx(24.04)
    assert sm.mailboxes_at_full_pace(M26, headroom=1.0) == 200  # 1,200,000 / 6,000


def test_cloud_run_keeps_instances_at_60_percent_of_their_concurrency() -> None:
    assert sm.instances_needed(144, 4) == 60  # 2.4 requests an instance
    assert sm.instances_needed(0, 4) == 0
    assert sm.billed_instance_seconds(1, 0.5, 4) == pytest.approx(0.5 / 2.4)


def test_max_instances_serve_the_busiest_hour_with_a_margin() -> None:
    assert sm.max_instances_for(431, 4) == 230  # 180 instances x 1.25, rounded up to ten
    assert sm.in_flight(86_400, 0.5) == pytest.approx(0.5)  # one a second, half a second each
    assert sm.in_flight(86_400, 0.5, busiest_hour=3) == pytest.approx(1.5)


def test_pubsub_bills_publish_and_every_delivery_at_1000_bytes_at_least() -> None:
    assert sm.pubsub_bytes(10, 10) == 20 * 1000
    assert sm.pubsub_bytes(1, 2, message_bytes=4000) == 3 * 4000
    day = sm.pubsub_per_rep_day(MIX, nack_share=0.5)
    assert day["deliveries"] - sm.pubsub_per_rep_day(MIX)["deliveries"] == pytest.approx(
        0.5 * (MIX.notifications + MIX.sweeps + MIX.renewals))


def test_one_instance_reads_an_accounts_users_once_per_cache_window() -> None:
    d = sm.Deployment()
    assert sm.users_cache_reads_per_rep_day(MIX, d, 1) == pytest.approx(86_400 / d.users_cache_seconds)


def test_the_users_cache_goes_cold_on_every_instance_an_accounts_passes_reach() -> None:
    assert sm.distinct_instances(1, 5) == pytest.approx(1)
    assert sm.distinct_instances(1_000, 1) == pytest.approx(1)
    assert sm.distinct_instances(60, 1e6) == pytest.approx(60)  # every instance, never more
    d = sm.Deployment()
    many = sm.users_cache_reads_per_rep_day(MIX, d, 60)
    assert 10 * sm.users_cache_reads_per_rep_day(MIX, d, 1) < many
    longer = sm.Deployment(users_cache_seconds=3600)
    assert sm.users_cache_reads_per_rep_day(MIX, longer, 60) < many / 2


def test_the_weekly_contact_index_check_reads_each_contact_and_its_key() -> None:
    d = sm.Deployment(contacts_per_rep=700, contact_rescan_days=7)
    assert sm.contact_rescan_reads_per_rep_day(d) == pytest.approx(200)


def test_cloud_storage_keeps_two_bodies_and_every_attachment_of_each_logged_message() -> None:
    s = sm.StorageProfile(body_bytes=20_000, body_objects=2, attachments_per_message=0.5, attachment_bytes=100_000,
                          reads_per_message=1)
    day = sm.storage_per_rep_day(MIX, s)
    assert MIX.logged == 55  # contacts 25 + from Gmail 10 + CRM sends 20
    assert day == {"bytes": 55 * 70_000, "class_a": 55 * 2.5, "class_b": 55}


def test_soak_units_are_turned_back_into_calls_under_the_model_that_charged_them() -> None:
    soak = {"gmail_units_by_method": {"messages.get": 50, "history.list": 8, "watch": 200}}
    assert sm.soak_calls(soak) == {"messages.get": 10, "history.list": 4, "watch": 2}  # no model recorded: legacy
    assert sm.soak_calls({**soak, "quota_model": "2026"})["messages.get"] == pytest.approx(2.5)
    assert sm.soak_calls({**soak, "gmail_calls_by_method": {"messages.get": 3}}) == {"messages.get": 3}
    assert sm.units_of_calls({"messages.get": 10, "history.list": 4}, M26) == 208


KEPT_SOAK = json.loads((ROOT / "docs" / "SCALE.soak.json").read_text())


AS_IN_0_2 = sm.Deployment(gmail_push_max_instances=30, gmail_push_concurrency=4)  # deploy.sh before issue 22


def test_the_first_limit_as_deployed_is_gmail_pushs_instance_cap() -> None:
    inp = sm.Inputs(KEPT_SOAK, deployment=AS_IN_0_2)
    reached = [lim.reps_at_limit() for lim in sm.limits(inp)]
    assert reached == sorted(reached)
    first = sm.first_limit(inp, 100_000)
    assert first is not None and first.short == "gmail_push's instance cap"
    average = next(lim for lim in sm.limits(inp) if lim.name.startswith("the same cap at the day's average"))
    assert average.reps_at_limit() < 100_000  # passed at the daily average already (issue 22)
    assert sm.first_limit(inp, 1_000) is None


def test_with_the_cap_sized_the_next_limit_at_100000_reps_is_gmails_daily_threshold() -> None:
    inp = sm.Inputs(KEPT_SOAK, deployment=AS_IN_0_2)
    nxt = sm.first_limit(inp, 100_000, sized=True)
    assert nxt is not None and not nxt.refuses and "threshold" in nxt.short
    assert nxt.reps_at_limit() == pytest.approx(80_000_000 / sm.gmail_units_per_rep_day(inp, M26))
    hard = [lim for lim in sm.passed_limits(inp, 1_000_000, sized=True) if lim.refuses]
    assert hard and hard[0].short.startswith("Gmail's per-project limit a minute")


def test_the_users_cache_and_the_contact_check_are_added_to_the_soaks_reads() -> None:
    inp = sm.Inputs(KEPT_SOAK)
    one, many = sm.firestore_per_rep_day(inp, 1), sm.firestore_per_rep_day(inp, 60)
    assert many["measured reads"] == one["measured reads"]
    assert many["reads"] - one["reads"] == pytest.approx(many["users cache cold"] - one["users cache cold"])
    assert math.isclose(one["contact-index check"], sm.contact_rescan_reads_per_rep_day(sm.Deployment()))


def test_the_page_says_under_which_model_each_figure_was_measured() -> None:
    page = sm.render(sm.Inputs(KEPT_SOAK, measured_units=1_400, measured_model="2026"))
    assert "measured by scripts/bench_quota.py under the 2026 model" in page
    assert "which ran under the **legacy** quota model" in page
    assert "## What the soak measured (legacy model)" in page
    assert "**1,400**" in page


def test_the_soaks_cost_page_prices_its_gmail_calls_and_storage_with_the_model() -> None:
    page = sm.soak_cost_page(KEPT_SOAK)
    calls = sm.soak_calls(KEPT_SOAK)
    assert page[0].startswith("cost: this run (legacy model): Gmail ")
    assert f"{sm.units_of_calls(calls, M26):,.0f} units under 2026" in page[0]
    assert f"{sm.units_of_calls(calls, LEGACY):,.0f} under legacy" in page[0]
    assert page[2:] == sm.cost_page(sm.Inputs(KEPT_SOAK))


def test_the_model_reads_gmail_pushs_cap_and_the_delivery_attempts_from_deploy_sh(tmp_path: Path) -> None:
    found = sm.deployed()  # the real deploy.sh: every figure found, and the model's defaults are them
    assert set(found) == {"memory_gib", "gmail_push_max_instances", "gmail_push_concurrency", "max_delivery_attempts"}
    assert sm.Deployment().gmail_push_max_instances == found["gmail_push_max_instances"]
    script = tmp_path / "deploy.sh"
    script.write_text('MAX_DELIVERY_ATTEMPTS="${MAX_DELIVERY_ATTEMPTS:-7}"\n'
                      '  "gmail_push     internal GMAIL_WATCH_TOPIC 1024Mi/300s/230/8  watch,control  -  -"\n')
    assert sm.deployed(script) == {"memory_gib": 1.0, "gmail_push_max_instances": 230, "gmail_push_concurrency": 8,
                                   "max_delivery_attempts": 7}
    assert sm.deployed(tmp_path / "missing.sh") == {}


def test_a_cap_sized_for_100000_reps_is_no_longer_the_first_limit_on_the_page() -> None:
    sized = sm.Deployment(gmail_push_max_instances=230, gmail_push_concurrency=4)
    inp = sm.Inputs(KEPT_SOAK, deployment=sized)
    first = sm.first_limit(inp, 100_000)
    assert first is not None and first.short != "gmail_push's instance cap"
    assert "gmail_push's `--max-instances` 230 covers 100,000 reps" in sm.render(inp)
