"""Paged deletion of expired documents: the TTL policies' work where there are none (the local stack).

Production removes old send slots and idempotency records by TTL policy; the
Firestore emulator has none, so the local stack's daily tick (EMULATE_TTL)
deletes them with this, inside the tick's time budget.
"""

from __future__ import annotations

import time
from typing import Any

from shared.core.clients import firestore_client


def delete_matching(query: Any, *, page_size: int = 400, deadline: float | None = None) -> int:
    """Delete every document the query matches, a page per batch, until none or `deadline` (monotonic)."""
    db = firestore_client()
    deleted = 0
    while deadline is None or time.monotonic() < deadline:
        snaps = list(query.select([]).limit(page_size).stream())
        if not snaps:
            break
        batch = db.batch()
        for s in snaps:
            batch.delete(s.reference)
        batch.commit()
        deleted += len(snaps)
    return deleted
