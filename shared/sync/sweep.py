"""The sweep: the safety net for lost notifications, reading only the mailboxes that are due.

Why: Gmail's notifications can be lost (and its watch can lapse), so every
connected mailbox is synced now and then even when nothing announced mail.
0.1 read every connected mailbox every minute; at 100,000 reps that is 144M
reads a day and bursts of 100,000 forced syncs (docs/SCALE.md). Now:

- Each mailbox carries `sweepDueAt`, written with the sync's own last write:
  `SYNC_SWEEP_SECONDS` (default 30 min) ahead when its watch is live,
  `SYNC_STALE_SECONDS` (default 3 min) when it is not, both times a random
  factor in [0.5, 1] so mailboxes connected together stop moving in step.
  A mailbox that syncs often rewrites it only when it would fall due within
  a quarter of its interval (no index write per pass).
- Cloud Scheduler publishes `{"sweep": true}` every minute; that fans out one
  message per shard (`sweepShard`, SYNC_SWEEP_SHARDS, a hash of the mailbox
  id); a shard's sweep is one indexed query (status, sweepShard, sweepDueAt
  <= now), so it reads the due mailboxes and nothing else, and the shard
  prefix spreads the index writes of this near-now field over many key ranges.
- The due mailboxes are claimed (their `sweepDueAt` moved one stale interval
  ahead, one batch write) before their forced syncs are published, so a
  queue that lags a minute does not get the same mailboxes again; a forced
  sync carries its request time and is dropped if a pass started after it.
- A shard with more due mailboxes than one page publishes its own
  continuation instead of looping past its deadline.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.core import log
from shared.core.clients import firestore_client
from shared.core.config import Config, get_config
from shared.core.times import aware
from shared.crm import paths
from shared.sync.requests import request_sweeps, request_sync

PAGE_SIZE = 400  # due mailboxes per query and per claim batch (Firestore allows 500 writes per batch)
JITTER_LOW = 0.5  # a due time is interval x U(JITTER_LOW, 1): never later than the interval


def interval_seconds(watch_live: bool, cfg: Config | None = None) -> int:
    cfg = cfg or get_config()
    return cfg.sync_sweep_seconds if watch_live else cfg.sync_stale_seconds


def next_due(now: datetime, watch_live: bool, cfg: Config | None = None,
             rng: random.Random | None = None) -> datetime:
    factor = (rng or random).uniform(JITTER_LOW, 1.0)
    return now + timedelta(seconds=interval_seconds(watch_live, cfg) * factor)


def due_fields(mailbox_id: str, data: dict[str, Any], now: datetime, watch_live: bool,
               cfg: Config | None = None) -> dict[str, Any]:
    """`sweepDueAt`/`sweepShard` to write with a finished pass, or {} when the stored ones still do.

    Rewritten only when the stored due time falls within a quarter interval of now
    (or is later than a whole interval away, e.g. after the watch lapsed), so a busy
    mailbox does not write this indexed field on every pass.
    """
    cfg = cfg or get_config()
    shard = paths.sweep_shard(mailbox_id, cfg.sync_sweep_shards)
    interval = interval_seconds(watch_live, cfg)
    due = aware(data.get("sweepDueAt"))
    fresh = due is not None and now + timedelta(seconds=interval / 4) < due <= now + timedelta(seconds=interval)
    if fresh and data.get("sweepShard") == shard:
        return {}
    return {"sweepShard": shard, "sweepDueAt": next_due(now, watch_live, cfg)}


@dataclass
class ShardReport:
    shard: int
    due: int = 0
    published: int = 0
    continued: bool = False
    skipped: list[str] = field(default_factory=list)


def fan_out() -> int:
    """The scheduler's tick: one sweep message per shard."""
    return request_sweeps(range(get_config().sync_sweep_shards))


def due_query(shard: int, now: datetime) -> Any:
    """Connected mailboxes of one shard whose sweep is due (index: status, sweepShard, sweepDueAt)."""
    from google.cloud.firestore_v1.base_query import FieldFilter  # lazy: Firestore library (cold start)

    return (firestore_client().collection(paths.MAILBOXES)
            .where(filter=FieldFilter("status", "==", "connected"))
            .where(filter=FieldFilter("sweepShard", "==", shard))
            .where(filter=FieldFilter("sweepDueAt", "<=", now))
            .order_by("sweepDueAt").limit(PAGE_SIZE).select(["address"]))


def sweep_shard(shard: int, now: datetime | None = None) -> ShardReport:
    """Claim and force-sync the due mailboxes of one shard (one page; the rest continues)."""
    cfg = get_config()
    now = now or datetime.now(UTC)
    report = ShardReport(shard=shard)
    snaps = list(due_query(shard, now).stream())
    report.due = len(snaps)
    if not snaps:
        return report
    batch = firestore_client().batch()
    addresses = []
    for s in snaps:
        address = str((s.to_dict() or {}).get("address") or "")
        if not address:
            report.skipped.append(s.id)
        else:
            addresses.append(address)
        # claimed: if the forced sync is lost, the mailbox is due again one stale interval later
        batch.update(s.reference, {"sweepDueAt": next_due(now, False, cfg)})
    batch.commit()
    report.published = request_sync(addresses, reason="sweep")
    if len(snaps) >= PAGE_SIZE:
        report.continued = request_sweeps([shard]) > 0
    if report.skipped:
        log.warning("swept mailboxes without an address", mailboxIds=report.skipped)
    return report
