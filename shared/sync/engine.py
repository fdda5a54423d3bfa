"""Bring the CRM up to date with one mailbox, from its stored cursor (R2, R5, R7-R15).

A notification is only a trigger: the truth is Gmail's history after the
cursor stored in `sync_mailboxes/{id}.historyId`. One pass:

1. history.list from the cursor, one page at a time (a long backlog is stored
   page by page as it is listed), skipping drafts/spam/chat and, from the
   records' labels, the categories the accounts skip (shared/sync/categories.py),
   and the CRM sends send_email marked as logged (shared/crm/crm_sent.py);
2. per chunk of records: batched messages.get, parse, classify per linked
   account (shared/sync/classify.py), write message documents (create-if-absent,
   id `gm_<gmailMessageId>`), thread map, conversations (forward-only), then
   events, then the cursor moves to the chunk's last record (a conditional
   write under the lease, forward only: shared/sync/lease.py);
3. the pass returns the historyId history.list reported; the caller writes it
   with the pass's last write (shared/sync/control.py).

The invocation's one deadline (shared/sync/deadline.py) bounds the pass: it
stops at a chunk or page boundary when the deadline or SYNC_MAX_PASS_SECONDS
passes. Gmail calls wait for the mailbox's token bucket (shared/gmail/pacing.py).

Every write is keyed deterministically, so a crash anywhere is repaired by the
redelivered notification redoing the pass: nothing is lost, nothing doubled.
A cursor Gmail no longer knows (404) is recovered by listing messages received
since the last synced time (bounded), then continuing from a fresh historyId.
"""

from __future__ import annotations

import itertools
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from shared.attachments.sent_ids import Candidate, record_ids
from shared.core import log, roundtrips
from shared.core.clients import firestore_client
from shared.core.config import get_config
from shared.core.events import CrmEvent, publish
from shared.core.models import ContactRef, Link, Mailbox, ThreadMap, Visibility, as_int
from shared.core.roundtrips import ContextPool
from shared.crm import contact_index, crm_sent, paths, visibility
from shared.crm.blocklist import Blocklist
from shared.crm.contacts import find_contacts
from shared.crm.conversations import Touch, join_document, store_document, touch_conversations
from shared.crm.fit import fit_message
from shared.crm.mailboxes import links_for_mailbox
from shared.crm.paths import contact_index_state_ref, mailbox_ref, message_ref, settings_ref, thread_ref, user_ref
from shared.crm.settings import blocklist_from
from shared.crm.skipped import record_skip
from shared.crm.threads import get_threads, map_conversation
from shared.crm.users_cache import account_user_emails, find_user_addresses
from shared.gmail.credentials import GmailSession
from shared.gmail.fetch import (
    HistoryExpired,
    HistoryRecord,
    LabelChange,
    Pacer,
    fetch_messages,
    get_profile_history_id,
    iter_history,
    list_message_ids_since,
)
from shared.gmail.mime_build import is_crm_message_id
from shared.gmail.mime_parse import ParsedMessage, parse_gmail_message
from shared.send.limits import count_gmail_sends
from shared.storage.synced import keep_synced
from shared.sync.categories import in_skipped_category, mailbox_skips, skip_categories_from
from shared.sync.classify import (
    AccountView,
    CrmSend,
    Delivery,
    build_message,
    classify,
    message_addresses,
    primary_recipient,
    sent_at,
)
from shared.sync.crm_sends import unfinished_sends
from shared.sync.deadline import Deadline
from shared.sync.updates import apply_changes

if TYPE_CHECKING:
    from google.cloud.firestore import DocumentSnapshot

CHUNK_MESSAGES = 50
CHUNK_CHANGES = 500  # label changes and deletions per chunk (R19): no fetch, two reads and one batch per chunk
RECOVERY_MARGIN_SECONDS = 600  # Gmail's `after:` is coarse; re-reading a few stored messages is harmless
RECOVERY_MAX_MESSAGES = 5000
USER_MIRROR_SECONDS = 60
MAX_BATCH_WRITES = 450
TOUCH_WORKERS = 8  # how stale the users' emailSync.lastSyncAt may get before we write it again


@dataclass
class SyncStats:
    fetched: int = 0
    stored: int = 0
    skipped: int = 0
    history_records: int = 0
    updated: int = 0  # message documents whose Gmail state changed (R19)
    joined: int = 0  # messages already logged in the account that this mailbox joined (R25: no new document)
    recovered: bool = False
    unfinished: bool = False  # stopped at a chunk boundary to stay inside the function's timeout
    final_history_id: int | None = None  # the cursor after a whole pass (written by the caller's last write)
    final_internal_ms: int | None = None  # the newest internalDate of the last chunk, written with it
    force_set: bool = False  # the cursor is set, not only moved forward (gap recovery, first cursor)
    writes: int = 0  # Firestore document writes this pass made (benchmark: writes per message)
    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))  # time per phase
    skip_reasons: dict[str, int] = field(default_factory=lambda: defaultdict(int))


class Cursor(Protocol):
    """Where a pass checkpoints its progress (the lease: shared/sync/lease.py)."""

    def checkpoint(self, history_id: int | None, synced_internal_ms: int | None) -> None: ...

    def heartbeat(self) -> None: ...


