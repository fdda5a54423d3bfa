"""One message on either of the sync's topics → the mailbox's CRM conversations up to date.

This is `gmail_push`'s one operation (functions/gmail_push.py only decodes
and maps exceptions). Kinds (shared/sync/messages.py): Gmail's notification,
a forced sync (resync, reconnect, sweep, continuation), a watch renewal, a
sweep tick or one shard's sweep (shared/sync/sweep.py).

An invocation, within one deadline (shared/sync/deadline.py):

1. One read of the mailbox and its token (one round trip; a notification
   reads the mailbox's links beside it). Acknowledged at once when the
   mailbox is not connected, the notification is covered by the cursor, a
   forced sync was answered by a pass that started after it was asked for,
   or a renewal finds the watch renewed already.
2. A forced sync of an idle mailbox asks Gmail for one history page first:
   nothing new → one conditional write (cursor, last sync, next sweep, watch
   renewal if due) and done, no lease.
3. Otherwise the lease (shared/sync/lease.py), then passes
   (shared/sync/engine.py) until no message arrived meanwhile; each pass ends
   with one conditional write that moves the cursor, sets the next sweep time,
   renews the watch when due (shared/sync/renewal.py) and releases the lease.
4. Out of time (a long backlog, a lease that stays busy): a continuation is
   published on the control topic and the message acknowledged; the next
   invocation goes on from the cursor.

Returning acknowledges; raising makes Pub/Sub redeliver. Only transient
failures (Gmail past its retry budget, Firestore errors, lost write races)
raise. Every invocation logs one line "sync invocation" with its outcome and
its Firestore rounds, calls, reads and writes (shared/core/roundtrips.py).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shared.core import log, roundtrips
from shared.core.config import get_config
from shared.core.models import Link, Mailbox, as_int
from shared.core.roundtrips import ContextPool
from shared.core.times import aware
from shared.crm import paths
from shared.crm.connection import decide_mailbox
from shared.crm.mailboxes import MailboxRead, links_for_mailbox
from shared.crm.user_addresses import mirror_to_users
from shared.gmail.credentials import GmailSession, NotConnected, ReauthRequired, open_gmail, reauth_guard
from shared.gmail.fetch import GmailUnavailable, HistoryExpired, Pacer, iter_history
from shared.gmail.pacing import bucket_for
from shared.sync import lease, renewal, sweep
from shared.sync.deadline import Deadline
from shared.sync.engine import LinkedAccounts, SyncStats, linked_accounts, mirror_status, record_error, sync_pass
from shared.sync.lease import cursor_fields
from shared.sync.messages import PushMessage
from shared.sync.requests import request_sync
from shared.sync.watch_filter import excluded_labels


@dataclass
class Result:
    kind: str
    outcome: str = "failed"
    passes: int = 0
    fetched: int = 0
    stored: int = 0
    joined: int = 0  # messages another rep's mailbox (or the CRM, Auto BCC) logged first, joined (R25)
    skipped: int = 0
    recovered: bool = False
    renewed: bool = False
    heartbeats: int = 0  # lease renewals of a long pass (each a round trip)
    skip_reasons: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    firestore: dict[str, Any] = field(default_factory=dict)  # rounds, calls, reads, writes (roundtrips.Meter)
    trace: list[tuple[str, int]] = field(default_factory=list)  # each RPC and its round


def handle(msg: PushMessage) -> Result:
    """Dispatch one decoded message; returns what happened (for logs and tests)."""
    if msg.sweep:
        return _sweep(msg.shard)
    assert msg.address is not None
    return sync_mailbox(paths.mailbox_id(msg.address), msg)


def _kind(msg: PushMessage) -> str:
    if msg.renew:
        return "renew"
    return "force" if msg.force else "notification"


def _sweep(shard: int | None) -> Result:
    with roundtrips.metering() as meter:
        if shard is None:
            shards = sweep.fan_out()
            log.info("sweep fanned out", invocation="sweep", shards=shards, firestore=meter.summary())
            return Result(kind="sweep", outcome="fanned_out", firestore=meter.summary())
        report = sweep.sweep_shard(shard)
    log.info("sweep shard done", invocation="sweep_shard", shard=shard, due=report.due, published=report.published,
             continued=report.continued, firestore=meter.summary())
    return Result(kind="sweep_shard", outcome="swept", firestore=meter.summary())


def sync_mailbox(mailbox_id: str, msg: PushMessage) -> Result:
    result = Result(kind=_kind(msg))
    deadline = Deadline(get_config().sync_deadline_seconds)
    with roundtrips.metering() as meter, roundtrips.ContextPool(max_workers=2) as side:
        try:
            _sync(mailbox_id, msg, deadline, result, side)
        finally:
            fs = result.firestore = meter.summary()
            result.trace = list(meter.trace)
            log.info("sync invocation", invocation=result.kind, reason=msg.reason, mailboxId=mailbox_id,
                     outcome=result.outcome, passes=result.passes, fetched=result.fetched, stored=result.stored,
                     skipped=result.skipped, recovered=result.recovered, renewed=result.renewed,
                     skipReasons=result.skip_reasons, firestore=fs,
                     seconds={k: round(v, 3) for k, v in result.seconds.items()})
            if result.passes:  # the benchmark's line (scripts/bench_sync.py)
                log.info("mailbox synced", mailboxId=mailbox_id, fetched=result.fetched, stored=result.stored,
                         joined=result.joined, writes=fs["writes"], rounds=fs["rounds"])
    return result


def _answered(mb: Mailbox, requested_at_ms: int | None) -> bool:
    """A pass that started after the request was made has done what it asked for."""
    started = aware(mb.lastPassStartedAt)
    return requested_at_ms is not None and started is not None and started.timestamp() * 1000 >= requested_at_ms


def _lease_free(data: dict[str, Any], now: datetime) -> bool:
    until = aware(data.get("leaseUntil"))
    return not data.get("leaseOwner") or until is None or until <= now


def _sync(mailbox_id: str, msg: PushMessage, deadline: Deadline, result: Result, side: ContextPool) -> None:
    notification = not msg.force
    links_future = side.submit(links_for_mailbox, mailbox_id) if notification else None
    snap = lease.read(mailbox_id)
    mb = snap.mailbox
    now = datetime.now(UTC)
    cursor = as_int(mb.historyId)
    if not decide_mailbox(mb if snap.exists else None).connected:  # the one connection check
        result.outcome = "not_connected"
        return
    if notification and msg.history_id is not None and cursor is not None and msg.history_id <= cursor:
        result.outcome = "up_to_date"  # covered by the cursor: no Gmail call, no write
        return
    if msg.renew and not renewal.renewal_due(mb, now):
        result.outcome = "renewed_already"  # a sync renewed it meanwhile
        return
    if msg.force and not msg.renew and _answered(mb, msg.requested_at_ms):
        result.outcome = "answered"  # a pass started after this was asked for
        return
    pace = bucket_for(mailbox_id).take  # at the pace of the quota model in force
    session = None
    held = None
    try:
        if msg.force and cursor is not None and _lease_free(snap.data, now):
            session = open_gmail(MailboxRead(mailbox_id, mb, snap.token))
            if _probe(session, snap, cursor, pace, result):
                result.outcome = "idle"
                return
        if links_future is None:
            links_future = side.submit(links_for_mailbox, mailbox_id)  # beside the lease write
        links_done = links_future
        # the linked accounts' settings, Auto BCC addresses and contact-index state, read beside the lease write
        accounts_future = side.submit(lambda: linked_accounts(links_done.result()))
        held = _take_lease(snap, msg, deadline, result)
        if held is None:
            if result.outcome == "continued":
                request_sync([mb.address], reason="lease_wait")
            return
        if session is None:
            session = open_gmail(MailboxRead(mailbox_id, held.mailbox, snap.token))
        _passes(session, held, deadline, links_future.result(), pace, result, side, accounts_future.result())
    except (ReauthRequired, NotConnected, lease.MailboxGone) as exc:
        result.outcome = "cannot_read"
        log.warning("mailbox cannot be read; message acknowledged", mailboxId=mailbox_id, reason=type(exc).__name__)
    except lease.LeaseLost:
        result.outcome = "lease_lost"
        log.warning("sync lease lost to another instance; it continues from the cursor", mailboxId=mailbox_id)
    except GmailUnavailable as exc:
        record_error(mailbox_id, f"Gmail is not answering (HTTP {exc.status}); the sync will retry")
        raise
    except lease.LeaseContention:
        raise
    except Exception as exc:
        record_error(mailbox_id, "The sync failed unexpectedly; it will retry")
        log.error("sync failed", mailboxId=mailbox_id, error=type(exc).__name__)
        raise
    finally:
        if held is not None:
            result.heartbeats = held.heartbeats
            held.release_quietly()


def _take_lease(snap: lease.Snapshot, msg: PushMessage, deadline: Deadline, result: Result) -> lease.Lease | None:
    """The lease, or None when a live holder took our request over (or our deadline came first)."""
    cfg = get_config()
    owner = lease.new_owner()
    force = msg.force
    while True:
        state = lease.try_acquire(snap, owner, cfg.sync_lease_seconds, msg.history_id, force)
        if state.outcome == "acquired":
            return state.lease
        if state.outcome != "busy":
            result.outcome = state.outcome
            return None
        take_over, fresh = lease.wait_for_holder(snap.mailbox_id, state.lease_until, cfg.sync_lease_seconds,
                                                 deadline.at)
        if not take_over or fresh is None:
            result.outcome = "continued" if deadline.passed() else "handed_over"
            return None
        fresh.token = snap.token
        snap = fresh
        force = True


def _probe(session: GmailSession, snap: lease.Snapshot, cursor: int, pace: Pacer, result: Result) -> bool:
    """A forced sync of an idle mailbox: one history page; nothing new → one write, no lease."""
    started = datetime.now(UTC)
    try:
        with reauth_guard(session.mailbox_id, session.address, session.credentials):
            page = next(iter_history(session.service, cursor, pace))
    except HistoryExpired:
        return False
    if page.records or not page.last:
        return False
    renew = _renew_if_due(session, snap.mailbox, pace, result)
    fields = finish_fields(snap.mailbox_id, snap.data, max(page.latest_history_id, cursor), False, started, renew)
    if not lease.conditional_update(snap, fields):
        return False  # the mailbox changed meanwhile (a notification's sync): take the ordinary path
    _mirror_lapse(snap.mailbox_id, renew)
    return True


def _renew_if_due(session: GmailSession, mb: Mailbox, pace: Pacer, result: Result,
                  accounts: LinkedAccounts | None = None) -> dict[str, Any]:
    now = datetime.now(UTC)
    if not renewal.renewal_due(mb, now):
        return {}
    exclude = excluded_labels(accounts.skips) if accounts is not None else None  # read by renew otherwise
    with reauth_guard(session.mailbox_id, session.address, session.credentials):
        fields = renewal.renew(session, mb, now, pace, exclude)
    result.renewed = "watchExpiration" in fields
    return fields


def _mirror_lapse(mailbox_id: str, renew: dict[str, Any], links: list[Link] | None = None) -> None:
    """A lapse found or ended, or changed send-as aliases (R28): onto the linked users too (rare: one write
    per user)."""
    if "watchLapsedAt" not in renew and "aliases" not in renew:
        return

    links = links if links is not None else links_for_mailbox(mailbox_id)
    if "watchLapsedAt" in renew:
        renewal.mirror_lapse(mailbox_id, links, renew["watchLapsedAt"])
    if "aliases" in renew:
        mirror_to_users(links, renew["aliases"], datetime.now(UTC))


def finish_fields(mailbox_id: str, data: dict[str, Any], history_id: int | None, force_set: bool,
                  started: datetime, renew: dict[str, Any], internal_ms: int | None = None) -> dict[str, Any]:
    """The last write of a whole pass: cursor, last sync, when the pass began, next sweep, renewal."""
    now = datetime.now(UTC)
    fields = cursor_fields(data, history_id, internal_ms, force_set=force_set)
    fields.update({"lastSyncAt": now, "lastPassStartedAt": started, "lastError": None})
    fields.update(renew)
    fields.update(sweep.due_fields(mailbox_id, data, now, renewal.watch_live({**data, **renew}, now)))
    return fields


def _final_fields(mailbox_id: str, stats: SyncStats, started: datetime, renew: dict[str, Any],
                  data: dict[str, Any]) -> dict[str, Any]:
    return finish_fields(mailbox_id, data, stats.final_history_id, stats.force_set, started, renew,
                         stats.final_internal_ms)


def _passes(session: GmailSession, held: lease.Lease, deadline: Deadline, links: list[Link], pace: Pacer,
            result: Result, side: ContextPool, accounts: LinkedAccounts) -> None:
    """Passes under the lease until no message arrived meanwhile (or the deadline: continuation)."""
    while True:
        if result.passes:
            roundtrips.pass_began()  # SPEC §5 bounds a pass: this one's first message counts from here
        started = datetime.now(UTC)
        before = dict(held.snap.data)
        if result.passes:  # a further pass under the lease reads them again (the CRM may have changed them)
            accounts = linked_accounts(links)
        with reauth_guard(held.mailbox_id, session.address, session.credentials):
            stats = sync_pass(session, held.mailbox, held, deadline, links, pace, accounts)
        result.passes += 1
        result.fetched += stats.fetched
        result.stored += stats.stored
        result.joined += stats.joined
        result.skipped += stats.skipped
        result.recovered = result.recovered or stats.recovered
        for k, v in stats.skip_reasons.items():
            result.skip_reasons[k] = result.skip_reasons.get(k, 0) + v
        for name, secs in stats.seconds.items():
            result.seconds[name] = result.seconds.get(name, 0.0) + secs
        if stats.unfinished:  # a long backlog: continue in a fresh invocation, inside its timeout
            request_sync([session.address], reason="continue")
            result.outcome = "continued"
            log.info("sync pass stopped at its time limit; continuing in a new invocation",
                     mailboxId=held.mailbox_id, stored=stats.stored)
            return
        renew = _renew_if_due(session, held.mailbox, pace, result, accounts)
        final = functools.partial(_final_fields, held.mailbox_id, stats, started, renew)
        mirror = side.submit(mirror_status, held.mailbox_id, aware(before.get("lastSyncAt")),
                             before.get("lastError"), links)
        _mirror_lapse(held.mailbox_id, renew, links)  # before the pass ends: a crash here renews and mirrors again
        again = held.finish(final)
        mirror.result()
        if not again:
            result.outcome = "synced"
            return
        if deadline.passed():
            request_sync([session.address], reason="continue")
            result.outcome = "continued"
            return
