"""Paged deletion of expired documents, for quota_reset's daily clean-up.

Production also has TTL policies on these collections; this keeps the local
stack and a late TTL sweep honest, inside the caller's time budget.
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
