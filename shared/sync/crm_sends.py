"""R18b: which CRM sends seen in Gmail were never logged by send_email, read from their idempotency records.

A CRM send carries a Message-ID derived from its idempotency key and is
logged by send_email (R9), so the sync normally skips it. But send_email can
crash after Gmail accepted the message, and the CRM may never retry: then the
record `sync_idempotency/…` stays unfinished and nobody else would log it.
The sync finds the record by the Message-ID it sees (`rfc822MessageId`, one
`in` query per 30 CRM sends of a chunk) and, unless it is `done`, logs the
message itself in the sending account (shared/sync/classify.py, `CrmSend`).

Only the record's fields are relied on (accountId, userId, state,
rfc822MessageId, and contactId when the record carries it), not send_email's
code. Logging uses the same document id (`gm_<gmailMessageId>`) and the
thread's conversation as send_email, with create-if-absent on both sides, so
a send_email that is merely slow and finishes later finds the document and
does not log it twice. A missing record (expired after 7 days, or not ours)
leaves the message skipped.
"""

from __future__ import annotations

from collections.abc import Iterable

from shared.core.clients import firestore_client
from shared.core.roundtrips import ContextPool  # threads metered with their caller
from shared.crm import paths
from shared.sync.classify import CrmSend

IN_QUERY_LIMIT = 30


def unfinished_sends(rfc822_ids: Iterable[str]) -> dict[str, CrmSend]:
    """Message-ID -> the send to log, for every Message-ID whose record exists and is not `done`."""
    from google.cloud.firestore_v1.base_query import FieldFilter  # lazy: Firestore library (cold start)

    ids = sorted({i.strip() for i in rfc822_ids if i and i.strip()})
    if not ids:
        return {}
    col = firestore_client().collection(paths.IDEMPOTENCY)
    chunks = [ids[i:i + IN_QUERY_LIMIT] for i in range(0, len(ids), IN_QUERY_LIMIT)]

    def run(chunk: list[str]) -> list[dict[str, object]]:
        q = col.where(filter=FieldFilter("rfc822MessageId", "in", chunk)).select(
            ["accountId", "userId", "state", "rfc822MessageId", "contactId"])
        return [s.to_dict() or {} for s in q.stream()]

    if len(chunks) == 1:
        rows = run(chunks[0])
    else:
        with ContextPool(max_workers=min(8, len(chunks))) as pool:  # metered with the pass
            rows = [r for part in pool.map(run, chunks) for r in part]
    out: dict[str, CrmSend] = {}
    for r in rows:
        mid, account, user = r.get("rfc822MessageId"), r.get("accountId"), r.get("userId")
        if r.get("state") == "done" or not isinstance(mid, str) or not account or not user:
            continue
        contact = r.get("contactId")
        out[mid] = CrmSend(str(account), str(user), str(contact) if isinstance(contact, str) and contact else None)
    return out
