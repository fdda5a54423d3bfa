"""Timestamps as the project compares them: always timezone-aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def now() -> datetime:
    return datetime.now(UTC)


def aware(t: Any) -> datetime | None:
    """Firestore gives aware datetimes; tests and old documents may hold naive ones (taken as UTC)."""
    if not isinstance(t, datetime):
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)
