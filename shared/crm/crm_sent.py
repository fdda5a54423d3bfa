"""CRM sends the sync need not fetch: send_email's mark, `sync_crm_sent/{mailboxId}_{gmailMessageId}`.

Gmail notifies the sending mailbox of every message send_email sends, and
under Gmail's 2026 prices the sync's messages.get of it (20 units) only to
skip it as the CRM's own (R9) is a fifth of a rep-day's units. send_email
knows the Gmail id Gmail answered, so it writes this mark inside its log
commit (the same batch as the message and the idempotency record's `done`:
no extra round trip, and the mark exists exactly when the send is logged).
A pass reads the marks of a page's sent messages in one batched read before
fetching and drops the marked ones.

What still needs the fetch is never marked, so it is fetched as before:
- a send that crashed after Gmail's answer (R18b): no log commit, no mark;
- a send with attachments (R20): the fetch is how the sync learns Gmail's
  attachment ids (shared/attachments/sent_ids.py);
- a send logged through the one-at-a-time path (a commit that met a
  concurrent writer), which writes no mark.
The mark expires with the idempotency record (7 days; a TTL policy, the
local stack's daily tick emulates it): a notification older than that is
fetched, which costs units, never correctness.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from shared.core.clients import firestore_client
from shared.core.housekeeping import delete_matching
from shared.crm import paths

MARK_TTL = timedelta(days=7)


def mark_fields(account_id: str, now: datetime) -> dict[str, Any]:
    """The mark's content: which account logged it (for whoever reads the collection) and when it expires."""
    return {"accountId": account_id, "expireAt": now + MARK_TTL}


def mark_ref(mailbox_id: str, gmail_message_id: str) -> Any:
    return paths.crm_sent_ref(mailbox_id, gmail_message_id)


def is_mark_path(path: str) -> bool:
    """Whether a document path (of a mixed batched read) is a mark."""
    return path.startswith(paths.CRM_SENT + "/")


def gmail_id_of(mailbox_id: str, doc_id: str) -> str:
    """The Gmail message id a mark's document id names."""
    return doc_id[len(mailbox_id) + 1:]


def marked(mailbox_id: str, gmail_message_ids: Iterable[str]) -> set[str]:
    """The ids send_email logged (one batched read); for callers that read nothing else at the time."""
    refs = [mark_ref(mailbox_id, i) for i in dict.fromkeys(gmail_message_ids)]
    if not refs:
        return set()
    return {gmail_id_of(mailbox_id, s.id) for s in firestore_client().get_all(refs) if s.exists}


def delete_expired(now: datetime, *, page_size: int = 400, deadline: float | None = None) -> int:
    """What the TTL policy on `expireAt` deletes in production (the local stack's daily tick)."""
    from google.cloud.firestore_v1.base_query import FieldFilter  # lazy: Firestore library (cold start)

    q = firestore_client().collection(paths.CRM_SENT).where(filter=FieldFilter("expireAt", "<", now))
    return delete_matching(q, page_size=page_size, deadline=deadline)
