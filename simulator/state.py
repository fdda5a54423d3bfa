"""Mailboxes in memory: messages, threads, labels, history, watches.

One lock guards everything (`GmailState.lock`): operations are short dict
and list work, and a message is parsed before the lock is taken, so the lock
is never held for MIME work. What Gmail does and this copies:

- ids: message ids are 16 hex digits, increasing with time; a thread's id is
  the id of its first message; each mailbox holds its own copy of a message
  (ids differ between sender and recipient).
- history: every operation (a message added or deleted, one modify, the rep
  reading a whole thread) is one record with a new, strictly increasing id,
  holding each change it made to each message; the mailbox's historyId is the
  newest. With a retention limit only the newest records are kept and a
  `startHistoryId` older than them is "not found" (HistoryExpired).
- threading: a message joins a thread when one of its In-Reply-To/References
  ids names a message in the mailbox and its subject (prefixes like "Re:" and
  case ignored) equals that message's; `messages.send` additionally needs the
  threadId, and a threadId that the headers do not agree with starts a new thread.
- sending: From is forced to the owner's address, Message-ID and Date are
  added when missing, SENT is set (INBOX too when the owner is a recipient),
  and every recipient (To, Cc, Bcc) that is a simulated mailbox gets a copy
  without the Bcc header.
"""

from __future__ import annotations

import bisect
import json
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.utils import formataddr, formatdate, getaddresses
from typing import Any

from simulator import mime
from simulator.mime import ParsedMessage, RawMessage
from simulator.search import Candidate, Predicate

SYSTEM_LABELS: tuple[tuple[str, str | None, str | None], ...] = (
    # id, messageListVisibility, labelListVisibility (None: Gmail omits them)
    ("CHAT", "hide", "labelHide"),
    ("SENT", "hide", "labelHide"),
    ("INBOX", None, None),
    ("IMPORTANT", "hide", "labelHide"),
    ("TRASH", "hide", "labelHide"),
    ("DRAFT", "hide", "labelHide"),
    ("SPAM", "hide", "labelHide"),
    ("CATEGORY_FORUMS", None, None),
    ("CATEGORY_UPDATES", None, None),
    ("CATEGORY_PERSONAL", None, None),
    ("CATEGORY_PROMOTIONS", None, None),
    ("CATEGORY_SOCIAL", None, None),
    ("STARRED", "hide", "labelHide"),
    ("UNREAD", None, None),
)
LABEL_IDS = frozenset(lbl for lbl, _, _ in SYSTEM_LABELS)
INBOUND_LABELS = ("UNREAD", "CATEGORY_PERSONAL", "INBOX")
CATEGORY_LABELS = frozenset({"CATEGORY_PERSONAL", "CATEGORY_SOCIAL", "CATEGORY_PROMOTIONS", "CATEGORY_UPDATES",
                             "CATEGORY_FORUMS"})
# What Gmail's classifier may set on mail arriving from outside (`deliver ?labelIds=`).
CLASSIFIER_LABELS = CATEGORY_LABELS | {"SPAM", "IMPORTANT", "STARRED", "CHAT"}
HISTORY_TYPES = ("messageAdded", "messageDeleted", "labelAdded", "labelRemoved")
# What the rep's clicks in Gmail (and messages.trash / untrash) do to a message: (labels added, labels removed).
LABEL_ACTIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "read": ((), ("UNREAD",)),
    "unread": (("UNREAD",), ()),
    "star": (("STARRED",), ()),
    "unstar": ((), ("STARRED",)),
    "trash": (("TRASH",), ()),
    "untrash": ((), ("TRASH",)),
}
FIRST_HISTORY_ID = 1000


def inbound_labels(classified: Iterable[str]) -> list[str]:
    """The labels of a message arriving from outside, given what Gmail's classifier set.

    Gmail files a message under exactly one category tab (Primary is
    CATEGORY_PERSONAL) and keeps it in INBOX; spam leaves INBOX and its tab.
    InvalidArgument names a label the classifier does not set (SENT, DRAFT, TRASH, UNREAD, unknown ids).
    """
    extra = list(dict.fromkeys(classified))
    bad = [lbl for lbl in extra if lbl not in CLASSIFIER_LABELS]
    if bad:
        raise InvalidArgument(f"not a label Gmail's classifier sets: {bad[0]}")
    if len([lbl for lbl in extra if lbl in CATEGORY_LABELS]) > 1:
        raise InvalidArgument("a message is in one category only")
    if "SPAM" in extra:
        return ["UNREAD", *(lbl for lbl in extra if lbl not in CATEGORY_LABELS)]
    category = next((lbl for lbl in extra if lbl in CATEGORY_LABELS), "CATEGORY_PERSONAL")
    return ["UNREAD", category, "INBOX", *(lbl for lbl in extra if lbl not in CATEGORY_LABELS)]


