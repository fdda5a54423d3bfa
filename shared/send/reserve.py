"""Before Gmail is called: the idempotency record (R18) and the day's slot (R17), durable.

The fast path writes both in one commit: the record is created if absent and
the slot is a random one of today's `limit` slot documents, also
create-if-absent (shared.send.limits explains why slots and not a counter).
The commit is atomic, so a record never exists without its slot.

When that commit meets an existing document (a concurrent retry with the same
key, an earlier attempt's record, or a slot someone else holds) nothing of it
was written, and the send takes the general path, one write at a time:
`idempotency.begin` (own, wait for, take over, or replay the key) and then
`limits.claim_slot` (which lists the day's free slots after a collision).
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.core.clients import firestore_client
from shared.crm.paths import idempotency_ref, slot_ref
from shared.send import answers, idempotency
from shared.send.limits import (
    DailyLimitReached,
    Slot,
    claim_slot,
    expiry,
    fast_slot,
    release_slot,
    slot_doc,
    slot_held_by,
)
from shared.send.limits import today as limit_today

RETRY_WAIT_SECONDS = 25.0  # how long a concurrent retry waits for the first attempt to finish


@dataclass
class Reservation:
    claim: idempotency.Claim
    slot: Slot | None = None

    def give_back(self) -> None:
        """Nothing was sent: the slot and the key are free again (a retry, or tomorrow's send, starts clean)."""
        if self.slot is not None:
            release_slot(self.slot)
            self.slot = None
        idempotency.release(self.claim)


def record_and_slot(record_id: str, account_id: str, user_id: str, key: str, *, fingerprint: str,
                    rfc822_id: str, lease_seconds: float, mailbox_id: str) -> Reservation | None:
    """Both in one commit, or None when that commit met an existing document (take the general path)."""
    from google.api_core.exceptions import AlreadyExists  # lazy: Firestore library (cold start)

    slot = fast_slot(mailbox_id)
    if slot is None:
        return None
    rec, doc = idempotency.new_record(account_id, user_id, key, fingerprint=fingerprint,
                                      rfc822_message_id=rfc822_id, lease_seconds=lease_seconds)
    batch = firestore_client().batch()
    batch.create(idempotency_ref(record_id), doc)
    batch.create(slot_ref(slot.doc_id), slot_doc(slot, record_id, expiry()))
    try:
        results = batch.commit()
    except AlreadyExists:
        return None
    return Reservation(idempotency.Claim("owner", record_id, rec, results[0].update_time), slot)


def begin(account_id: str, user_id: str, key: str, *, fingerprint: str, rfc822_id: str,
          lease_seconds: float) -> idempotency.Claim:
    """The general path's first step: own the key, wait for a running attempt, take over, or replay."""
    try:
        return idempotency.begin(account_id, user_id, key, fingerprint=fingerprint, rfc822_message_id=rfc822_id,
                                 lease_seconds=lease_seconds, wait_seconds=RETRY_WAIT_SECONDS)
    except idempotency.KeyReused:
        raise answers.key_reused() from None
    except idempotency.InProgress as exc:
        raise answers.in_progress(exc.retry_after) from None


def slot_for(claim: idempotency.Claim, mailbox_id: str) -> Slot:
    """The general path's second step: the slot a crashed attempt of this key claimed, or a new one (R17)."""
    if claim.kind == "takeover":
        earlier = slot_held_by(claim.record_id, mailbox_id, limit_today().isoformat())
        if earlier is not None:
            return earlier
    try:
        return claim_slot(mailbox_id, claim.record_id)
    except DailyLimitReached as exc:
        idempotency.release(claim)
        raise answers.daily_limit_reached(exc.reset_at) from None
