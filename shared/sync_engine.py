"""Bring the CRM up to date with one mailbox, from its stored cursor (R2, R5, R7-R15).

A notification is only a trigger: the truth is Gmail's history after the
cursor stored in `sync_mailboxes/{id}.historyId`. One pass:

1. history.list from the cursor (all pages), skipping drafts/spam/chat;
2. per chunk of records: batched messages.get, parse, classify per linked
   account (shared/classify.py), write message documents (create-if-absent,
   id `gm_<gmailMessageId>`), thread map, conversations (forward-only), then
   events, then the cursor moves to the chunk's last record (transaction,
   forward only);
3. the cursor moves to the historyId history.list reported.

Every write is keyed deterministically, so a crash anywhere is repaired by the
redelivered notification redoing the pass: nothing is lost, nothing doubled.
A cursor Gmail no longer knows (404) is recovered by listing messages received
since the last synced time (bounded), then continuing from a fresh historyId.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shared import log, paths
from shared.classify import AccountView, Delivery, build_message, classify, message_addresses
from shared.config import get_config
from shared.contacts import find_contacts, find_user_emails
from shared.conversations import message_ref, store_message, touch_conversation
from shared.events import CrmEvent, publish
from shared.gmail_fetch import (
    HistoryExpired,
    HistoryRecord,
    fetch_messages,
    get_profile_history_id,
    list_history,
    list_message_ids_since,
)
from shared.mailboxes import links_for_mailbox, mailbox_ref, user_ref
from shared.mime_parse import ParsedMessage, parse_gmail_message
from shared.models import Link, Mailbox
from shared.threads import get_threads, map_conversation

CHUNK_MESSAGES = 50
RECOVERY_MARGIN_SECONDS = 600  # Gmail's `after:` is coarse; re-reading a few stored messages is harmless
RECOVERY_MAX_MESSAGES = 5000
USER_MIRROR_SECONDS = 60  # how stale the users' emailSync.lastSyncAt may get before we write it again


@dataclass
class SyncStats:
    fetched: int = 0
    stored: int = 0
    skipped: int = 0
    history_records: int = 0
    recovered: bool = False
    skip_reasons: dict[str, int] = field(default_factory=lambda: defaultdict(int))


@dataclass
class _Context:
    mailbox_id: str
    address: str
    links: list[Link]
    auto_bcc: dict[str, frozenset[str]]  # accountId -> linked users' Auto BCC addresses
    connected_ms: int
    heartbeat: Callable[[], None]
    stats: SyncStats


def _as_int(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _linked_auto_bcc(links: list[Link]) -> dict[str, frozenset[str]]:
    from shared.clients import firestore_client

    out: dict[str, set[str]] = defaultdict(set)
    refs = [user_ref(ln.accountId, ln.userId) for ln in links]
    by_path = {r.path: ln for r, ln in zip(refs, links, strict=True)}
    for snap in firestore_client().get_all(refs) if refs else []:
        if not snap.exists:
            continue
        addr = ((snap.to_dict() or {}).get("emailSync") or {}).get("autoBccAddress")
        ln = by_path.get(snap.reference.path)
        if addr and ln is not None:
            out[ln.accountId].add(str(addr).strip().lower())
    return {k: frozenset(v) for k, v in out.items()}


def sync_pass(session: Any, mailbox: Mailbox, heartbeat: Callable[[], None]) -> SyncStats:
    """One pass from the stored cursor to Gmail's current historyId."""
    links = links_for_mailbox(session.mailbox_id)
    connected_ms = int(mailbox.connectedAt.timestamp() * 1000) if mailbox.connectedAt else 0
    ctx = _Context(mailbox_id=session.mailbox_id, address=mailbox.address.lower(), links=links,
                   auto_bcc=_linked_auto_bcc(links), connected_ms=connected_ms, heartbeat=heartbeat,
                   stats=SyncStats())
    cursor = _as_int(mailbox.historyId)
    if cursor is None:  # never had a cursor: history starts now (R2)
        advance_cursor(ctx.mailbox_id, get_profile_history_id(session.service), None)
        return ctx.stats
    try:
        page = list_history(session.service, cursor)
    except HistoryExpired:
        recover_gap(session, mailbox, ctx)
        return ctx.stats
    ctx.stats.history_records = len(page.records)
    for chunk in _chunks(page.records):
        ids = [m for rec in chunk for m in rec.messages]
        _sync_messages(session, ctx, ids)
        advance_cursor(ctx.mailbox_id, chunk[-1].id, None)
    if page.latest_history_id > cursor:
        advance_cursor(ctx.mailbox_id, page.latest_history_id, None, synced=True)
    else:
        advance_cursor(ctx.mailbox_id, cursor, None, synced=True)
    return ctx.stats


