"""Gmail reads for the sync: history pages, batched `messages.get`, gap recovery listing.

Quota is the budget that matters (SPEC §5): one `messages.get` (20 units in
Gmail's 2026 model, 5 in the legacy one) per new message through the batch
endpoint with `format=full` and trimmed `fields`, in batches no larger than the
per-user rate admits at once (shared/gmail/pacing.py), history pages of up to
500 records (2 units each), and messages already excluded by their labels
(drafts, spam, chat) never fetched.

Errors: 429/5xx (and Gmail's 403 rate-limit reasons) are retried with
exponential backoff and jitter inside a time budget; past it `GmailUnavailable`
makes the notification fail so Pub/Sub redelivers it later. A message deleted
between history.list and messages.get (404) is skipped. Single calls use the
client library's own retry (`execute(num_retries=…)`), which covers the same
statuses; batch parts need our own loop because the library does not retry them.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from shared.core import log
from shared.gmail.errors import RETRYABLE, Outcome, classify
from shared.gmail.pacing import cost, limits

HISTORY_PAGE_SIZE = 500
LIST_PAGE_SIZE = 500
NUM_RETRIES = 4  # single calls; the library sleeps rand() * 2**n seconds between tries
MESSAGE_FIELDS = "id,threadId,labelIds,snippet,internalDate,payload"
# R19: label changes and deletions come with the message's labelIds, so they need no messages.get.
HISTORY_TYPES = ["messageAdded", "labelAdded", "labelRemoved", "messageDeleted"]
_REF = "message(id,threadId,labelIds)"
HISTORY_FIELDS = (f"history(id,messagesAdded({_REF}),labelsAdded({_REF}),labelsRemoved({_REF}),"
                  "messagesDeleted(message(id,threadId))),nextPageToken,historyId")
NEVER_SYNCED_LABELS = frozenset({"DRAFT", "SPAM", "TRASH", "CHAT"})


class HistoryExpired(Exception):
    """startHistoryId is older than Gmail keeps (404): the gap must be recovered by listing."""


class GmailUnavailable(Exception):
    """Gmail kept failing (429/5xx) past the retry budget; the notification is retried by Pub/Sub."""

    def __init__(self, status: int | None, what: str) -> None:  # status None: a transport failure
        super().__init__(f"Gmail {what} failed with HTTP {status} after retries")
        self.status = status


@dataclass(frozen=True)
class LabelChange:
    """R19: a logged message's new state in Gmail, as one history record tells it."""

    gmail_id: str
    thread_id: str
    label_ids: frozenset[str] = frozenset()  # the message's labels after the change
    deleted: bool = False


@dataclass(frozen=True)
class Added:
    """An added message as its history record tells it; `label_ids` None when the record has none."""

    id: str
    thread_id: str
    label_ids: frozenset[str] | None


@dataclass
class HistoryRecord:
    id: int
    messages: list[str]  # ids of added messages worth fetching (label-excluded ones dropped)
    changes: list[LabelChange] = field(default_factory=list)  # label changes and deletions (R19)
    added: list[Added] = field(default_factory=list)  # the same messages with their labels (categories)


def _changes(rec: dict[str, Any]) -> list[LabelChange]:
    out: list[LabelChange] = []
    for key in ("labelsAdded", "labelsRemoved"):
        for item in rec.get(key) or []:
            m = item.get("message") or {}
            if m.get("id"):
                out.append(LabelChange(str(m["id"]), str(m.get("threadId") or m["id"]),
                                       frozenset(str(x) for x in m.get("labelIds") or [])))
    for item in rec.get("messagesDeleted") or []:
        m = item.get("message") or {}
        if m.get("id"):
            out.append(LabelChange(str(m["id"]), str(m.get("threadId") or m["id"]), deleted=True))
    return out


@dataclass
class HistoryPage:
    records: list[HistoryRecord] = field(default_factory=list)
    latest_history_id: int = 0  # the mailbox's historyId when listed: the cursor after all records
    last: bool = True  # no page follows (iter_history)


Pacer = Callable[[int], object]  # waits until Gmail's per-user rate allows that many quota units (pacing.py)


def _no_pacing(units: int) -> None:
    return None


def list_history(service: Any, start_history_id: int, pace: Pacer = _no_pacing) -> HistoryPage:
    """Every record after the cursor (all pages): added messages to fetch, label changes and deletions."""
    out = HistoryPage()
    for page in iter_history(service, start_history_id, pace):
        out.records.extend(page.records)
        out.latest_history_id = max(out.latest_history_id, page.latest_history_id)
    return out


def iter_history(service: Any, start_history_id: int, pace: Pacer = _no_pacing) -> Iterator[HistoryPage]:
    """The records after the cursor one page at a time, so a long backlog is stored as it arrives
    instead of after all of it was listed; `last` is set on the final page."""
    from googleapiclient.errors import HttpError  # lazy: Gmail client library (cold start)

    token: str | None = None
    while True:
        out = HistoryPage()
        pace(cost("history.list"))
        req = service.users().history().list(
            userId="me", startHistoryId=str(start_history_id), historyTypes=HISTORY_TYPES,
            maxResults=HISTORY_PAGE_SIZE, pageToken=token, fields=HISTORY_FIELDS)
        try:
            resp = req.execute(num_retries=NUM_RETRIES)
        except HttpError as exc:
            info = classify(exc, history=True)
            if info.outcome is Outcome.HISTORY_EXPIRED:
                raise HistoryExpired(str(start_history_id)) from None
            if info.outcome in RETRYABLE:
                raise GmailUnavailable(info.status or None, "history.list") from None
            raise
        for rec in resp.get("history") or []:
            ids, refs = [], []
            for added in rec.get("messagesAdded") or []:
                m = added.get("message") or {}
                if m.get("id") and not NEVER_SYNCED_LABELS.intersection(m.get("labelIds") or []):
                    ids.append(str(m["id"]))
                    labels = m.get("labelIds")
                    refs.append(Added(str(m["id"]), str(m.get("threadId") or m["id"]),
                                      frozenset(str(x) for x in labels) if isinstance(labels, list) else None))
            out.records.append(HistoryRecord(id=int(rec["id"]), messages=ids, changes=_changes(rec), added=refs))
        out.latest_history_id = max(out.latest_history_id, int(resp.get("historyId") or 0))
        token = resp.get("nextPageToken")
        out.last = not token
        yield out
        if not token:
            return


