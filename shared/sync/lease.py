"""One sync at a time per mailbox: a lease in the mailbox document.

Why: two instances syncing one mailbox would both fetch the same messages
(wasted quota, SPEC §5) although the writes themselves are idempotent. A
notification that finds the lease held sets `dirty`; the holder re-checks
`dirty` in its release transaction and syncs again, so nothing that arrived
meanwhile waits for the next notification.

Liveness when the holder dies: its own notification was not acknowledged, so
Pub/Sub redelivers it. A notification that finds the lease held waits (bounded)
until either the holder shows it is alive (renews the lease, or consumes
`dirty`) or the lease expires, and then takes it over. The sweep covers the rest.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from shared.connect.mailboxes import mailbox_ref
from shared.core.times import aware as _aware

Outcome = Literal["acquired", "busy", "up_to_date", "not_connected"]
POLL_SECONDS = 0.25
HEARTBEAT_MAX_SECONDS = 5.0


def new_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class LeaseState:
    outcome: Outcome
    lease_until: datetime | None = None


def try_acquire(mailbox_id: str, owner: str, lease_seconds: int, notified_history_id: int | None,
                force: bool) -> LeaseState:
    """Take the lease, or mark the mailbox dirty when another live instance holds it."""
    from google.cloud import firestore

    from shared.core.clients import firestore_client

    ref = mailbox_ref(mailbox_id)

    @firestore.transactional
    def run(tx: Any) -> LeaseState:
        snap = ref.get(transaction=tx)
        data = (snap.to_dict() or {}) if snap.exists else {}
        if not snap.exists or data.get("status") != "connected":
            return LeaseState("not_connected")
        cursor = data.get("historyId")
        if not force and notified_history_id is not None and cursor and notified_history_id <= int(cursor):
            return LeaseState("up_to_date")
        now = datetime.now(UTC)
        until = _aware(data.get("leaseUntil"))
        if data.get("leaseOwner") not in (None, owner) and until is not None and until > now:
            if not data.get("dirty"):
                tx.update(ref, {"dirty": True})
            return LeaseState("busy", until)
        tx.update(ref, {"leaseOwner": owner, "leaseUntil": now + timedelta(seconds=lease_seconds),
                        "dirty": False})
        return LeaseState("acquired")

    result: LeaseState = run(firestore_client().transaction())
    return result


def wait_for_holder(mailbox_id: str, seen_until: datetime | None, lease_seconds: int) -> bool:
    """After marking dirty: True when we should try to take the lease (holder gone), False when
    a live holder has taken over our request (it renewed its lease or consumed `dirty`)."""
    deadline = time.monotonic() + lease_seconds + 2
    while time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        snap = mailbox_ref(mailbox_id).get()
        data = snap.to_dict() or {}
        if not data.get("dirty"):
            return False
        until = _aware(data.get("leaseUntil"))
        if data.get("leaseOwner") is None or until is None or until <= datetime.now(UTC):
            return True
        if seen_until is not None and until > seen_until:
            return False
    return True


def renew(mailbox_id: str, owner: str, lease_seconds: int) -> bool:
    """Extend our lease; False when another instance has taken it (ours expired)."""
    from google.cloud import firestore

    from shared.core.clients import firestore_client

    ref = mailbox_ref(mailbox_id)

    @firestore.transactional
    def run(tx: Any) -> bool:
        data = ref.get(transaction=tx).to_dict() or {}
        if data.get("leaseOwner") not in (None, owner):
            return False
        tx.update(ref, {"leaseOwner": owner,
                        "leaseUntil": datetime.now(UTC) + timedelta(seconds=lease_seconds)})
        return True

    result: bool = run(firestore_client().transaction())
    return result


def release(mailbox_id: str, owner: str, lease_seconds: int) -> bool:
    """Give the lease back; True (lease kept) when a notification marked the mailbox dirty meanwhile."""
    from google.cloud import firestore

    from shared.core.clients import firestore_client

    ref = mailbox_ref(mailbox_id)

    @firestore.transactional
    def run(tx: Any) -> bool:
        snap = ref.get(transaction=tx)
        data = snap.to_dict() or {}
        if not snap.exists or data.get("leaseOwner") != owner:
            return False
        if data.get("dirty") and data.get("status") == "connected":
            tx.update(ref, {"dirty": False, "leaseUntil": datetime.now(UTC) + timedelta(seconds=lease_seconds)})
            return True
        tx.update(ref, {"leaseOwner": None, "leaseUntil": None, "dirty": False})
        return False

    result: bool = run(firestore_client().transaction())
    return result


class Heartbeat:
    """Renews the lease while a long sync runs (every 40% of its length, at most every 5 s)."""

    def __init__(self, mailbox_id: str, owner: str, lease_seconds: int) -> None:
        self.mailbox_id = mailbox_id
        self.owner = owner
        self.lease_seconds = lease_seconds
        self._last = time.monotonic()
        self.lost = False

    def __call__(self) -> None:
        # Often enough that an instance waiting on this lease soon sees we are alive (wait_for_holder).
        if time.monotonic() - self._last < min(self.lease_seconds * 0.4, HEARTBEAT_MAX_SECONDS):
            return
        self._last = time.monotonic()
        if not renew(self.mailbox_id, self.owner, self.lease_seconds):
            self.lost = True
            raise LeaseLost(self.mailbox_id)


class LeaseLost(Exception):
    """Our lease expired and another instance took the mailbox; it carries on from the cursor."""