@dataclass
class _Context:
    mailbox_id: str
    address: str
    links: list[Link]
    auto_bcc: dict[str, frozenset[str]]  # accountId -> linked users' Auto BCC addresses
    blocklists: dict[str, Blocklist]  # accountId -> the CRM's blocklist (R21)
    indexed: dict[str, bool]  # accountId -> its contact index is complete (R11b; else backfilling)
    visibility: dict[str, Visibility]  # accountId -> what this mailbox's rep lets the account keep (R31)
    connected_ms: int
    heartbeat: Callable[[], None]
    stats: SyncStats
    cursor: Cursor
    deadline: Deadline
    pace: Pacer
    skips: frozenset[str] = frozenset()  # categories every linked account skips (shared/sync/categories.py)
    credentials: Any = None  # the mailbox's, for R32's attachment fetches (shared/storage/synced.py)
    # per pass: contact look-ups (None = not a contact) and the accounts' user addresses
    contacts: dict[str, dict[str, ContactRef | None]] = field(default_factory=lambda: defaultdict(dict))
    users: dict[str, set[str] | None] = field(default_factory=dict)


@dataclass(frozen=True)
class LinkedAccounts:
    """What a pass needs of its mailbox's linked accounts, as one invocation read it (one round trip, beside
    the lease write): a pass takes it already read and reads nothing of it again."""

    auto_bcc: dict[str, frozenset[str]]  # accountId -> linked users' Auto BCC addresses
    blocklists: dict[str, Blocklist]  # accountId -> the CRM's blocklist (R21)
    index_states: dict[str, DocumentSnapshot | None]  # accountId -> its contact index's state (R11b)
    visibility: dict[str, Visibility] = field(default_factory=dict)  # accountId -> the linked rep's level (R31)
    skips: dict[str, frozenset[str]] = field(default_factory=dict)  # accountId -> Gmail categories it skips (0.3)


def linked_accounts(links: list[Link]) -> LinkedAccounts:
    """The linked users' Auto BCC addresses and visibility levels (R31), each account's blocklist (R21), the
    Gmail categories it skips (0.3) and its contact index's state (R11b), in one round trip."""
    out: dict[str, set[str]] = defaultdict(set)
    levels: dict[str, list[Visibility]] = defaultdict(list)
    refs = [user_ref(ln.accountId, ln.userId) for ln in links]
    by_path = {r.path: ln for r, ln in zip(refs, links, strict=True)}
    accounts = sorted({ln.accountId for ln in links})
    settings = {settings_ref(a).path: a for a in accounts}
    states = {contact_index_state_ref(a).path: a for a in accounts}
    blocklists: dict[str, Blocklist] = dict.fromkeys(accounts, Blocklist())
    index_states: dict[str, DocumentSnapshot | None] = dict.fromkeys(accounts)
    skips = {a: skip_categories_from(None) for a in accounts}
    all_refs = refs + [settings_ref(a) for a in accounts] + [contact_index_state_ref(a) for a in accounts]
    for snap in firestore_client().get_all(all_refs) if all_refs else []:
        if snap.reference.path in settings:
            blocklists[settings[snap.reference.path]] = blocklist_from(snap)
            skips[settings[snap.reference.path]] = skip_categories_from(snap)
            continue
        if snap.reference.path in states:
            index_states[states[snap.reference.path]] = snap
            continue
        ln = by_path.get(snap.reference.path)
        if ln is not None:
            levels[ln.accountId].append(visibility.user_level(snap.to_dict() if snap.exists else None))
        if not snap.exists:
            continue
        addr = ((snap.to_dict() or {}).get("emailSync") or {}).get("autoBccAddress")
        if addr and ln is not None:
            out[ln.accountId].add(str(addr).strip().lower())
    return LinkedAccounts({k: frozenset(v) for k, v in out.items()}, blocklists, index_states,
                          {a: visibility.most_open(v) for a, v in levels.items()}, skips)


def sync_pass(session: GmailSession, mailbox: Mailbox, cursor: Cursor, deadline: Deadline, links: list[Link],
              pace: Pacer, accounts: LinkedAccounts) -> SyncStats:
    """One pass from the stored cursor to Gmail's current historyId, page by page. `accounts` is
    `linked_accounts(links)`, read by the caller (beside the lease write: one round trip less)."""
    connected_ms = int(mailbox.connectedAt.timestamp() * 1000) if mailbox.connectedAt else 0
    # R11b: contacts from before the index (an account's first pass) and the weekly check are scanned before
    # this pass looks contacts up, so a contact stored as `cArLa@…` matches from the first pass on. A one-time
    # (then weekly) cost per account; a steady pass pays none of it.
    indexed = {a: contact_index.backfill(a, state) if contact_index.needs_scan(state)
               else contact_index.is_complete(state) for a, state in accounts.index_states.items()}
    ctx = _Context(mailbox_id=session.mailbox_id, address=mailbox.address.lower(), links=links,
                   auto_bcc=accounts.auto_bcc, blocklists=accounts.blocklists, indexed=indexed,
                   visibility=accounts.visibility, connected_ms=connected_ms,
                   heartbeat=cursor.heartbeat, stats=SyncStats(), cursor=cursor, deadline=deadline, pace=pace,
                   skips=mailbox_skips(accounts.skips), credentials=getattr(session, "credentials", None))
    return _pass(session, mailbox, ctx)


