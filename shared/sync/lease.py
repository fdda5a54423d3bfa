"""One sync at a time per mailbox: a lease in the mailbox document, kept with conditional writes.

Why a lease: two instances syncing one mailbox would both fetch the same
messages (wasted quota, SPEC §5) although the writes themselves are
idempotent. A notification that finds the lease held sets `dirty`; the holder
sees `dirty` when it finishes and syncs again, so nothing that arrived
meanwhile waits for the next notification.

Why conditional writes and not transactions: a transaction costs three round
trips (begin, read, commit) and serialises writers; here every write carries
the update time of the version it was computed from (`last_update_time`
precondition), so the holder's cursor checkpoints and its final write are one
round trip each, and any concurrent writer (a notification setting `dirty`, a
status change, the sweep's claim) makes the write fail at once: the holder
reads the document again, finds out what changed and decides again. The
mailbox is read once per sync (with its token, in one round trip) and every
later decision uses what the holder's own writes returned.

Liveness when the holder dies: its own message was not acknowledged, so
Pub/Sub redelivers it. A message that finds the lease held waits (bounded by
the invocation's deadline) until the holder shows it is alive (renews the
lease, or consumes `dirty`) or the lease expires, and then takes it over.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from shared.core import log
from shared.core.clients import firestore_client
from shared.core.models import Mailbox, as_int
from shared.core.times import aware as _aware
from shared.crm.paths import mailbox_ref, token_ref

Outcome = Literal["acquired", "busy", "up_to_date", "not_connected"]
POLL_SECONDS = 0.25
HEARTBEAT_MAX_SECONDS = 5.0
MAX_CONFLICTS = 20  # conditional writes that lost a race in a row before giving up (a storm of dirty-setters)


def new_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _db() -> Any:
    return firestore_client()


@dataclass
class Snapshot:
    """The mailbox document as last read or written by us, and its token document."""

    mailbox_id: str
    exists: bool
    data: dict[str, Any]
    update_time: Any
    token: dict[str, Any] | None = None

    @property
    def mailbox(self) -> Mailbox:
        return Mailbox.from_doc(self.data)


def read(mailbox_id: str, with_token: bool = True) -> Snapshot:
    """The mailbox (and its token) in one round trip."""
    refs = [mailbox_ref(mailbox_id)] + ([token_ref(mailbox_id)] if with_token else [])
    snaps = {s.reference.path: s for s in _db().get_all(refs)}
    mb = snaps.get(refs[0].path)
    tok = snaps.get(refs[1].path) if with_token else None
    exists = mb is not None and mb.exists
    return Snapshot(mailbox_id=mailbox_id, exists=exists, data=(mb.to_dict() or {}) if exists and mb else {},
                    update_time=mb.update_time if exists and mb else None,
                    token=(tok.to_dict() or {}) if tok is not None and tok.exists else None)


def conditional_update(snap: Snapshot, fields: dict[str, Any]) -> bool:
    """Write `fields` if the document is still the version `snap` holds; False (nothing written) if not."""
    from google.api_core.exceptions import FailedPrecondition, NotFound  # lazy: Firestore library (cold start)

    db = _db()
    try:
        result = mailbox_ref(snap.mailbox_id).update(fields, option=db.write_option(last_update_time=snap.update_time))
    except (FailedPrecondition, NotFound):
        return False
    snap.data.update(fields)
    snap.update_time = result.update_time
    return True


@dataclass
class LeaseState:
    outcome: Outcome
    lease: Lease | None = None
    lease_until: datetime | None = None
    snap: Snapshot | None = None


def try_acquire(snap: Snapshot, owner: str, lease_seconds: int, notified_history_id: int | None,
                force: bool) -> LeaseState:
    """Take the lease, or mark the mailbox dirty when another live instance holds it."""
    for _ in range(MAX_CONFLICTS):
        data = snap.data
        if not snap.exists or data.get("status") != "connected":
            return LeaseState("not_connected", snap=snap)
        cursor = data.get("historyId")
        if not force and notified_history_id is not None and cursor and notified_history_id <= int(cursor):
            return LeaseState("up_to_date", snap=snap)
        now = datetime.now(UTC)
        until = _aware(data.get("leaseUntil"))
        if data.get("leaseOwner") not in (None, owner) and until is not None and until > now:
            if data.get("dirty") or conditional_update(snap, {"dirty": True}):
                return LeaseState("busy", lease_until=until, snap=snap)
        elif conditional_update(snap, {"leaseOwner": owner, "leaseUntil": now + timedelta(seconds=lease_seconds),
                                       "dirty": False}):
            return LeaseState("acquired", lease=Lease(snap, owner, lease_seconds), snap=snap)
        token = snap.token
        snap = read(snap.mailbox_id, with_token=False)
        snap.token = token
    raise LeaseContention(snap.mailbox_id)


def wait_for_holder(mailbox_id: str, seen_until: datetime | None, lease_seconds: int,
                    deadline: float) -> tuple[bool, Snapshot | None]:
    """After marking dirty: (True, fresh snapshot) when we should try to take the lease (holder gone),
    (False, None) when a live holder has taken over our request (it renewed its lease or consumed
    `dirty`) or the invocation's deadline (monotonic) came first."""
    until_wait = min(time.monotonic() + lease_seconds + 2, deadline)
    while time.monotonic() < until_wait:
        time.sleep(POLL_SECONDS)
        snap = read(mailbox_id, with_token=False)
        data = snap.data
        if not data.get("dirty"):
            return False, None
        until = _aware(data.get("leaseUntil"))
        if data.get("leaseOwner") is None or until is None or until <= datetime.now(UTC):
            return True, snap
        if seen_until is not None and until > seen_until:
            return False, None
    if time.monotonic() >= deadline:
        return False, None
    return True, read(mailbox_id, with_token=False)