class NotFound(Exception):
    """Gmail's 404 "Requested entity was not found."."""


class HistoryExpired(NotFound):
    """A startHistoryId older than the retained history (Gmail answers 404; the client must full-sync)."""


class InvalidArgument(ValueError):
    """Gmail's 400 invalidArgument; the text is the message."""


@dataclass
class StoredMessage:
    id: str
    thread_id: str
    raw: bytes
    parsed: ParsedMessage
    label_ids: list[str]
    internal_date: int
    history_id: int
    _raw_b64: str | None = field(default=None, repr=False)
    _payload_json: str | None = field(default=None, repr=False)

    def raw_b64(self) -> str:
        if self._raw_b64 is None:
            self._raw_b64 = mime.b64url(self.raw)
        return self._raw_b64

    def payload_json(self) -> str:
        """The `format=full` payload as JSON text, encoded once (the payload never changes)."""
        if self._payload_json is None:
            self._payload_json = json.dumps(self.parsed.payload)
        return self._payload_json

    def ref(self) -> dict[str, Any]:
        return {"id": self.id, "threadId": self.thread_id}

    def ref_with_labels(self) -> dict[str, Any]:
        """`{id, threadId, labelIds}`; no `labelIds` key when the message has no label, as Gmail (proto3 JSON
        leaves empty lists out)."""
        out: dict[str, Any] = {"id": self.id, "threadId": self.thread_id}
        if self.label_ids:
            out["labelIds"] = list(self.label_ids)
        return out


@dataclass(frozen=True)
class Change:
    """What one operation did to one message."""

    kind: str  # one of HISTORY_TYPES
    message: dict[str, Any]  # {id, threadId, labelIds} after the operation
    labels: tuple[str, ...] = ()  # labels added or removed

    def matches(self, types: frozenset[str], label_id: str | None) -> bool:
        if types and self.kind not in types:
            return False
        return not label_id or label_id in self.message.get("labelIds", ()) or label_id in self.labels


@dataclass(frozen=True)
class HistoryRecord:
    """One history id: everything one operation changed (Gmail: "each history change may affect multiple
    messages in multiple ways"), e.g. labels added and removed by one modify, or a whole thread read."""

    id: int
    changes: tuple[Change, ...]


@dataclass(frozen=True)
class Watch:
    topic_name: str
    label_ids: tuple[str, ...]
    label_filter_behavior: str  # "include" | "exclude"
    expiration: int  # ms

    def to_json(self) -> dict[str, Any]:
        return {"topicName": self.topic_name, "expiration": self.expiration, "labelIds": list(self.label_ids),
                "labelFilterBehavior": self.label_filter_behavior}

    def wants(self, label_ids: Iterable[str], now_ms: int) -> bool:
        if now_ms >= self.expiration:
            return False
        if not self.label_ids:
            return True
        hit = bool(set(label_ids) & set(self.label_ids))
        return hit if self.label_filter_behavior == "include" else not hit


@dataclass
class Mailbox:
    address: str
    history_id: int
    messages: dict[str, StoredMessage] = field(default_factory=dict)
    # (internalDate, id) ascending; messages.list walks it backwards (newest first, as Gmail).
    order: list[tuple[int, str]] = field(default_factory=list)
    threads: dict[str, list[str]] = field(default_factory=dict)
    by_rfc822_id: dict[str, str] = field(default_factory=dict)
    history: deque[HistoryRecord] = field(default_factory=deque)
    history_floor: int = 0  # a startHistoryId below this has been expired
    watch: Watch | None = None
    send_as: list[dict[str, Any]] = field(default_factory=list)  # aliases beyond the primary (simulator/send_as.py)


ChangeListener = Callable[[str, int, tuple[str, ...]], None]


