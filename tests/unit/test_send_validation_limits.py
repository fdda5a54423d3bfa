"""R17 day arithmetic: which day a send counts for and when the limit resets, per SEND_LIMIT_TIMEZONE."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from shared.core.config import get_config
from shared.send.limits import Slot, parse_slot_id, reset_at, today


@pytest.fixture
def tz(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "p")
    monkeypatch.setenv("SEND_LIMIT_TIMEZONE", "America/Los_Angeles")
    get_config.cache_clear()
    yield
    get_config.cache_clear()


def test_the_day_is_the_calendar_day_in_the_configured_timezone(tz: None) -> None:
    # 05:00 UTC on 2 March is still 1 March in Los Angeles.
    assert today(datetime(2026, 3, 2, 5, 0, tzinfo=UTC)).isoformat() == "2026-03-01"


def test_reset_is_the_next_local_midnight(tz: None) -> None:
    r = reset_at(datetime(2026, 3, 2, 5, 0, tzinfo=UTC))
    assert r == datetime(2026, 3, 2, 0, 0, tzinfo=ZoneInfo("America/Los_Angeles"))
    assert r.isoformat() == "2026-03-02T00:00:00-08:00"


def test_reset_across_a_daylight_saving_change(tz: None) -> None:
    # 8 March 2026 is the US spring-forward day: midnight 9 March is UTC-7.
    assert reset_at(datetime(2026, 3, 8, 12, 0, tzinfo=UTC)).isoformat() == "2026-03-09T00:00:00-07:00"


def test_slot_ids_round_trip() -> None:
    slot = Slot("abc123", "2026-03-01", 42)
    assert slot.doc_id == "abc123_2026-03-01_00042"
    assert parse_slot_id(slot.doc_id) == slot
    assert parse_slot_id("garbage") is None
