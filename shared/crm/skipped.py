"""R22: a message that cannot be stored at all is recorded, counted, and passed over.

`sync_skipped/{mailboxId}_{gmailMessageId}` says which message and why
(`too_large`: even without bodies it exceeds Firestore's 1 MiB; `unparseable`:
the Gmail resource could not be read; `rejected_by_firestore`: the write was
refused for another reason). The mailbox keeps `skippedCount` and the last
few as `lastSkipped` for `GET /status`. Both are written in one transaction that
first checks the skip document, so a replayed pass never counts a message twice.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shared.core import log
from shared.core.clients import firestore_client
from shared.crm.paths import mailbox_ref, skip_ref

LAST_KEPT = 10


def record_skip(mailbox_id: str, gmail_message_id: str, reason: str) -> bool:
    """Record that the message was passed over; True when this call recorded it (first time)."""
    from google.cloud import firestore  # lazy: Firestore library (cold start)

    ref = skip_ref(mailbox_id, gmail_message_id)
    mref = mailbox_ref(mailbox_id)
    now = datetime.now(UTC)

    @firestore.transactional
    def run(tx: Any) -> bool:
        if ref.get(transaction=tx).exists:
            return False
        snap = mref.get(transaction=tx)
        data = (snap.to_dict() or {}) if snap.exists else {}
        entry = {"gmailMessageId": gmail_message_id, "reason": reason, "at": now}
        tx.create(ref, {"mailboxId": mailbox_id, **entry})
        if snap.exists:
            last = [e for e in data.get("lastSkipped") or [] if isinstance(e, dict)][-(LAST_KEPT - 1):]
            tx.update(mref, {"skippedCount": int(data.get("skippedCount") or 0) + 1, "lastSkipped": [*last, entry]})
        return True

    recorded: bool = run(firestore_client().transaction())
    if recorded:
        log.warning("message could not be stored; skipped", mailboxId=mailbox_id, gmailMessageId=gmail_message_id,
                    reason=reason)
    return recorded
