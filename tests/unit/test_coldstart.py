"""shared.core.coldstart: an instance's first send runs without the cyclic garbage collector (issue 12)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from shared.core import coldstart


@pytest.fixture(autouse=True)
def fresh_instance() -> Iterator[None]:
    coldstart._done.clear()
    yield
    coldstart._done.clear()
    gc.unfreeze()
    gc.enable()


def test_the_first_request_runs_with_the_collector_paused() -> None:
    with coldstart.first_request("send_email"):
        assert not gc.isenabled()
    assert gc.isenabled()


def test_what_the_first_request_loaded_is_frozen_when_it_ends() -> None:
    with coldstart.first_request("send_email"):
        pass
    assert gc.get_freeze_count() > 0


def test_later_requests_leave_the_collector_alone() -> None:
    with coldstart.first_request("send_email"):
        pass
    with coldstart.first_request("send_email"):
        assert gc.isenabled()


def test_a_failing_first_request_still_enables_the_collector_again() -> None:
    with pytest.raises(RuntimeError), coldstart.first_request("send_email"):
        raise RuntimeError("refused")
    assert gc.isenabled()


def test_a_collector_someone_else_disabled_stays_disabled() -> None:
    gc.disable()
    with coldstart.first_request("send_email"):
        pass
    assert not gc.isenabled()
