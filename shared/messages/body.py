"""`GET /body`: a logged message's bodies whole (R32).

Messages logged since 0.3 have their bodies in Cloud Storage (`stored` on the
document); older ones have only what their document holds (a body cut to fit
Firestore before 0.3 stays cut: Gmail is not asked, the mailbox may be gone).
"""

from __future__ import annotations

from typing import Any

from shared.core import log
from shared.crm.paths import message_ref
from shared.messages.errors import MessageNotFound
from shared.storage.bodies import read_body as whole


def message_snapshot(account_id: str, conversation_id: str, message_id: str) -> Any:
    """The message document's snapshot, or MessageNotFound (ids Firestore cannot take included)."""
    try:
        snap = message_ref(account_id, conversation_id, message_id).get()
    except ValueError:
        raise MessageNotFound(message_id) from None
    if not snap.exists:
        raise MessageNotFound(message_id)
    return snap


def read_body(account_id: str, conversation_id: str, message_id: str) -> dict[str, str | None]:
    """`{text, html}` whole, each None when the message has no such body."""
    doc = message_snapshot(account_id, conversation_id, message_id).to_dict() or {}
    out = {kind: whole(doc, kind) for kind in ("text", "html")}
    log.info("message body served", accountId=account_id, messageId=message_id,
             stored=sorted((doc.get("stored") or {}).keys()) if isinstance(doc.get("stored"), dict) else [],
             bytes=sum(len(v.encode("utf-8", "replace")) for v in out.values() if v))
    return out
