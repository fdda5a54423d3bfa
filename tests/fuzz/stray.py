"""Documents written by refused requests: every Firestore document before and after a request.

One kindless query over all descendants of the database root (`from:
[{allDescendants: true}]`, names only) lists every document with its update
time in a single round trip, so a request is judged by exactly what changed:
created, deleted or rewritten documents.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests

Snapshot = dict[str, str]  # document path -> updateTime

# The sync updates these in the background (lease, cursor, lastSyncAt and the users' status mirror) after
# a send or a resync that succeeded: an update there is not attributed to the request that happened to run.
BACKGROUND_UPDATES = ("sync_mailboxes/",)


# The Auto BCC rate limit counts every request let through, refused copies included (issue 23): its counter
# is the one document a refused request may write (shared/auto_bcc/rate_limit.py).
COUNTERS = ("sync_auto_bcc_rate/",)


def snapshot(stack: Any) -> Snapshot:
    base = f"http://{stack.firestore_host}/v1/projects/{stack.project_id}/databases/(default)/documents"
    query = {"structuredQuery": {"from": [{"allDescendants": True}],
                                 "select": {"fields": [{"fieldPath": "__name__"}]}}}
    resp = requests.post(f"{base}:runQuery", json=query, headers={"Authorization": "Bearer owner"}, timeout=30)
    resp.raise_for_status()
    prefix = f"projects/{stack.project_id}/databases/(default)/documents/"
    out: Snapshot = {}
    for row in resp.json():
        doc = row.get("document")
        if doc and not doc["name"].removeprefix(prefix).startswith(COUNTERS):
            out[doc["name"].removeprefix(prefix)] = doc["updateTime"]
    return out


@dataclass(frozen=True)
class Writes:
    created: tuple[str, ...]
    deleted: tuple[str, ...]
    updated: tuple[str, ...]

    @property
    def count(self) -> int:
        return len(self.created) + len(self.deleted) + len(self.updated)

    def describe(self) -> str:
        parts = [f"{what} {', '.join(paths[:3])}" for what, paths in
                 (("created", self.created), ("deleted", self.deleted), ("updated", self.updated)) if paths]
        return "; ".join(parts)


def diff(before: Snapshot, after: Snapshot) -> Writes:
    created = tuple(sorted(set(after) - set(before)))
    deleted = tuple(sorted(set(before) - set(after)))
    updated = tuple(sorted(p for p in set(before) & set(after) if before[p] != after[p]
                           and not p.startswith(BACKGROUND_UPDATES)))
    return Writes(created, deleted, updated)
