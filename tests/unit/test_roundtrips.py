"""Specifications of shared.core.roundtrips: how the send path's round trips are counted (issue 12)."""

from __future__ import annotations

import threading

import pytest

from shared.core import roundtrips


def test_each_noted_call_is_one_round_trip() -> None:
    with roundtrips.counting() as c:
        roundtrips.note("read")
        roundtrips.note("write")
    assert (c.count, c.stages) == (2, ["read", "write"])


def test_note_outside_counting_does_nothing() -> None:
    roundtrips.note("nobody counts this")  # must not raise
    with roundtrips.counting() as c:
        pass
    assert c.count == 0


def test_a_parallel_group_adds_its_longest_branch() -> None:
    def read_then_write() -> str:
        roundtrips.note("read")
        roundtrips.note("write")
        return "rw"

    def one_commit() -> str:
        roundtrips.note("commit")
        return "c"

    with roundtrips.counting() as c:
        roundtrips.note("first")
        results = roundtrips.parallel(one_commit, read_then_write, lambda: "no firestore")
    assert results == ["c", "rw", "no firestore"]
    assert c.count == 1 + 2
    assert c.stages == ["first", "commit | read, write"]


def test_a_group_without_firestore_calls_adds_nothing() -> None:
    with roundtrips.counting() as c:
        roundtrips.parallel(lambda: 1, lambda: 2)
    assert c.count == 0 and c.stages == []


def test_parallel_calls_really_overlap() -> None:
    barrier = threading.Barrier(3, timeout=5)  # would time out if the calls ran one after the other
    assert roundtrips.parallel(*(lambda: barrier.wait() is not None for _ in range(3))) == [True] * 3


def test_parallel_raises_the_first_error_after_every_call_finished() -> None:
    finished: list[str] = []

    def slow() -> None:
        threading.Event().wait(0.05)
        finished.append("slow")

    def fails() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        roundtrips.parallel(fails, slow)
    assert finished == ["slow"]


def test_each_thread_counts_its_own() -> None:
    counts: dict[str, int] = {}

    def request(name: str, n: int) -> None:
        with roundtrips.counting() as c:
            for _ in range(n):
                roundtrips.note(name)
        counts[name] = c.count

    threads = [threading.Thread(target=request, args=(f"t{i}", i)) for i in range(1, 4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counts == {"t1": 1, "t2": 2, "t3": 3}
