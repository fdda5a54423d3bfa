"""Specifications of the one Firestore meter as the send path uses it (issue 12's bar, issue 19's one meter).

The send runs inside `roundtrips.metering()` like the sync; its concurrent jobs
run in the meter's ContextPool (`shared.send.flow._together`). Nothing is noted
by hand: every RPC of the Firestore client is counted where it goes out.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from shared.core import roundtrips
from shared.send.flow import _together
from tests.unit.test_scale_units import FakeApi

ROOT = Path(__file__).resolve().parents[2]


def test_a_send_job_group_adds_its_longest_branch_to_the_rounds() -> None:
    api = roundtrips.CountingApi(FakeApi(0.01))

    def read_then_write() -> str:
        list(api.batch_get_documents(request={}))
        api.commit(request={"writes": [1]})
        return "rw"

    with roundtrips.metering() as meter:
        list(api.batch_get_documents(request={}))  # the first read: round 1
        done = _together({"commit": lambda: api.commit(request={"writes": [1, 2]}), "chain": read_then_write,
                          "cpu": lambda: "no firestore"})
        api.commit(request={"writes": [1]})  # the log: after the whole group
    assert done == {"commit": "ok", "chain": "rw", "cpu": "no firestore"}
    assert (meter.rounds, meter.calls, meter.writes) == (1 + 2 + 1, 5, 4)


def test_a_group_without_firestore_calls_adds_nothing() -> None:
    with roundtrips.metering() as meter:
        _together({"a": lambda: 1, "b": lambda: 2})
    assert (meter.rounds, meter.calls) == (0, 0)


def test_send_jobs_really_overlap() -> None:
    barrier = threading.Barrier(3, timeout=5)  # would time out if the jobs ran one after the other
    assert _together({str(i): lambda: barrier.wait() is not None for i in range(3)}) == {
        "0": True, "1": True, "2": True}


def test_send_jobs_raise_the_first_error_after_every_job_finished() -> None:
    finished: list[str] = []

    def slow() -> None:
        threading.Event().wait(0.05)
        finished.append("slow")

    def fails() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        _together({"fails": fails, "slow": slow})
    assert finished == ["slow"]


def test_each_send_meters_its_own_calls() -> None:
    api = roundtrips.CountingApi(FakeApi(0))
    counts: dict[str, int] = {}

    def request(name: str, n: int) -> None:
        with roundtrips.metering() as meter:
            for _ in range(n):
                api.commit(request={})
        counts[name] = meter.rounds

    threads = [threading.Thread(target=request, args=(f"t{i}", i)) for i in range(1, 4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counts == {"t1": 1, "t2": 2, "t3": 3}


@pytest.mark.parametrize("package", ["send", "sync"])
def test_no_thread_pool_of_the_send_or_the_sync_escapes_the_meter(package: str) -> None:
    # a plain pool's threads do not see the meter: their RPCs would be missing from the asserted counts
    plain = [p.name for p in sorted((ROOT / "shared" / package).glob("*.py"))
             if "ThreadPoolExecutor" in p.read_text() or "threading.Thread(" in p.read_text()]
    allowed: dict[str, Any] = {"send": ["warmup.py"], "sync": []}  # warm-up imports libraries, no Firestore
    assert plain == allowed[package]