def _pass(session: GmailSession, mailbox: Mailbox, ctx: _Context) -> SyncStats:
    cursor = as_int(mailbox.historyId)
    if cursor is None:  # never had a cursor: history starts now (R2)
        ctx.stats.final_history_id = get_profile_history_id(session.service, ctx.pace)
        ctx.stats.force_set = True
        return ctx.stats
    pages = iter_history(session.service, cursor, ctx.pace)
    try:
        first = next(pages)
    except HistoryExpired:
        recover_gap(session, mailbox, ctx)
        return ctx.stats
    latest = cursor
    started = time.monotonic()
    for page in itertools.chain([first], pages):
        ctx.stats.history_records += len(page.records)
        _pass_over(ctx, page.records)
        chunks = _chunks(page.records)
        done = _run_chunks(session, ctx, [[m for rec in c for m in rec.messages] for c in chunks],
                           cursor_after=[c[-1].id for c in chunks], started=started, defer_last=page.last,
                           change_chunks=[[ch for rec in c for ch in rec.changes] for c in chunks])
        latest = max(latest, page.latest_history_id)
        if done < len(chunks) or (not page.last and _out_of_time(ctx, started)):
            ctx.stats.unfinished = True  # the cursor stands after the last stored chunk
            return ctx.stats
    ctx.stats.final_history_id = latest
    return ctx.stats


def _pass_over(ctx: _Context, records: list[HistoryRecord]) -> None:
    """Drop from the page's fetch list what needs no messages.get, in one batched read, only if any:
    - messages of skipped categories whose thread is not logged (0.3, shared/sync/categories.py);
    - the CRM's own sends send_email already logged (its mark, shared/crm/crm_sent.py): the sending
      mailbox's copy of a CRM send, sent mail the history record labels SENT (or does not label)."""
    wanted = {m for rec in records for m in rec.messages}
    added = {a.id: a for rec in records for a in rec.added if a.id in wanted}
    candidates = {i: a for i, a in added.items() if in_skipped_category(a.label_ids, ctx.skips)}
    sent = [i for i, a in added.items() if i not in candidates and (a.label_ids is None or "SENT" in a.label_ids)]
    threads = sorted({a.thread_id for a in candidates.values()})
    refs = [thread_ref(ctx.mailbox_id, t) for t in threads] + [crm_sent.mark_ref(ctx.mailbox_id, i) for i in sent]
    if not refs:
        return
    logged: set[str] = set()
    marked: set[str] = set()
    for snap in firestore_client().get_all(refs):
        if not snap.exists:
            continue
        if crm_sent.is_mark_path(snap.reference.path):
            marked.add(crm_sent.gmail_id_of(ctx.mailbox_id, snap.id))
        else:
            logged.add(ThreadMap.from_doc(snap.to_dict()).gmailThreadId)
    passed = {i for i, a in candidates.items() if a.thread_id not in logged}
    for rec in records:
        rec.messages = [m for m in rec.messages if m not in passed and m not in marked]
    for reason, n in (("skipped_category", len(passed)), ("crm_send_logged", len(marked))):
        if n:
            ctx.stats.skip_reasons[reason] += n


def _out_of_time(ctx: _Context, started: float) -> bool:
    return ctx.deadline.passed() or time.monotonic() - started > get_config().sync_max_pass_seconds


def _chunks(records: list[HistoryRecord]) -> list[list[HistoryRecord]]:
    """Consecutive records holding about CHUNK_MESSAGES messages (or CHUNK_CHANGES label changes); a record
    is never split, so the cursor can move to a chunk's last record once its messages are stored."""
    out: list[list[HistoryRecord]] = []
    cur: list[HistoryRecord] = []
    n = c = 0
    for rec in records:
        if cur and (n + len(rec.messages) > CHUNK_MESSAGES or c + len(rec.changes) > CHUNK_CHANGES):
            out.append(cur)
            cur, n, c = [], 0, 0
        cur.append(rec)
        n += len(rec.messages)
        c += len(rec.changes)
    if cur:
        out.append(cur)
    return out


