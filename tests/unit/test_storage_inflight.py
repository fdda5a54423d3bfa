"""R32's memory bound: large messages take turns within one instance's byte budget."""

from __future__ import annotations

import threading

from shared.storage.inflight import FREE_BYTES, ByteBudget


def test_r32_large_messages_wait_until_the_budget_has_room():
    budget = ByteBudget(100 * FREE_BYTES)
    inside = threading.Event()
    release = threading.Event()
    entered: list[str] = []

    def first() -> None:
        with budget.hold(80 * FREE_BYTES):
            entered.append("first")
            inside.set()
            release.wait()

    def second() -> None:
        with budget.hold(80 * FREE_BYTES):
            entered.append("second")

    t1 = threading.Thread(target=first)
    t1.start()
    inside.wait()
    t2 = threading.Thread(target=second)
    t2.start()
    assert entered == ["first"] and budget.used == 80 * FREE_BYTES  # second is waiting, not inside
    release.set()
    t1.join()
    t2.join()
    assert entered == ["first", "second"] and budget.used == 0


def test_r32_small_messages_never_wait_and_a_huge_one_runs_alone():
    budget = ByteBudget(10 * FREE_BYTES)
    with budget.hold(10 * FREE_BYTES), budget.hold(FREE_BYTES):  # small: outside the budget
        assert budget.used == 10 * FREE_BYTES
    with budget.hold(1000 * FREE_BYTES):  # larger than the budget: takes all of it, does not deadlock
        assert budget.used == 10 * FREE_BYTES
    assert budget.used == 0