class GmailState:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.lock = threading.RLock()
        self._clock = clock
        self._boxes: dict[str, Mailbox] = {}
        self._last_id = 0
        self._next_history = FIRST_HISTORY_ID
        self.history_retention: int | None = None
        self.listeners: list[ChangeListener] = []
        self.watch_lapses = 0  # times a watch was found expired: by a change it could not announce, or a renewal
        self._lapsed: set[str] = set()

    # -- mailboxes ------------------------------------------------------------------

    def reset(self) -> None:
        with self.lock:
            self._boxes.clear()
            self.watch_lapses = 0
            self._lapsed.clear()

    def create_mailbox(self, address: str) -> tuple[Mailbox, bool]:
        """The mailbox for `address`, created if absent (idempotent); True when created now."""
        key = address.strip().lower()
        if "@" not in key:
            raise InvalidArgument(f"not an email address: {address!r}")
        with self.lock:
            box = self._boxes.get(key)
            if box is not None:
                return box, False
            box = Mailbox(address=key, history_id=self._new_history_id())
            self._boxes[key] = box
            return box, True

    def get(self, address: str) -> Mailbox | None:
        return self._boxes.get(address.strip().lower())

    def require(self, address: str) -> Mailbox:
        box = self.get(address)
        if box is None:
            raise NotFound(f"no mailbox {address}")
        return box

    def addresses(self) -> list[str]:
        with self.lock:
            return sorted(self._boxes)

    # -- ids ------------------------------------------------------------------------

    def _new_message_id(self) -> str:
        candidate = int(self._clock() * 1000) << 20
        self._last_id = max(self._last_id + 1, candidate)
        return format(self._last_id, "x")

    def _new_history_id(self) -> int:
        self._next_history += 1
        return self._next_history

    # -- writes ---------------------------------------------------------------------

    def _record(self, box: Mailbox, changes: list[tuple[str, StoredMessage, tuple[str, ...]]]) -> int:
        """One history record for one operation: (kind, message, labels touched) per change, in order."""
        hid = self._new_history_id()
        box.history_id = hid
        touched: list[str] = []
        for _, msg, labels in changes:
            msg.history_id = hid
            touched += [*msg.label_ids, *labels]
        box.history.append(HistoryRecord(hid, tuple(Change(k, m.ref_with_labels(), lb) for k, m, lb in changes)))
        self._trim(box)
        for listener in self.listeners:
            listener(box.address, hid, tuple(dict.fromkeys(touched)))
        return hid

    def _trim(self, box: Mailbox) -> None:
        keep = self.history_retention
        if keep is None:
            return
        while len(box.history) > keep:
            dropped = box.history.popleft()
            box.history_floor = dropped.id

    def apply_retention(self) -> None:
        with self.lock:
            for box in self._boxes.values():
                self._trim(box)

    def _thread_for(self, box: Mailbox, parsed: ParsedMessage, thread_id: str | None, by_headers: bool) -> str | None:
        subject = mime.normalize_subject(parsed.subject)
        for ref in parsed.references:
            mid = box.by_rfc822_id.get(ref)
            other = box.messages.get(mid) if mid else None
            if other is None or mime.normalize_subject(other.parsed.subject) != subject:
                continue
            if thread_id is not None and other.thread_id != thread_id:
                continue
            if thread_id is not None or by_headers:
                return other.thread_id
        return None

    def _insert(
        self,
        box: Mailbox,
        raw: bytes,
        parsed: ParsedMessage,
        msg_id: str,
        labels: list[str],
        internal_date: int,
        thread_id: str | None,
        by_headers: bool,
    ) -> StoredMessage:
        tid = self._thread_for(box, parsed, thread_id, by_headers) or msg_id
        msg = StoredMessage(msg_id, tid, raw, parsed, labels, internal_date, 0)
        box.messages[msg_id] = msg
        bisect.insort(box.order, (internal_date, msg_id))
        box.threads.setdefault(tid, []).append(msg_id)
        rid = parsed.rfc822_id
        if rid:
            box.by_rfc822_id.setdefault(rid, msg_id)
        self._record(box, [("messageAdded", msg, ())])
        return msg

    def deliver(
        self, address: str, raw: bytes, internal_date: int | None = None, labels: Iterable[str] = ()
    ) -> StoredMessage:
        """Mail arriving from outside: INBOX, UNREAD, threaded by its headers; internalDate = arrival.

        `labels` are what Gmail's classifier decided (`inbound_labels`): a category
        instead of CATEGORY_PERSONAL (Primary), SPAM instead of the inbox, IMPORTANT, ….
        """
        label_ids = inbound_labels(labels)
        rm = RawMessage.split(raw)
        if rm.get("Message-ID") is None:
            rm.set("Message-ID", f"<{secrets.token_hex(12)}@mx.simulator.invalid>")
        return self._deliver_copy(address, rm, internal_date, label_ids)

    def _deliver_copy(
        self, address: str, rm: RawMessage, internal_date: int | None, labels: list[str] | None = None
    ) -> StoredMessage:
        rm = RawMessage(list(rm.header_lines), rm.newline, rm.body)
        rm.remove("Bcc")
        rm.header_lines.insert(0, f"Delivered-To: {address.lower()}".encode())
        raw = rm.to_bytes()
        with self.lock:
            box = self.require(address)
            msg_id = self._new_message_id()
        parsed = mime.parse(raw, f"{box.address}/{msg_id}")
        when = int(self._clock() * 1000) if internal_date is None else internal_date
        with self.lock:
            return self._insert(box, raw, parsed, msg_id, labels or list(INBOUND_LABELS), when, None, by_headers=True)

    def send(
        self, address: str, raw: bytes, thread_id: str | None = None, *, from_ui: bool = False
    ) -> tuple[StoredMessage, list[StoredMessage]]:
        """The owner sends `raw`: its SENT copy, and the copies delivered to simulated recipients.

        `from_ui` is the rep sending from Gmail itself (threaded by headers, like
        Gmail's reply button); otherwise it is messages.send, which threads only
        with a threadId that the headers agree with.
        """
        rm = RawMessage.split(raw)
        with self.lock:
            box = self.require(address)
            if thread_id is not None and thread_id not in box.threads:
                raise NotFound(f"thread {thread_id}")
        names = getaddresses([rm.get("From") or ""])
        display = names[0][0] if names else ""
        rm.set("From", formataddr((display, box.address)) if display else box.address)
        if rm.get("Message-ID") is None:
            rm.set("Message-ID", f"<{secrets.token_urlsafe(24)}@mail.gmail.com>")
        if rm.get("Date") is None:
            rm.set("Date", formatdate(self._clock(), localtime=False))
        if rm.get("MIME-Version") is None:
            rm.set("MIME-Version", "1.0", prepend=True)
        sent_raw = rm.to_bytes()
        pairs = getaddresses([v for h in ("To", "Cc", "Bcc") if (v := rm.get(h))])
        recipients = list(dict.fromkeys(a.lower() for _, a in pairs if "@" in a))
        if not recipients:
            raise InvalidArgument("Invalid To header")
        labels = ["SENT"] + (["INBOX", "UNREAD"] if box.address in recipients else [])
        now = int(self._clock() * 1000)
        with self.lock:
            msg_id = self._new_message_id()
        parsed = mime.parse(sent_raw, f"{box.address}/{msg_id}")
        with self.lock:
            sent = self._insert(box, sent_raw, parsed, msg_id, labels, now, thread_id, by_headers=from_ui)
        copies = [
            self._deliver_copy(rcpt, rm, now)
            for rcpt in recipients
            if rcpt != box.address and self.get(rcpt) is not None
        ]
        return sent, copies

    def modify(self, address: str, msg_id: str, add: Iterable[str] = (), remove: Iterable[str] = ()) -> StoredMessage:
        """messages.modify (and trash, untrash, the rep's clicks): one history record if anything changed."""
        (msg,) = self.modify_many(address, [msg_id], add, remove)
        return msg

    def modify_thread(
        self, address: str, thread_id: str, add: Iterable[str] = (), remove: Iterable[str] = ()
    ) -> list[StoredMessage]:
        """The rep acting on a whole conversation in Gmail (read, star, trash it): one record for all its messages."""
        with self.lock:
            ids = list(self.require(address).threads.get(thread_id) or [])
            if not ids:
                raise NotFound(thread_id)
            return self.modify_many(address, ids, add, remove)

    def modify_many(
        self, address: str, msg_ids: list[str], add: Iterable[str] = (), remove: Iterable[str] = ()
    ) -> list[StoredMessage]:
        """One operation over messages: all labels checked and all messages found before anything changes."""
        add, remove = list(dict.fromkeys(add)), list(dict.fromkeys(remove))
        with self.lock:
            box = self.require(address)
            msgs = [box.messages.get(i) for i in msg_ids]
            missing = [i for i, m in zip(msg_ids, msgs, strict=True) if m is None]
            if missing:
                raise NotFound(missing[0])
            for lbl in [*add, *remove]:
                if lbl not in LABEL_IDS:
                    raise InvalidArgument(f"Invalid label: {lbl}")
            changes: list[tuple[str, StoredMessage, tuple[str, ...]]] = []
            found = [m for m in msgs if m is not None]
            for msg in found:
                removed = tuple(lbl for lbl in remove if lbl in msg.label_ids)
                added = tuple(lbl for lbl in add if lbl not in msg.label_ids and lbl not in removed)
                msg.label_ids = [x for x in msg.label_ids if x not in removed] + list(added)
                if added:
                    changes.append(("labelAdded", msg, added))
                if removed:
                    changes.append(("labelRemoved", msg, removed))
            if changes:
                self._record(box, changes)
            return found

    def delete(self, address: str, msg_id: str) -> None:
        with self.lock:
            box = self.require(address)
            msg = box.messages.pop(msg_id, None)
            if msg is None:
                raise NotFound(msg_id)
            box.order.remove((msg.internal_date, msg_id))
            siblings = box.threads.get(msg.thread_id, [])
            siblings.remove(msg_id)
            if not siblings:
                del box.threads[msg.thread_id]
            rid = msg.parsed.rfc822_id
            if rid and box.by_rfc822_id.get(rid) == msg_id:
                del box.by_rfc822_id[rid]
            self._record(box, [("messageDeleted", msg, ())])

    def set_watch(self, address: str, watch: Watch | None) -> Mailbox:
        with self.lock:
            box = self.require(address)
            if watch is not None and box.watch is not None:
                self.note_lapse(box)  # renewed only after it had expired
            self._lapsed.discard(box.address)
            box.watch = watch
            return box

    def note_lapse(self, box: Mailbox) -> None:
        """Count a lapse once: the mailbox's watch has expired (a change went unannounced, or it is renewed late)."""
        with self.lock:
            if box.watch is not None and box.watch.expiration <= int(self._clock() * 1000) \
                    and box.address not in self._lapsed:
                self._lapsed.add(box.address)
                self.watch_lapses += 1

    def watch_summary(self) -> dict[str, int]:
        """Watches now: live, expired, none; and lapses counted so far (for soaks: GET /sim/stats)."""
        now = int(self._clock() * 1000)
        with self.lock:
            boxes = list(self._boxes.values())
            out = {"live": 0, "expired": 0, "none": 0, "lapses": self.watch_lapses}
            for box in boxes:
                key = "none" if box.watch is None else ("live" if box.watch.expiration > now else "expired")
                out[key] += 1
            return out

    # -- reads ----------------------------------------------------------------------

    def message(self, address: str, msg_id: str) -> tuple[StoredMessage, list[str], int]:
        """The message, a snapshot of its labels and its historyId (labels change under other threads)."""
        with self.lock:
            msg = self.require(address).messages.get(msg_id)
            if msg is None:
                raise NotFound(msg_id)
            return msg, list(msg.label_ids), msg.history_id

    def thread(self, address: str, thread_id: str) -> list[tuple[StoredMessage, list[str], int]]:
        with self.lock:
            box = self.require(address)
            ids = box.threads.get(thread_id)
            if not ids:
                raise NotFound(thread_id)
            msgs = sorted((box.messages[i] for i in ids), key=lambda m: (m.internal_date, m.id))
            return [(m, list(m.label_ids), m.history_id) for m in msgs]

    def list_messages(
        self,
        address: str,
        label_ids: list[str],
        predicate: Predicate | None,
        include_spam_trash: bool,
    ) -> list[StoredMessage]:
        """Matching messages, newest first."""
        with self.lock:
            box = self.require(address)
            out: list[StoredMessage] = []
            for _, mid in reversed(box.order):
                m = box.messages[mid]
                labels = m.label_ids
                if not include_spam_trash and ("SPAM" in labels or "TRASH" in labels):
                    continue
                if label_ids and not all(lbl in labels for lbl in label_ids):
                    continue
                if predicate is not None and not predicate(Candidate(m.parsed, tuple(labels), m.internal_date)):
                    continue
                out.append(m)
            return out

    def history(
        self, address: str, start: int, types: frozenset[str], label_id: str | None, after: int, limit: int
    ) -> tuple[list[HistoryRecord], bool, int]:
        """Records with id > max(start, after) matching the filters: (page, more, mailbox historyId)."""
        with self.lock:
            box = self.require(address)
            if start < box.history_floor:
                raise HistoryExpired(str(start))
            floor = max(start, after)
            idx = bisect.bisect_right([r.id for r in box.history], floor) if box.history else 0
            page: list[HistoryRecord] = []
            more = False
            for rec in list(box.history)[idx:]:
                kept = tuple(c for c in rec.changes if c.matches(types, label_id))
                if not kept:
                    continue
                if len(page) == limit:
                    more = True
                    break
                page.append(rec if len(kept) == len(rec.changes) else HistoryRecord(rec.id, kept))
            return page, more, box.history_id
