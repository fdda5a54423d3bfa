"""The daily tick (Cloud Scheduler → `daily-tick` → quota_reset): watch renewals fanned out.

Why this is small now: R17's counters need no reset (send slots count a
rolling 24 hours by themselves, R30) and the old slots and idempotency records
are removed by Firestore TTL policies (`expireAt`, firestore.indexes.json),
not by scans that grew with the number of reps. What is left is the watch
renewal fan-out (shared/sync/renewal.py): one indexed query over the
mailboxes whose watch is due and one message per mailbox. A run that reaches
its budget (QUOTA_RESET_BUDGET_SECONDS, below the function's timeout)
publishes its own continuation on the daily-tick topic, carrying the last
mailbox it handled, so the rest follows within seconds, not a day later. A
run with no budget at all starts nothing and continues nothing (it reports
that, at ERROR, for the alert).

The Firestore emulator has no TTL: in the local stack (EMULATE_TTL, on when
the Google simulator is configured) the tick deletes what the TTL policies
would, so the local collections behave like production's.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from shared.core import log
from shared.core.clients import publisher
from shared.core.config import get_config
from shared.crm import crm_sent
from shared.send import idempotency
from shared.send.limits import day_key, delete_days_before, delete_expired, today
from shared.sync import renewal
from shared.sync.messages import Malformed, event_body


@dataclass
class Report(renewal.FanOutReport):
    """The tick's report: its renewal fan-out's, and what it did in the emulated TTL's place."""

    ttlEmulated: bool = False
    slotsDeleted: int = 0
    idempotencyRecordsDeleted: int = 0
    crmSentMarksDeleted: int = 0
    notes: list[str] = field(default_factory=list)


def decode_after(cloud_event: Any) -> dict[str, Any] | None:
    """The continuation cursor of a tick message (`{"renewAfter": {"at": µs, "id"}}`), None for a fresh tick."""
    try:
        body = event_body(cloud_event)
    except Malformed:
        return None  # Cloud Scheduler's own body is not ours to judge: a fresh tick
    after = body.get("renewAfter") if isinstance(body, dict) else None
    if isinstance(after, dict) and isinstance(after.get("id"), str) and str(after.get("at", "")).isdigit():
        return {"at": int(after["at"]), "id": after["id"]}
    return None


def continuation_data(after: dict[str, Any]) -> bytes:
    return json.dumps({"dailyTick": True, "renewAfter": after}).encode("utf-8")


def _emulate_ttl(now: datetime | None, deadline: float, report: Report) -> None:
    report.ttlEmulated = True
    report.slotsDeleted = delete_days_before(day_key(today(now)), deadline=deadline)  # 0.2's day slots
    report.slotsDeleted += delete_expired(now, deadline=deadline)  # R30's window slots
    report.idempotencyRecordsDeleted = idempotency.delete_expired(deadline=deadline)
    report.crmSentMarksDeleted = crm_sent.delete_expired(now or datetime.now(UTC), deadline=deadline)


def run(now: datetime | None = None, after: dict[str, Any] | None = None) -> Report:
    """One tick (or a continuation of one): fan the due renewals out within the budget."""
    cfg = get_config()
    deadline = time.monotonic() + cfg.quota_reset_budget_seconds
    report = Report()
    if cfg.emulate_ttl and after is None and time.monotonic() < deadline:
        _emulate_ttl(now, deadline, report)
    renewal.fan_out(deadline, now or datetime.now(UTC), after, report)
    if not report.complete:
        if report.pages and report.renewAfter:  # progress made: the rest continues now, in a new invocation
            publisher().publish(cfg.topic_path(cfg.daily_tick_topic),
                                continuation_data(report.renewAfter)).result(timeout=30)
            report.continued = True
        else:
            report.notes.append("no budget to start the renewal fan-out; the next tick retries")
    return report


def log_report(report: Report, firestore: dict[str, Any] | None = None) -> None:
    fields = {**asdict(report), "invocation": "daily_tick", "firestore": firestore or {}}
    if not report.complete and not report.continued:
        log.error("daily tick made no progress", alert="renewal_fanout_stalled", **fields)
    else:
        log.info("daily tick done", **fields)