def _chunks(records: list[HistoryRecord]) -> list[list[HistoryRecord]]:
    """Consecutive records holding about CHUNK_MESSAGES messages; a record is never split, so the
    cursor can move to a chunk's last record once its messages are stored."""
    out: list[list[HistoryRecord]] = []
    cur: list[HistoryRecord] = []
    n = 0
    for rec in records:
        cur.append(rec)
        n += len(rec.messages)
        if n >= CHUNK_MESSAGES:
            out.append(cur)
            cur, n = [], 0
    if cur:
        out.append(cur)
    return out


def recover_gap(session: Any, mailbox: Mailbox, ctx: _Context) -> None:
    """The cursor is older than Gmail's history: list what arrived since the last synced time.

    The fresh historyId is read FIRST, so anything arriving while we list is
    either listed now or found by the next history.list from it.
    """
    fresh = get_profile_history_id(session.service)
    since_ms = max(mailbox.lastSyncedInternalDate or 0, ctx.connected_ms)
    after = max(since_ms // 1000 - RECOVERY_MARGIN_SECONDS, ctx.connected_ms // 1000)
    ids = list_message_ids_since(session.service, after, RECOVERY_MAX_MESSAGES)
    log.warning("history expired; recovering the gap by listing", mailboxId=ctx.mailbox_id,
                cursor=mailbox.historyId, freshHistoryId=fresh, afterSeconds=after, messages=len(ids))
    ctx.stats.recovered = True
    for start in range(0, len(ids), CHUNK_MESSAGES):
        _sync_messages(session, ctx, ids[start:start + CHUNK_MESSAGES])
    advance_cursor(ctx.mailbox_id, fresh, None, synced=True, force_set=True)


def _sync_messages(session: Any, ctx: _Context, ids: list[str]) -> None:
    if not ids:
        return
    cfg = get_config()
    resources = fetch_messages(session.service, ids, cfg.gmail_retry_budget_seconds, ctx.heartbeat)
    parsed = [parse_gmail_message(resources[m]) for m in ids if m in resources]
    ctx.stats.fetched += len(parsed)
    # R2: mail older than the connection never syncs (gap recovery lists by coarse time).
    parsed = [p for p in parsed if p.internal_date_ms >= ctx.connected_ms or not ctx.connected_ms]
    if parsed:
        _store_all(ctx, parsed)
        newest = max(p.internal_date_ms for p in parsed)
        advance_cursor(ctx.mailbox_id, None, newest)
    ctx.heartbeat()


def _store_all(ctx: _Context, messages: list[ParsedMessage]) -> None:
    cfg = get_config()
    by_account: dict[str, list[str]] = defaultdict(list)
    for ln in ctx.links:
        by_account[ln.accountId].append(ln.userId)
    addresses = sorted({a for p in messages for a in message_addresses(p)})
    contacts = {acct: find_contacts(acct, addresses) for acct in by_account}
    users = {acct: find_user_emails(acct, addresses) for acct in by_account}
    threads = get_threads(ctx.mailbox_id, [p.thread_id for p in messages])
    touches: dict[tuple[str, str], tuple[datetime, Delivery, ParsedMessage]] = {}
    events: list[CrmEvent] = []
    for p in sorted(messages, key=lambda m: (m.internal_date_ms, m.gmail_id)):
        tm = threads.get(p.thread_id)
        views = [AccountView(account_id=acct, user_ids=tuple(sorted(uids)), contacts=contacts[acct],
                             user_emails=frozenset(users[acct]), auto_bcc_addresses=ctx.auto_bcc.get(acct, frozenset()),
                             thread_conversation=tm.conversations.get(acct) if tm else None)
                 for acct, uids in sorted(by_account.items())]
        decision = classify(p, ctx.address, views, thread_owner=tm.ownerAccountId if tm else None,
                            auto_bcc_domain=cfg.auto_bcc_domain)
        for s in decision.skips:
            ctx.stats.skip_reasons[s.reason] += 1
        if not decision.deliveries:
            ctx.stats.skipped += 1
            log.debug("message not synced", mailboxId=ctx.mailbox_id, gmailMessageId=p.gmail_id,
                      reasons=sorted({s.reason for s in decision.skips}))
            continue
        for d in decision.deliveries:
            conv = d.conversation_id
            if tm is None or d.account_id not in tm.conversations:
                tm = map_conversation(ctx.mailbox_id, p.thread_id, d.account_id, conv)
                threads[p.thread_id] = tm
                conv = tm.conversations.get(d.account_id, conv)
            doc_id = paths.gmail_message_doc_id(p.gmail_id)
            created = store_message(d.account_id, conv, doc_id, build_message(p, d))
            if created:
                ctx.stats.stored += 1
            elif not _is_own_sync(d.account_id, conv, doc_id):
                continue  # the CRM's own send (R9) or Auto BCC: logged and announced already
            at = datetime.fromtimestamp(p.internal_date_ms / 1000, tz=UTC)
            key = (d.account_id, conv)
            if key not in touches or touches[key][0] <= at:
                touches[key] = (at, d, p)
            events.append(CrmEvent(type="message.synced", accountId=d.account_id, userId=d.user_id or None,
                                   contactId=d.contact.id, conversationId=conv, messageId=doc_id,
                                   direction=d.direction, source="gmail", gmailMessageId=p.gmail_id,
                                   gmailThreadId=p.thread_id))
    for (acct, conv), (at, d, p) in touches.items():
        touch_conversation(acct, conv, d.contact.id, at, p.snippet, d.direction)
    if events:
        publish(events)


def _is_own_sync(account_id: str, conversation_id: str, doc_id: str) -> bool:
    """A message document that already existed: ours from an interrupted pass (announce it again,
    at-least-once), or written by the CRM send / Auto BCC path (leave it alone)."""
    snap = message_ref(account_id, conversation_id, doc_id).get()
    return bool(snap.exists and (snap.to_dict() or {}).get("source") == "gmail")


def advance_cursor(mailbox_id: str, history_id: int | None, synced_internal_ms: int | None, *,
                   synced: bool = False, force_set: bool = False) -> None:
    """Move the cursor and the last synced time forward only (transaction); `synced` marks a
    completed pass (lastSyncAt, lastError cleared)."""
    from google.cloud import firestore

    from shared.clients import firestore_client

    ref = mailbox_ref(mailbox_id)

    @firestore.transactional
    def run(tx: Any) -> None:
        snap = ref.get(transaction=tx)
        if not snap.exists:
            return
        data = snap.to_dict() or {}
        update: dict[str, Any] = {}
        current = _as_int(data.get("historyId"))
        if history_id is not None and (force_set or current is None or history_id > current):
            update["historyId"] = str(history_id)
        last_ms = _as_int(data.get("lastSyncedInternalDate"))
        if synced_internal_ms is not None and (last_ms is None or synced_internal_ms > last_ms):
            update["lastSyncedInternalDate"] = synced_internal_ms
        if synced:
            update["lastSyncAt"] = datetime.now(UTC)
            update["lastError"] = None
        if update:
            tx.update(ref, update)

    run(firestore_client().transaction())


def record_error(mailbox_id: str, message: str) -> None:
    """The last error in plain words, for GET /status (mailbox and each linked user)."""
    try:
        mailbox_ref(mailbox_id).update({"lastError": message, "lastErrorAt": datetime.now(UTC)})
        for ln in links_for_mailbox(mailbox_id):
            user_ref(ln.accountId, ln.userId).set({"emailSync": {"lastError": message}}, merge=True)
    except Exception as exc:  # never mask the original failure
        log.error("could not record sync error", mailboxId=mailbox_id, error=type(exc).__name__)


def mirror_status(mailbox_id: str, previous_sync_at: datetime | None, previous_error: str | None) -> None:
    """Copy lastSyncAt / lastError to the linked users' emailSync, at most once a minute when healthy."""
    now = datetime.now(UTC)
    prev = previous_sync_at if previous_sync_at is None or previous_sync_at.tzinfo else \
        previous_sync_at.replace(tzinfo=UTC)
    if previous_error is None and prev is not None and (now - prev).total_seconds() < USER_MIRROR_SECONDS:
        return
    for ln in links_for_mailbox(mailbox_id):
        user_ref(ln.accountId, ln.userId).set({"emailSync": {"lastSyncAt": now, "lastError": None}}, merge=True)


def stale_connected_mailboxes(stale_seconds: int, page_size: int = 300) -> list[Mailbox]:
    """Connected mailboxes not synced for `stale_seconds` (or never), paged by document id.

    One equality filter and ordering by id needs no composite index; the
    staleness test is done here, on a projection of three fields.
    """
    from google.cloud.firestore_v1.base_query import FieldFilter

    from shared.clients import firestore_client

    cutoff = datetime.now(UTC).timestamp() - stale_seconds
    col = firestore_client().collection(paths.MAILBOXES)
    out: list[Mailbox] = []
    last: Any = None
    while True:
        q = (col.where(filter=FieldFilter("status", "==", "connected"))
             .select(["address", "lastSyncAt", "status"]).order_by("__name__").limit(page_size))
        if last is not None:
            q = q.start_after(last)
        snaps = list(q.stream())
        for s in snaps:
            mb = Mailbox.from_doc(s.to_dict())
            if mb.lastSyncAt is None or mb.lastSyncAt.timestamp() < cutoff:
                out.append(mb)
        if len(snaps) < page_size:
            return out
        last = snaps[-1]