def get_profile_history_id(service: Any, pace: Pacer = _no_pacing) -> int:
    from googleapiclient.errors import HttpError  # lazy: Gmail client library (cold start)

    pace(cost("getProfile"))
    try:
        resp = service.users().getProfile(userId="me", fields="historyId").execute(num_retries=NUM_RETRIES)
    except HttpError as exc:
        info = classify(exc)
        if info.outcome in RETRYABLE:
            raise GmailUnavailable(info.status or None, "getProfile") from None
        raise
    return int(resp["historyId"])


def list_message_ids_since(service: Any, after_seconds: int, max_messages: int,
                           pace: Pacer = _no_pacing) -> list[str]:
    """Ids of messages received after a time (gap recovery), oldest first, bounded."""
    from googleapiclient.errors import HttpError  # lazy: Gmail client library (cold start)

    ids: list[str] = []
    token: str | None = None
    while len(ids) < max_messages:
        pace(cost("messages.list"))
        req = service.users().messages().list(
            userId="me", q=f"after:{after_seconds}", maxResults=LIST_PAGE_SIZE, pageToken=token,
            fields="messages(id),nextPageToken")
        try:
            resp = req.execute(num_retries=NUM_RETRIES)
        except HttpError as exc:
            info = classify(exc)
            if info.outcome in RETRYABLE:
                raise GmailUnavailable(info.status or None, "messages.list") from None
            raise
        ids.extend(str(m["id"]) for m in resp.get("messages") or [])
        token = resp.get("nextPageToken")
        if not token:
            break
    return list(reversed(ids[:max_messages]))  # Gmail lists newest first


@dataclass
class _BatchResult:
    found: dict[str, dict[str, Any]] = field(default_factory=dict)
    retry: list[str] = field(default_factory=list)
    fatal: list[BaseException] = field(default_factory=list)
    last_status: int | None = None

    def on_part(self, request_id: str, response: Any, exception: BaseException | None) -> None:
        if exception is None:
            self.found[request_id] = response
            return
        info = classify(exception, by_id=True)
        if info.outcome is Outcome.NOT_FOUND:
            log.info("message gone before fetch; skipped", gmailMessageId=request_id, status=info.status)
        elif info.outcome in RETRYABLE:
            self.last_status = info.status or None
            self.retry.append(request_id)
        else:
            self.fatal.append(exception)


def _run_batch(service: Any, messages: Any, group: list[str]) -> _BatchResult:
    from googleapiclient.errors import HttpError  # lazy: Gmail client library (cold start)

    out = _BatchResult()
    batch = service.new_batch_http_request(callback=out.on_part)
    for mid in group:
        batch.add(messages.get(userId="me", id=mid, format="full", fields=MESSAGE_FIELDS), request_id=mid)
    try:
        batch.execute()
    except (HttpError, OSError, TimeoutError) as exc:
        info = classify(exc)
        if info.outcome not in RETRYABLE:
            raise
        out.last_status = info.status or None
        out.retry = [m for m in group if m not in out.found]
    if out.fatal:
        raise out.fatal[0]
    return out


def fetch_messages(service: Any, ids: Iterable[str], budget_seconds: float,
                   heartbeat: Callable[[], None] = lambda: None,
                   sleep: Callable[[float], None] = time.sleep,
                   pace: Pacer = _no_pacing, batch_size: int | None = None) -> dict[str, dict[str, Any]]:
    """`format=full` resources by id through the batch endpoint; deleted (404) ones are absent. Batches hold
    `batch_size` gets, by default what the per-user rate admits at once (pacing.Limits.batch_size)."""
    pending = list(dict.fromkeys(ids))
    in_force = limits()
    size = batch_size or in_force.batch_size("messages.get")
    unit = in_force.cost("messages.get")
    found: dict[str, dict[str, Any]] = {}
    # Built once: every `service.users().messages()` builds its resource's methods from the discovery
    # document again (a quarter of the sync's CPU when done per message).
    messages = service.users().messages()
    deadline: float | None = None
    attempt = 0
    while pending:
        retry: list[str] = []
        last_status: int | None = None
        for start in range(0, len(pending), size):
            group = pending[start:start + size]
            pace(unit * len(group))
            res = _run_batch(service, messages, group)
            found.update(res.found)
            retry.extend(res.retry)
            last_status = res.last_status or last_status
            heartbeat()
        if retry:
            attempt += 1
            now = time.monotonic()
            deadline = deadline if deadline is not None else now + budget_seconds
            delay = min(4.0, 0.25 * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
            if now + delay > deadline:
                raise GmailUnavailable(last_status, "messages.get")
            sleep(delay)
            heartbeat()
        pending = retry
    return found
