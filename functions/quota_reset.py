"""quota_reset: the daily housekeeping tick (Cloud Scheduler → Pub/Sub `daily-tick`).

1. R17 counters: send slots are per day, so a new day starts at zero by
   itself; this deletes the slot documents of past days (and expired
   idempotency records) so the collections do not grow. Deleting only days
   *before today* makes a late or repeated run harmless.
2. Gmail watches end after 7 days: every connected mailbox whose watch
   expires within 48 hours gets `users.watch` again (a daily run therefore
   renews each watch about five days in, with a day's margin if a run fails).
   Mailboxes that need re-authentication are skipped and reported; their
   watch is renewed when the rep connects again.

Idempotent (a second run finds nothing to do) and bounded in time: pages of
documents, a thread pool for the Gmail calls, and a deadline below the
function timeout; whatever is left is picked up by the next run.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.core import log, paths
from shared.core.clients import firestore_client
from shared.core.config import get_config
from shared.gmail.credentials import NotConnected, ReauthRequired, open_gmail, reauth_guard
from shared.send import idempotency
from shared.send.limits import day_key, delete_days_before, today

RENEW_WITHIN = timedelta(hours=48)
PAGE_SIZE = 200
WORKERS = 8


@dataclass
class Report:
    slotsDeleted: int = 0
    idempotencyRecordsDeleted: int = 0
    watchesRenewed: list[str] = field(default_factory=list)
    skippedReauth: list[str] = field(default_factory=list)
    skippedNotConnected: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    deferred: int = 0  # due watches left for the next run because the time budget ran out
    complete: bool = True


def budget_seconds() -> float:
    """Stay inside the function timeout (default 60 s); the rest waits for the next tick."""
    return get_config().quota_reset_budget_seconds


def handle(cloud_event: Any) -> None:
    report = run()
    log.info("quota reset done", **report.__dict__)


def run(now: datetime | None = None) -> Report:
    deadline = time.monotonic() + budget_seconds()
    report = Report()
    report.slotsDeleted = delete_days_before(day_key(today(now)), deadline=deadline)
    report.idempotencyRecordsDeleted = idempotency.delete_expired(deadline=deadline)
    renew_watches(report, deadline, now or datetime.now(UTC))
    report.complete = time.monotonic() < deadline and report.deferred == 0
    return report


def _due_mailboxes(threshold: datetime, deadline: float) -> Any:
    """(id, data) of mailboxes whose watch ends before `threshold`, paged in expiration order.

    One range filter on a single field: no composite index needed; status is checked in code.
    """
    from google.cloud.firestore_v1.base_query import FieldFilter

    col = firestore_client().collection(paths.MAILBOXES)
    last = None
    while time.monotonic() < deadline:
        q = col.where(filter=FieldFilter("watchExpiration", "<", threshold)).order_by("watchExpiration")
        if last is not None:
            q = q.start_after(last)
        page = list(q.limit(PAGE_SIZE).stream())
        if not page:
            return
        yield from page
        last = page[-1]


def renew_one(mailbox_id: str, deadline: float) -> tuple[str, str]:
    """('renewed' | 'reauth' | 'not_connected' | 'failed' | 'deferred', mailbox_id)."""
    from shared.connect.connections import start_watch

    if time.monotonic() >= deadline:
        return "deferred", mailbox_id
    try:
        session = open_gmail(mailbox_id)
        with reauth_guard(session.mailbox_id, session.address):
            expiration = start_watch(session.service)
    except ReauthRequired:
        return "reauth", mailbox_id
    except NotConnected:
        return "not_connected", mailbox_id
    except Exception as exc:
        log.warning("watch renewal failed", mailboxId=mailbox_id, error=type(exc).__name__, detail=str(exc)[:200])
        return "failed", mailbox_id
    firestore_client().collection(paths.MAILBOXES).document(mailbox_id).update({"watchExpiration": expiration})
    return "renewed", mailbox_id


def renew_watches(report: Report, deadline: float, now: datetime) -> None:
    threshold = now + RENEW_WITHIN
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        futures = []
        for snap in _due_mailboxes(threshold, deadline):
            status = (snap.to_dict() or {}).get("status")
            if status == "reauth_required":
                report.skippedReauth.append(snap.id)
                continue
            if status != "connected":
                continue  # disconnected mailboxes have no watch to keep
            futures.append(pool.submit(renew_one, snap.id, deadline))
        for f in futures:
            outcome, mailbox_id = f.result()
            if outcome == "deferred":
                report.deferred += 1
                continue
            {"renewed": report.watchesRenewed, "reauth": report.skippedReauth,
             "not_connected": report.skippedNotConnected, "failed": report.failed}[outcome].append(mailbox_id)
    if report.skippedReauth:
        log.warning("watches not renewed: mailboxes need re-authentication", mailboxIds=report.skippedReauth)
