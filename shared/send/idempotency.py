"""R18: a send with an idempotency key already used answers with the first result, sending once.

The record `sync_idempotency/{sha256(account, user, key)}` is created
(create-if-absent) before anything is sent, in state `pending` with a lease
and the Message-ID the send will use; on the send's fast path in one commit
with the day's slot (shared.send.reserve), else by `begin` here, which also
handles everything a conflict can mean. Whoever creates it owns the send; a
concurrent retry finds it pending and polls until it is `done` (then answers
with the same result) or gone (the first attempt failed before Gmail sent
anything and released it: the retry tries again).

The crash window between Gmail's answer and the `done` write is closed by the
Message-ID being derived from the key: a retry that finds a pending record
whose lease has expired takes it over (an update guarded by the record's
update time, so only one retry wins) and first asks Gmail whether a message
with that Message-ID exists; if so it finalises with that message instead of
sending again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from shared.core.clients import firestore_client
from shared.core.housekeeping import delete_matching
from shared.core.models import IdempotencyRecord
from shared.core.times import aware as _aware
from shared.crm import paths
from shared.crm.paths import idempotency_ref

RECORD_TTL = timedelta(days=7)
POLL_INTERVAL = 0.1


@dataclass
class Claim:
    """The outcome of `begin`: either we own the send, or the earlier result to answer with."""

    kind: Literal["owner", "takeover", "done"]
    record_id: str
    record: IdempotencyRecord
    update_time: Any = None  # the record's update time after our write (precondition for ours)


class InProgress(Exception):
    """Another attempt with this key is still running (its lease is valid); retry later."""

    def __init__(self, retry_after: float) -> None:
        super().__init__("a send with this idempotency key is in progress")
        self.retry_after = retry_after


class KeyReused(Exception):
    """The key was used for a request with different content."""


_ref = idempotency_ref


def _now() -> datetime:
    return datetime.now(UTC)


def new_record(account_id: str, user_id: str, key: str, *, fingerprint: str, rfc822_message_id: str,
               lease_seconds: float, now: datetime | None = None) -> tuple[IdempotencyRecord, dict[str, Any]]:
    """The pending record an owner creates (create-if-absent), as a model and as its document."""
    now = now or _now()
    rec = IdempotencyRecord(accountId=account_id, userId=user_id, key=key, state="pending",
                            leaseUntil=now + timedelta(seconds=lease_seconds),
                            rfc822MessageId=rfc822_message_id, createdAt=now, expireAt=now + RECORD_TTL)
    return rec, {**rec.to_doc(), "fingerprint": fingerprint}


def finished(record_id: str, data: dict[str, Any] | None, fingerprint: str) -> Claim | None:
    """A record read beforehand (in a batch with other documents): the earlier answer if it is done,
    KeyReused if it belongs to other content, None if it must go through `begin` (pending)."""
    data = data or {}
    if data.get("fingerprint") and data["fingerprint"] != fingerprint:
        raise KeyReused(record_id)
    existing = IdempotencyRecord.from_doc(data)
    if existing.state == "done" and existing.result:
        return Claim("done", record_id, existing)
    return None


def begin(account_id: str, user_id: str, key: str, *, fingerprint: str, rfc822_message_id: str,
          lease_seconds: float, wait_seconds: float) -> Claim:
    """Own the send for this key, take over a crashed attempt, or return the finished result.

    Waits up to `wait_seconds` for a running attempt to finish; raises InProgress after that.
    """
    from google.api_core.exceptions import (  # lazy: Firestore library (cold start)
        AlreadyExists,
        FailedPrecondition,
        NotFound,
    )

    record_id = paths.idempotency_id(account_id, user_id, key)
    ref = _ref(record_id)
    give_up = time.monotonic() + wait_seconds
    while True:
        now = _now()
        rec, doc = new_record(account_id, user_id, key, fingerprint=fingerprint,
                              rfc822_message_id=rfc822_message_id, lease_seconds=lease_seconds, now=now)
        try:
            result = ref.create(doc)
            return Claim("owner", record_id, rec, result.update_time)
        except AlreadyExists:
            pass
        snap = ref.get()
        if not snap.exists:
            continue  # released between our create and get: try to own it again
        data = snap.to_dict() or {}
        done = finished(record_id, data, fingerprint)
        if done is not None:
            return done
        existing = IdempotencyRecord.from_doc(data)
        lease = _aware(existing.leaseUntil) or now
        if lease <= now:
            # Crashed (or hung) owner: take over, guarded so only one retry wins.
            try:
                result = ref.update({"leaseUntil": now + timedelta(seconds=lease_seconds)},
                                    option=firestore_client().write_option(last_update_time=snap.update_time))
            except (FailedPrecondition, NotFound):
                continue
            existing.leaseUntil = now + timedelta(seconds=lease_seconds)
            return Claim("takeover", record_id, existing, result.update_time)
        if time.monotonic() >= give_up:
            raise InProgress(retry_after=max(1.0, (lease - now).total_seconds()))
        time.sleep(POLL_INTERVAL)


def set_fields(claim: Claim, fields: dict[str, Any]) -> None:
    """Record progress (e.g. the claimed slot) on a record we own."""
    result = _ref(claim.record_id).update(fields)
    claim.update_time = result.update_time
    for k, v in fields.items():
        if hasattr(claim.record, k):
            setattr(claim.record, k, v)


def done_fields(result: dict[str, Any]) -> dict[str, Any]:
    return {"state": "done", "result": result, "leaseUntil": None, "completedAt": _now()}


def complete(claim: Claim, result: dict[str, Any]) -> None:
    _ref(claim.record_id).update(done_fields(result))


def release(claim: Claim) -> None:
    """Forget the attempt: nothing was sent, so a retry with the key must try again."""
    _ref(claim.record_id).delete()


def delete_expired(*, page_size: int = 400, deadline: float | None = None) -> int:
    """Drop records past expireAt (the local stack's daily tick; a TTL policy does this in production)."""
    from google.cloud.firestore_v1.base_query import FieldFilter  # lazy: Firestore library (cold start)

    q = firestore_client().collection(paths.IDEMPOTENCY).where(filter=FieldFilter("expireAt", "<", _now()))
    return delete_matching(q, page_size=page_size, deadline=deadline)