class Lease:
    """Our hold on one mailbox: every write is conditional on the version we last saw."""

    def __init__(self, snap: Snapshot, owner: str, lease_seconds: int) -> None:
        self.snap = snap
        self.owner = owner
        self.lease_seconds = lease_seconds
        self._renewed = time.monotonic()
        self.lost = False
        self.heartbeats = 0

    @property
    def mailbox_id(self) -> str:
        return self.snap.mailbox_id

    @property
    def mailbox(self) -> Mailbox:
        return self.snap.mailbox

    def _refresh(self) -> None:
        """Our write lost a race: read what changed; stop if the lease or the connection is gone."""
        fresh = read(self.mailbox_id, with_token=False)
        if not fresh.exists or fresh.data.get("leaseOwner") != self.owner:
            self.lost = True
            raise LeaseLost(self.mailbox_id)
        if fresh.data.get("status") != "connected":
            raise MailboxGone(self.mailbox_id, str(fresh.data.get("status")))
        fresh.token = self.snap.token
        self.snap = fresh

    def write(self, fields: dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        """Conditional write of `fields` (or of `fields(current data)`, recomputed after a lost race)."""
        for _ in range(MAX_CONFLICTS):
            update = fields(self.snap.data) if callable(fields) else fields
            if not update:
                return
            if conditional_update(self.snap, update):
                return
            self._refresh()
        raise LeaseContention(self.mailbox_id)

    def heartbeat(self) -> None:
        """Renew the lease while a long sync runs (every 40% of its length, at most every 5 s), often
        enough that an instance waiting on it (wait_for_holder) soon sees we are alive."""
        if time.monotonic() - self._renewed < min(self.lease_seconds * 0.4, HEARTBEAT_MAX_SECONDS):
            return
        self._renewed = time.monotonic()
        self.heartbeats += 1
        self.write({"leaseUntil": datetime.now(UTC) + timedelta(seconds=self.lease_seconds)})

    def checkpoint(self, history_id: int | None, synced_internal_ms: int | None) -> None:
        """Move the cursor and the last synced time forward only (after each stored chunk)."""
        self.write(lambda data: cursor_fields(data, history_id, synced_internal_ms))

    def finish(self, fields: Callable[[dict[str, Any]], dict[str, Any]]) -> bool:
        """The pass's last write and the lease's release in one round trip.

        Returns True (lease kept, `dirty` consumed) when a message arrived during
        the pass: the caller syncs again.
        """
        for _ in range(MAX_CONFLICTS):
            update = fields(self.snap.data)
            if self.snap.data.get("dirty"):
                update.update({"dirty": False,
                               "leaseUntil": datetime.now(UTC) + timedelta(seconds=self.lease_seconds)})
                if conditional_update(self.snap, update):
                    self._renewed = time.monotonic()
                    return True
            else:
                update.update({"leaseOwner": None, "leaseUntil": None, "dirty": False})
                if conditional_update(self.snap, update):
                    self.owner = ""
                    return False
            self._refresh()
        raise LeaseContention(self.mailbox_id)

    def release_quietly(self) -> None:
        """Free the lease after a failure so the redelivery need not wait for it to expire."""
        if not self.owner or self.lost:
            return
        try:
            for _ in range(3):
                if self.snap.data.get("leaseOwner") != self.owner:
                    return
                if conditional_update(self.snap, {"leaseOwner": None, "leaseUntil": None}):
                    return
                self.snap = read(self.mailbox_id, with_token=False)
        except Exception as exc:  # the lease expires by itself
            log.warning("could not release sync lease", mailboxId=self.mailbox_id, error=type(exc).__name__)


def cursor_fields(data: dict[str, Any], history_id: int | None, synced_internal_ms: int | None, *,
                  force_set: bool = False) -> dict[str, Any]:
    """The forward-only cursor update against the document as it is now (empty: nothing to move)."""
    update: dict[str, Any] = {}
    current = as_int(data.get("historyId"))
    if history_id is not None and (force_set or current is None or history_id > current):
        update["historyId"] = str(history_id)
    last_ms = as_int(data.get("lastSyncedInternalDate"))
    if synced_internal_ms is not None and (last_ms is None or synced_internal_ms > last_ms):
        update["lastSyncedInternalDate"] = synced_internal_ms
    return update


class LeaseLost(Exception):
    """Our lease expired and another instance took the mailbox; it carries on from the cursor."""


class MailboxGone(Exception):
    """The mailbox was disconnected or needs re-authentication while we synced it."""

    def __init__(self, mailbox_id: str, status: str) -> None:
        super().__init__(f"mailbox {mailbox_id} is {status}")
        self.status = status


class LeaseContention(Exception):
    """Conditional writes kept losing races (transient: the message is redelivered)."""

