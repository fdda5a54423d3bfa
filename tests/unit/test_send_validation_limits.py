"""R17, R30 window arithmetic: Gmail's rolling 24 hours, not a calendar day; when the limit resets."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.send.limits import Slot, candidate, is_free, reset_at

NOW = datetime(2026, 3, 2, 0, 5, tzinfo=UTC)


@dataclass
class Snap:
    """A slot document as Firestore returns it (only what the rules read)."""

    used: datetime | None
    exists: bool = True
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"usedAt": self.used, **self.data}


def slots(*used: datetime) -> dict[int, Any]:
    return {n: Snap(at) for n, at in enumerate(used)}


def test_r30_a_slot_used_less_than_24_hours_ago_still_counts() -> None:
    assert not is_free(Snap(NOW - timedelta(hours=23, minutes=59)), NOW)
    assert is_free(Snap(NOW - timedelta(hours=24)), NOW) and is_free(None, NOW)
    assert is_free(Snap(None, exists=False), NOW)


def test_r30_sends_at_23_30_still_count_after_midnight_utc() -> None:
    # 0.2's calendar day let 500 sends at 23:30 and 500 more at 00:05; the window counts both
    late = NOW - timedelta(minutes=35)
    assert not any(is_free(s, NOW) for s in slots(*[late] * 3).values())


def test_r30_reset_is_when_the_oldest_counted_send_leaves_the_window() -> None:
    first, second = NOW - timedelta(hours=20), NOW - timedelta(hours=2)
    assert reset_at(slots(first, second), NOW, 2) == first + timedelta(hours=24)


def test_r30_reset_ignores_sends_that_already_left_the_window() -> None:
    old, recent = NOW - timedelta(hours=30), NOW - timedelta(hours=1)
    assert reset_at(slots(old, recent, recent), NOW, 2) == recent + timedelta(hours=24)


def test_r30_a_pacific_reps_reset_is_not_a_midnight() -> None:
    first = datetime(2026, 3, 1, 18, 42, tzinfo=UTC)
    assert reset_at(slots(first), first + timedelta(hours=1), 1) == datetime(2026, 3, 2, 18, 42, tzinfo=UTC)


def test_slot_ids_are_per_mailbox_and_number() -> None:
    assert Slot("abc123", 42).doc_id == "abc123_w00042"


def test_the_candidate_slot_is_within_the_limit_and_none_when_the_limit_is_zero() -> None:
    picks = [candidate("m", limit=3, now=NOW) for _ in range(60)]
    assert {p.n for p in picks if p is not None} <= {0, 1, 2} and None not in picks
    assert candidate("m", limit=0) is None
