"""Gmail watches that never lapse: renewed inside syncs, and fanned out for quiet mailboxes.

Why: a Gmail watch ends after 7 days, and with it every notification. 0.1
renewed watches from one daily run with a 50 s budget, behind paged
deletions; past a few thousand reps renewals silently dropped to 0 and every
watch lapsed within a week (docs/SCALE.md). Now:

- Any sync of a mailbox whose watch ends within WATCH_RENEW_WITHIN_SECONDS
  (48 h) renews it on the way (one `users.watch`, 100 units, written with
  the pass's own last write). Quiet mailboxes are synced by the sweep at
  least every SYNC_SWEEP_SECONDS, so this alone renews nearly every watch.
- The daily tick (quota_reset) reads the connected mailboxes whose watch is
  due (one indexed query: status, watchExpiration) and publishes one renewal
  message per mailbox on the sync's control topic; Pub/Sub spreads them over
  gmail_push instances. A run that reaches its budget publishes its own
  continuation (the cursor is the last mailbox it handled), so the rest is
  renewed minutes later, not the next day. Mailboxes that need
  re-authentication are not read at all (status filter).
- A watch found already expired is a lapse: logged at ERROR with
  `alert="watch_lapsed"` (deploy.sh creates a log-based metric on it), kept
  on the mailbox and its users' `emailSync.watchLapsedAt` until renewed, and
  the mailbox is swept at the short interval meanwhile.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.core import log
from shared.core.clients import firestore_client
from shared.core.config import get_config
from shared.core.models import Link, Mailbox
from shared.core.times import aware
from shared.crm import paths
from shared.crm.paths import user_ref
from shared.gmail.credentials import GmailSession, is_invalid_grant
from shared.gmail.fetch import Pacer
from shared.gmail.pacing import cost
from shared.gmail.send_as import read_send_as
from shared.gmail.watch import start_watch
from shared.sync.requests import request_renewals
from shared.sync.watch_filter import read_excluded_labels

PAGE_SIZE = 300
_clock = time.monotonic  # the budget's clock (a test stops a run after its first page)


def watch_live(mb: Mailbox | dict[str, Any], now: datetime) -> bool:
    exp = aware(mb.get("watchExpiration") if isinstance(mb, dict) else mb.watchExpiration)
    return exp is not None and exp > now


def renewal_due(mb: Mailbox | dict[str, Any], now: datetime) -> bool:
    exp = aware(mb.get("watchExpiration") if isinstance(mb, dict) else mb.watchExpiration)
    return exp is None or exp < now + timedelta(seconds=get_config().watch_renew_within_seconds)


def renew(session: GmailSession, mb: Mailbox, now: datetime, pace: Pacer | None = None,
          exclude: frozenset[str] | None = None) -> dict[str, Any]:
    """Renew the watch of a mailbox we are syncing; returns the fields to write (`watchLapsedAt` only
    when a lapse starts or ends, so the users' status is written only then). `exclude`: the labels the
    watch leaves out (shared/sync/watch_filter.py), read here when the caller has not read them.

    A failure is logged and left to the next sync or the daily fan-out; it never
    fails the sync itself (the cursor, not the watch, is the truth).
    """
    exp = aware(mb.watchExpiration)
    lapsed = exp is not None and exp <= now
    if lapsed and mb.watchLapsedAt is None:
        log.error("gmail watch lapsed: notifications stopped until renewed", alert="watch_lapsed",
                  mailboxId=paths.mailbox_id(mb.address), expiredAt=exp)
    if pace is not None:
        pace(cost("watch"))
    try:
        labels = exclude if exclude is not None else read_excluded_labels(session.mailbox_id)
        expiration = start_watch(session.service, labels)
    except Exception as exc:
        if is_invalid_grant(exc):
            raise
        log.warning("watch renewal failed; the next sync or the daily tick retries", mailboxId=session.mailbox_id,
                    error=type(exc).__name__, lapsed=lapsed)
        return {"watchLapsedAt": now} if lapsed and mb.watchLapsedAt is None else {}
    log.info("watch renewed", mailboxId=session.mailbox_id, expiration=expiration, wasLapsed=lapsed)
    fields: dict[str, Any] = {"watchExpiration": expiration}
    if mb.watchLapsedAt is not None:
        fields["watchLapsedAt"] = None  # the lapse is over: clear it where it shows
    fields.update(refresh_aliases(session, mb, pace))
    return fields


def refresh_aliases(session: Any, mb: Mailbox, pace: Any = None) -> dict[str, Any]:
    """R28: the Gmail's send-as aliases read again with the watch (every few days; 1 unit); `{"aliases": …}`
    only when they changed, so the pass writes them to the mailbox and its users (control._mirror_aliases)."""

    if pace is not None:
        pace(1)
    aliases = read_send_as(session.service, mb.address)
    if aliases is None or aliases == sorted(mb.aliases or []):
        return {}
    return {"aliases": aliases}


def mirror_lapse(mailbox_id: str, links: list[Link], lapsed_at: datetime | None) -> None:
    """Show a lapse (or its end) on the linked users' emailSync, where the CRM reads status."""
    for ln in links:
        user_ref(ln.accountId, ln.userId).set({"emailSync": {"watchLapsedAt": lapsed_at}}, merge=True)


@dataclass
class FanOutReport:
    """What a renewal fan-out did; the daily tick's report is this one with the tick's own fields
    (shared/sync/daily.py), logged as it is spelled here."""

    renewalsRequested: int = 0
    pages: int = 0
    complete: bool = True
    continued: bool = False  # the daily tick published its continuation
    renewAfter: dict[str, Any] | None = None  # where a continuation starts: {"at": microseconds, "id": mailboxId}


def _micros(at: datetime | None) -> int:
    if at is None:
        return 0
    delta = at - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def due_query(threshold: datetime, after: dict[str, Any] | None) -> Any:
    """Connected mailboxes whose watch ends before `threshold`, in expiration order (index: status,
    watchExpiration); `after` resumes behind the last one a previous run handled."""
    from google.cloud.firestore_v1.base_query import FieldFilter  # lazy: Firestore library (cold start)

    col = firestore_client().collection(paths.MAILBOXES)
    q = (col.where(filter=FieldFilter("status", "==", "connected"))
         .where(filter=FieldFilter("watchExpiration", "<", threshold))
         .order_by("watchExpiration").order_by("__name__").select(["address", "watchExpiration"]))
    if after:
        at = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(after["at"]))
        q = q.start_after({"watchExpiration": at, "__name__": col.document(str(after["id"]))})
    return q.limit(PAGE_SIZE)


def fan_out(deadline: float, now: datetime | None = None, after: dict[str, Any] | None = None,
            report: FanOutReport | None = None) -> FanOutReport:
    """Publish a renewal for every connected mailbox whose watch is due, until `deadline` (monotonic);
    counted into `report` when the caller gives one (the daily tick's), else into a new one."""
    now = now or datetime.now(UTC)
    threshold = now + timedelta(seconds=get_config().watch_renew_within_seconds)
    report = report if report is not None else FanOutReport()
    report.renewAfter = after
    while True:
        if _clock() >= deadline:
            report.complete = False
            break
        snaps = list(due_query(threshold, report.renewAfter).stream())
        report.pages += 1
        if snaps:
            report.renewalsRequested += request_renewals(str((s.to_dict() or {}).get("address") or "") for s in snaps)
            last = snaps[-1]
            exp = aware((last.to_dict() or {}).get("watchExpiration"))
            after = {"at": _micros(exp), "id": last.id}
            if after == report.renewAfter:  # never loop on one page (a cursor that does not move)
                log.error("renewal fan-out cursor did not move", alert="renewal_fanout_stalled", after=after)
                report.complete = False
                return report
            report.renewAfter = after
        if len(snaps) < PAGE_SIZE:
            return report
    return report