def recover_gap(session: GmailSession, mailbox: Mailbox, ctx: _Context) -> None:
    """The cursor is older than Gmail's history: list what arrived since the last synced time.

    The fresh historyId is read FIRST, so anything arriving while we list is
    either listed now or found by the next history.list from it.
    """
    fresh = get_profile_history_id(session.service, ctx.pace)
    since_ms = max(mailbox.lastSyncedInternalDate or 0, ctx.connected_ms)
    after = max(since_ms // 1000 - RECOVERY_MARGIN_SECONDS, ctx.connected_ms // 1000)
    ids = list_message_ids_since(session.service, after, RECOVERY_MAX_MESSAGES, ctx.pace)
    log.warning("history expired; recovering the gap by listing", mailboxId=ctx.mailbox_id,
                cursor=mailbox.historyId, freshHistoryId=fresh, afterSeconds=after, messages=len(ids))
    ctx.stats.recovered = True
    _run_chunks(session, ctx, [ids[i:i + CHUNK_MESSAGES] for i in range(0, len(ids), CHUNK_MESSAGES)],
                cursor_after=None, since_ms=ctx.connected_ms, time_limit=False)
    ctx.stats.final_history_id = fresh
    ctx.stats.force_set = True


def _run_chunks(session: GmailSession, ctx: _Context, id_chunks: list[list[str]], cursor_after: list[int] | None,
                since_ms: int | None = None, time_limit: bool = True, started: float | None = None,
                defer_last: bool = False, change_chunks: list[list[LabelChange]] | None = None) -> int:
    """Fetch, store and checkpoint chunk after chunk, fetching the next chunk while storing this one.

    Gmail's per-user rate and Firestore's round trips then overlap instead of
    adding up. Only the prefetch thread calls Gmail while chunks are stored
    (the Gmail client is not thread-safe; Firestore's is). Returns how many
    chunks were done: fewer than all when the invocation's deadline or SYNC_MAX_PASS_SECONDS ran out: a pass
    stops at a chunk boundary (the cursor is there) and asks for a new invocation, so a backlog never hits the
    function timeout. The first chunk is always done (progress). With `defer_last`, the last chunk's
    checkpoint is left to the pass's final write (one round trip fewer for a pass of one chunk).
    """
    cfg = get_config()

    def fetch(ids: list[str]) -> tuple[dict[str, dict[str, Any]], float]:
        t = time.monotonic()
        budget = max(ctx.deadline.budget(cfg.gmail_retry_budget_seconds), 1.0)
        found = fetch_messages(session.service, ids, budget, ctx.heartbeat, pace=ctx.pace) if ids else {}
        return found, time.monotonic() - t

    if not id_chunks:
        return 0
    started = time.monotonic() if started is None else started
    with ContextPool(max_workers=1) as prefetch:
        upcoming = prefetch.submit(fetch, id_chunks[0])
        for i, ids in enumerate(id_chunks):
            resources, seconds = upcoming.result()
            ctx.stats.seconds["fetch"] += seconds
            last = i + 1 == len(id_chunks) or (time_limit and _out_of_time(ctx, started))
            if not last:
                upcoming = prefetch.submit(fetch, id_chunks[i + 1])
            newest = _sync_messages(ctx, ids, resources, since_ms)
            if change_chunks and change_chunks[i]:  # R19, after the chunk's new messages are stored
                t = time.monotonic()
                written = apply_changes(ctx.mailbox_id, change_chunks[i])
                ctx.stats.updated += written
                ctx.stats.writes += written
                ctx.stats.seconds["changes"] += time.monotonic() - t
            if defer_last and i + 1 == len(id_chunks):
                ctx.stats.final_internal_ms = newest  # the caller writes it with the cursor
            elif cursor_after is not None or newest is not None:
                t = time.monotonic()
                ctx.cursor.checkpoint(cursor_after[i] if cursor_after else None, newest)
                ctx.stats.writes += 1
                ctx.stats.seconds["cursor"] += time.monotonic() - t
            ctx.heartbeat()
            if last:
                return i + 1
    return len(id_chunks)


def _sync_messages(ctx: _Context, ids: list[str], resources: dict[str, dict[str, Any]],
                   since_ms: int | None = None) -> int | None:
    """Parse and store one chunk; returns the newest internalDate stored (for gap recovery)."""
    parsed: list[ParsedMessage] = []
    for m in ids:
        if m not in resources:
            continue
        try:
            parsed.append(parse_gmail_message(resources[m]))
        except Exception as exc:  # R22: one unreadable message never blocks the mailbox
            log.warning("message not parseable", mailboxId=ctx.mailbox_id, gmailMessageId=m, error=type(exc).__name__)
            _skip(ctx, m, "unparseable")
    ctx.stats.fetched += len(parsed)
    if since_ms is not None:
        # R2 in gap recovery, which lists by time: nothing received before the connection. (Incremental
        # sync needs no such filter: history after the cursor is new by definition, whatever the clocks say.)
        parsed = [p for p in parsed if p.internal_date_ms >= since_ms]
        # R19: label changes during the gap are not in any history we can read; the fetched labels are.
        ctx.stats.updated += apply_changes(ctx.mailbox_id, [LabelChange(p.gmail_id, p.thread_id, p.label_ids)
                                                            for p in parsed])
    if not parsed:
        return None
    _store_all(ctx, parsed)
    # Never later than now: an imported message dated 9999 must not move gap recovery's start past real mail.
    return min(max(p.internal_date_ms for p in parsed), int(time.time() * 1000))


def _skip(ctx: _Context, gmail_id: str, reason: str) -> None:
    """R22: record a message that cannot be stored at all (shown by GET /status); the pass goes on."""
    ctx.stats.skipped += 1
    ctx.stats.skip_reasons[reason] += 1
    if record_skip(ctx.mailbox_id, gmail_id, reason):
        ctx.stats.writes += 2


@dataclass
class _Item:
    """One message document to write: a delivery of one Gmail message into one account."""

    account_id: str
    conversation_id: str
    doc_id: str
    delivery: Delivery
    parsed: ParsedMessage
    new_thread: bool  # this chunk creates the thread map (fast path) or maps it in a transaction (slow)
    doc: dict[str, Any] = field(default_factory=dict)  # the document, fitted to Firestore's 1 MiB (R22)


def _plan(ctx: _Context, messages: list[ParsedMessage]) -> tuple[list[_Item], dict[str, ThreadMap], list[Candidate],
                                                                 list[_Item]]:
    """Classify every message of a chunk; returns the writes, the thread maps this chunk creates, the CRM
    sends whose logged attachments may lack their Gmail ids (R20, shared/attachments/sent_ids.py) and the
    colleagues' mail this mailbox only joins (R25, `_colleagues_copy`)."""
    cfg = get_config()
    by_account: dict[str, list[str]] = defaultdict(list)
    for ln in ctx.links:
        by_account[ln.accountId].append(ln.userId)
    addresses = sorted({a for p in messages for a in message_addresses(p)})
    accounts = sorted(by_account)
    crm_ids = [p.rfc822_message_id for p in messages if p.rfc822_message_id and is_crm_message_id(p.rfc822_message_id)]
    t = time.monotonic()
    # one round trip: contacts, users, unfinished CRM sends and thread maps are read side by side
    with ContextPool(max_workers=max(1, 2 * len(accounts) + 2)) as pool:
        c_futs = {acct: pool.submit(_lookup_contacts, ctx, acct, addresses) for acct in accounts}
        u_futs = {acct: pool.submit(_lookup_users, ctx, acct, addresses) for acct in accounts}
        s_fut = pool.submit(unfinished_sends, crm_ids) if crm_ids else None  # R18b
        t2 = time.monotonic()
        threads = get_threads(ctx.mailbox_id, [p.thread_id for p in messages])
        ctx.stats.seconds["plan_threads"] += time.monotonic() - t2
        contacts = {acct: f.result() for acct, f in c_futs.items()}
        users = {acct: f.result() for acct, f in u_futs.items()}
        crm_sends: dict[str, CrmSend] = s_fut.result() if s_fut is not None else {}
    ctx.stats.seconds["plan_lookups"] += time.monotonic() - t
    created: dict[str, ThreadMap] = {}
    items: list[_Item] = []
    fills: list[Candidate] = []
    joins: list[_Item] = []
    for p in sorted(messages, key=lambda m: (m.internal_date_ms, m.gmail_id)):
        tm = threads.get(p.thread_id)
        views = [AccountView(account_id=acct, user_ids=tuple(sorted(by_account[acct])), contacts=contacts[acct],
                             user_emails=frozenset(users[acct]), auto_bcc_addresses=ctx.auto_bcc.get(acct, frozenset()),
                             thread_conversation=tm.conversations.get(acct) if tm else None,
                             blocklist=ctx.blocklists.get(acct) or Blocklist())
                 for acct in accounts]
        decision = classify(p, ctx.address, views, thread_owner=tm.ownerAccountId if tm else None,
                            auto_bcc_domain=cfg.auto_bcc_domain,
                            crm_send=crm_sends.get(p.rfc822_message_id or ""))
        for s in decision.skips:
            ctx.stats.skip_reasons[s.reason] += 1
            if s.reason in ("internal", "unknown_sender") and decision.direction == "inbound":
                join = _colleagues_copy(ctx, p, s.account_id, contacts[s.account_id], users[s.account_id], tm)
                if join is not None:
                    joins.append(join)
            if s.reason == "crm_send" and p.attachments and tm is not None and s.account_id in tm.conversations:
                # R20: send_email logged it here without Gmail's attachment ids; this fetch knows them
                fills.append(Candidate(s.account_id, tm.conversations[s.account_id],
                                       paths.message_doc_id(p.rfc822_message_id, p.gmail_id), tuple(p.attachments)))
        if not decision.deliveries:
            ctx.stats.skipped += 1
            log.debug("message not synced", mailboxId=ctx.mailbox_id, gmailMessageId=p.gmail_id,
                      reasons=sorted({s.reason for s in decision.skips}))
            continue
        for d in decision.deliveries:
            if d.assigned_elsewhere:  # R26: logged all the same; said so for whoever wonders why it is here
                log.info("logged for a contact assigned to another user of the account", mailboxId=ctx.mailbox_id,
                         accountId=d.account_id, contactId=d.contact.id, userId=d.user_id,
                         gmailMessageId=p.gmail_id)
            new_thread = False
            claim = d.source == "crm"  # R18b: a CRM send claims its thread for the sending account (R14)
            if tm is None or p.thread_id in created:
                tm = created.setdefault(p.thread_id, ThreadMap(mailboxId=ctx.mailbox_id, gmailThreadId=p.thread_id))
                tm.conversations.setdefault(d.account_id, d.conversation_id)
                if claim and tm.ownerAccountId is None:
                    tm.ownerAccountId = d.account_id
                threads[p.thread_id] = tm
                new_thread = True
            elif d.account_id not in tm.conversations or (claim and tm.ownerAccountId is None):
                ctx.stats.writes += 1  # a known thread reaching another account (rare), or claimed (R18b)
                tm = map_conversation(ctx.mailbox_id, p.thread_id, d.account_id, d.conversation_id, claim=claim)
                threads[p.thread_id] = tm
            conv = tm.conversations.get(d.account_id, d.conversation_id)
            doc_id = paths.message_doc_id(p.rfc822_message_id, p.gmail_id)
            fitted = fit_message(_document(ctx, p, d), paths.message_path(d.account_id, conv, doc_id))
            if fitted.doc is None:
                _skip(ctx, p.gmail_id, fitted.reason or "too_large")
                break  # the same message is as large in every account
            items.append(_Item(d.account_id, conv, doc_id, d, p, new_thread, fitted.doc))
    return items, created, fills, joins


def _colleagues_copy(ctx: _Context, p: ParsedMessage, account_id: str, contacts: dict[str, ContactRef],
                     users: set[str], tm: ThreadMap | None) -> _Item | None:
    """R25: a colleague's mail to a contact with this rep in To or Cc (Alice writes to Carla, Carol in Cc, from
    Gmail or from the CRM) is not this rep's mail in this mailbox (internal, R11, or from an address that is no
    contact: Alice's Gmail), but it is the message Alice's mailbox, send_email or Auto BCC logs: this mailbox
    joins that record when it is there (listed in `mailboxIds`, its level counted, R31), and never creates one.
    Only a message of the account with the same Message-ID is joined, so nothing else is ever logged."""
    sender = p.sender.email if p.sender else ""
    if not sender or sender == ctx.address:
        return None
    contact = primary_recipient(p, contacts, users | {ctx.address})
    doc_id = paths.message_doc_id(p.rfc822_message_id, None)
    if contact is None or not doc_id:
        return None
    conv = (tm.conversations.get(account_id) if tm else None) or contact.id
    d = Delivery(account_id=account_id, user_id="", contact=contact, conversation_id=conv, direction="outbound",
                 is_forward=False)
    fitted = fit_message(_document(ctx, p, d), paths.message_path(account_id, conv, doc_id))
    return _Item(account_id, conv, doc_id, d, p, False, fitted.doc) if fitted.doc is not None else None


def _document(ctx: _Context, p: ParsedMessage, d: Delivery) -> dict[str, Any]:
    """The message document as this mailbox's rep lets the account keep it (R31; a CRM send the sync logs
    for send_email, R18b, is the CRM's own and kept whole), listing this mailbox as its first (R25)."""
    doc = {**build_message(p, d, ctx.mailbox_id).to_doc(), "mailboxIds": [ctx.mailbox_id],
           "gmailIds": {ctx.mailbox_id: p.gmail_id}}
    level = visibility.DEFAULT if d.source == "crm" else ctx.visibility.get(d.account_id, visibility.DEFAULT)
    return visibility.apply(doc, level)


def _lookup_contacts(ctx: _Context, account_id: str, addresses: list[str]) -> dict[str, ContactRef]:
    cache = ctx.contacts[account_id]
    missing = [a for a in addresses if a not in cache]
    if missing:
        found = find_contacts(account_id, missing, indexed=ctx.indexed.get(account_id, False))
        for a in missing:
            cache[a] = found.get(a)
    return {a: c for a in addresses if (c := cache.get(a)) is not None}


def _lookup_users(ctx: _Context, account_id: str, addresses: list[str]) -> set[str]:
    if account_id not in ctx.users:
        ctx.users[account_id] = account_user_emails(account_id)  # cached per process, checked by count
    known = ctx.users[account_id]
    if known is None:  # a very large account: look the chunk's addresses up
        return find_user_addresses(account_id, addresses)  # R28: CRM email, connected Gmail, aliases
    return known.intersection(addresses)


def _write_fast(ctx: _Context, items: list[_Item], created: dict[str, ThreadMap]) -> bool:
    """Every new thread map and message of the chunk in one atomic batch of creates.

    The first pass over new mail always succeeds (one round trip instead of
    one per document); if anything already exists (a replay after a crash, or
    send_email wrote first) nothing is written and the slow path decides per
    document.
    """
    from google.api_core.exceptions import (  # lazy: Firestore library (cold start)
        AlreadyExists,
        Conflict,
        FailedPrecondition,
        InvalidArgument,
    )

    if not (items or created) or len(items) + len(created) > MAX_BATCH_WRITES:
        return False
    batch = firestore_client().batch()
    now = datetime.now(UTC)
    for thread_id, tm in created.items():
        batch.create(thread_ref(ctx.mailbox_id, thread_id), tm.to_doc())
    for it in items:
        batch.create(message_ref(it.account_id, it.conversation_id, it.doc_id), {**it.doc, "createdAt": now})
    try:
        batch.commit()
    except (AlreadyExists, Conflict, FailedPrecondition, InvalidArgument):
        return False  # InvalidArgument: one document Firestore refuses (R22); the slow path finds which
    if items:
        roundtrips.mark("message_written")
    ctx.stats.writes += len(items) + len(created)
    ctx.stats.stored += len(items)
    return True


def _write_slow(ctx: _Context, items: list[_Item], fills: list[Candidate]) -> list[_Item]:
    """Document by document, create-if-absent; returns the items that are ours to announce. A CRM send
    (R18b) that send_email logged meanwhile joins `fills` (its attachments lack Gmail's ids, R20)."""
    from google.api_core.exceptions import InvalidArgument  # lazy: Firestore library (cold start)

    out: list[_Item] = []
    refused: set[str] = set()
    mapped: dict[tuple[str, str], str] = {}
    for it in items:
        conv = it.conversation_id
        if it.new_thread:
            key = (it.parsed.thread_id, it.account_id)
            if key not in mapped:
                ctx.stats.writes += 1
                tm = map_conversation(ctx.mailbox_id, it.parsed.thread_id, it.account_id, conv)
                mapped[key] = tm.conversations.get(it.account_id, conv)
            conv = mapped[key]
        if it.parsed.gmail_id in refused:
            continue
        ctx.stats.writes += 1
        try:
            created = store_document(it.account_id, conv, it.doc_id, it.doc)
        except InvalidArgument as exc:  # R22: Firestore refuses this document; the others still go in
            log.warning("message document refused", mailboxId=ctx.mailbox_id, gmailMessageId=it.parsed.gmail_id,
                        error=str(exc)[:200])
            refused.add(it.parsed.gmail_id)
            _skip(ctx, it.parsed.gmail_id, "rejected_by_firestore")
            continue
        if created:
            roundtrips.mark("message_written")
            ctx.stats.stored += 1
        elif not _join(ctx, it, conv):
            if it.delivery.source == "crm" and it.parsed.attachments:
                fills.append(Candidate(it.account_id, conv, it.doc_id, tuple(it.parsed.attachments)))
            continue  # logged and announced already: another rep's mailbox (R25), the CRM (R9), Auto BCC
        out.append(_Item(it.account_id, conv, it.doc_id, it.delivery, it.parsed, it.new_thread, it.doc))
    return out


def _write(ctx: _Context, items: list[_Item], created: dict[str, ThreadMap], late: list[Candidate]) -> list[_Item]:
    if not items:
        return []
    if _write_fast(ctx, items, created):
        return items
    joined = _write_joining(ctx, items, created, late)
    return joined if joined is not None else _write_slow(ctx, items, late)


JOIN_WORKERS = 8


def _write_joining(ctx: _Context, items: list[_Item], created: dict[str, ThreadMap],
                   late: list[Candidate]) -> list[_Item] | None:
    """R25's common case when the fast batch failed: another rep's mailbox (or the CRM, Auto BCC) logged some of
    the chunk's messages first. One read of the chunk's documents; the absent ones and the chunk's new thread
    maps go in one batch of creates, the present ones are joined side by side (one read and one guarded write
    each). None when that batch fails too (a replay, a race): the slow path decides document by document."""
    db = firestore_client()
    refs = {id(it): message_ref(it.account_id, it.conversation_id, it.doc_id) for it in items}
    exists = {s.reference.path for s in db.get_all(list({r.path: r for r in refs.values()}.values())) if s.exists}
    present = [it for it in items if refs[id(it)].path in exists]
    fresh = [it for it in items if refs[id(it)].path not in exists]
    if not present or ((fresh or created) and not _write_fast(ctx, fresh, created)):
        return None
    with ContextPool(max_workers=min(JOIN_WORKERS, len(present))) as pool:
        outcomes = list(pool.map(lambda it: _join_outcome(ctx, it, it.conversation_id), present))
    again: list[_Item] = []
    for it, (ours, written) in zip(present, outcomes, strict=True):
        _count_join(ctx, written)
        if ours:
            again.append(it)  # this mailbox's own, from an interrupted pass: announce it again
        elif it.delivery.source == "crm" and it.parsed.attachments:
            late.append(Candidate(it.account_id, it.conversation_id, it.doc_id, tuple(it.parsed.attachments)))
    return fresh + again


def _store_all(ctx: _Context, messages: list[ParsedMessage]) -> None:
    t = time.monotonic()
    items, created, fills, joins = _plan(ctx, messages)
    ctx.stats.seconds["plan"] += time.monotonic() - t
    t = time.monotonic()
    keep_synced(ctx.credentials, items, ctx.pace, ctx.mailbox_id)  # R32: whole bodies and bytes, then documents
    ctx.stats.seconds["storage"] += time.monotonic() - t
    t = time.monotonic()
    late: list[Candidate] = []  # CRM sends the slow path found logged by send_email meanwhile (R20)
    sends = gmail_sends(messages)
    if fills or sends:  # R20, R30: beside the chunk's writes (other documents), not after them
        with ContextPool(max_workers=2) as pool:
            filled = pool.submit(record_ids, fills) if fills else None
            counted = pool.submit(_count_sends, ctx, sends) if sends else None
            written = _write(ctx, items, created, late)
            ctx.stats.writes += (filled.result() if filled else 0) + (counted.result() if counted else 0)
    else:
        written = _write(ctx, items, created, late)
    ctx.stats.writes += record_ids(late)
    if joins:  # R25: colleagues' mail already logged (never created here, never announced)
        with ContextPool(max_workers=min(JOIN_WORKERS, len(joins))) as pool:
            for _, written_ in pool.map(lambda it: _join_outcome(ctx, it, it.conversation_id), joins):
                _count_join(ctx, written_)
    ctx.stats.seconds["write"] += time.monotonic() - t
    if not items:
        return
    t = time.monotonic()
    touches: dict[tuple[str, str], _Item] = {}
    for it in written:
        key = (it.account_id, it.conversation_id)
        if key not in touches or touches[key].doc["sentAt"] <= it.doc["sentAt"]:
            touches[key] = it
    ctx.stats.writes += touch_conversations([  # sentAt, not internalDate: an absurd date never pins it (R22)
        Touch(it.account_id, it.conversation_id, it.delivery.contact.id, it.doc["sentAt"], it.doc["snippet"],
              it.delivery.direction) for it in touches.values()])
    ctx.stats.seconds["touch"] += time.monotonic() - t
    t = time.monotonic()
    # A CRM send the sync logged (R18b) is announced as send_email would have announced it.
    publish(CrmEvent(type="message.sent" if it.delivery.source == "crm" else "message.synced",
                     accountId=it.account_id, userId=it.delivery.user_id or None,
                     contactId=it.delivery.contact.id, conversationId=it.conversation_id, messageId=it.doc_id,
                     direction=it.delivery.direction, source=it.delivery.source, gmailMessageId=it.parsed.gmail_id,
                     gmailThreadId=it.parsed.thread_id) for it in written)
    ctx.stats.seconds["events"] += time.monotonic() - t


def gmail_sends(messages: list[ParsedMessage]) -> list[tuple[str, datetime]]:
    """R30: what the rep sent in Gmail itself (or any other client through Gmail), which Gmail's sending limit
    counts: SENT, not a draft, not the CRM's own send (send_email counted that one when it reserved it)."""
    return [(p.gmail_id, sent_at(p.internal_date_ms)) for p in messages
            if "SENT" in p.label_ids and "DRAFT" not in p.label_ids
            and not (p.rfc822_message_id and is_crm_message_id(p.rfc822_message_id))]


def _count_sends(ctx: _Context, sends: list[tuple[str, datetime]]) -> int:
    """Count them against the mailbox's rolling 24 hours; a failure is logged, never blocks the mailbox (a
    replayed pass counts what is missing, idempotently)."""
    try:
        return count_gmail_sends(ctx.mailbox_id, sends)
    except Exception as exc:
        log.warning("sends made in Gmail not counted", mailboxId=ctx.mailbox_id, sends=len(sends),
                    error=type(exc).__name__)
        return 0


def _join(ctx: _Context, it: _Item, conversation_id: str) -> bool:
    """A message document that already existed: True when it is ours to announce again (this mailbox's
    interrupted pass created it: at-least-once). Otherwise this mailbox joins it (R25: another rep's mailbox,
    a CRM send or an Auto BCC copy logged it and announced it; one document, one event, every mailbox listed,
    the most open level's content, R31). A CRM send (R18b) that exists is send_email's or ours,
    indistinguishably: it was announced by whoever wrote it."""
    ours, written = _join_outcome(ctx, it, conversation_id)
    _count_join(ctx, written)
    return ours


def _join_outcome(ctx: _Context, it: _Item, conversation_id: str) -> tuple[bool, bool]:
    """`_join` without touching the pass's counters (it runs side by side): (ours to announce, written)."""
    joined = join_document(it.account_id, conversation_id, it.doc_id, ctx.mailbox_id, it.parsed.gmail_id, it.doc)
    if joined is None or joined.written:
        return False, joined is not None
    first = (joined.stored.get("mailboxIds") or [joined.stored.get("mailboxId")])[0]
    ours = it.delivery.source == "gmail" and joined.stored.get("source") == "gmail" and first == ctx.mailbox_id
    return ours, False


def _count_join(ctx: _Context, written: bool) -> None:
    if written:
        ctx.stats.writes += 1
        ctx.stats.joined += 1


def record_error(mailbox_id: str, message: str) -> None:
    """The last error in plain words, for GET /status (mailbox and each linked user)."""
    try:
        mailbox_ref(mailbox_id).update({"lastError": message, "lastErrorAt": datetime.now(UTC)})
        for ln in links_for_mailbox(mailbox_id):
            user_ref(ln.accountId, ln.userId).set({"emailSync": {"lastError": message}}, merge=True)
    except Exception as exc:  # never mask the original failure
        log.error("could not record sync error", mailboxId=mailbox_id, error=type(exc).__name__)


def mirror_status(mailbox_id: str, previous_sync_at: datetime | None, previous_error: str | None,
                  links: list[Link] | None = None) -> int:
    """Copy lastSyncAt / lastError to the linked users' emailSync, at most once a minute when healthy."""
    now = datetime.now(UTC)
    prev = previous_sync_at if previous_sync_at is None or previous_sync_at.tzinfo else \
        previous_sync_at.replace(tzinfo=UTC)
    if previous_error is None and prev is not None and (now - prev).total_seconds() < USER_MIRROR_SECONDS:
        return 0
    links = links if links is not None else links_for_mailbox(mailbox_id)
    for ln in links:
        user_ref(ln.accountId, ln.userId).set({"emailSync": {"lastSyncAt": now, "lastError": None}}, merge=True)
    return len(links)
