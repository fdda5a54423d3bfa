"""R32 for the two paths that hold the whole message in hand: CRM sends and Auto BCC copies.

`keep_logged` writes the bodies and every attachment's bytes and puts the
references on the document's fields (mutating the attachment dicts it is
given). A CRM send calls it through `keep_sent`, which never fails: Gmail has
already accepted the message (R23: never a 5xx after that), so a storage
failure leaves the document with its preview only (logged as an error). An
Auto BCC copy calls `keep_logged` directly: a failure fails the webhook,
whose retry converges (create-once writes).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shared.core import log
from shared.storage import bodies, objects


def keep_logged(account_id: str, conversation_id: str, message_id: str, text: str | None, html: str | None,
                attachments: Sequence[dict[str, Any]], data: Sequence[bytes]) -> dict[str, Any]:
    """Write bodies and attachment bytes; returns `stored` ({} when there is no mail bucket)."""
    if not objects.configured():
        return {}
    stored = bodies.keep_bodies(account_id, conversation_id, message_id, {"text": text, "html": html})
    for n, (meta, content) in enumerate(zip(attachments, data, strict=False)):
        meta["storageObject"] = bodies.keep_attachment(account_id, conversation_id, message_id, n, content,
                                                       str(meta.get("mimeType") or ""))
    return stored


def keep_sent(doc: dict[str, Any], account_id: str, conversation_id: str, message_id: str, text: str | None,
              html: str | None, data: Sequence[bytes]) -> None:
    """A CRM send's bodies and attachments onto `doc` (its `stored`, `attachments[i].storageObject`)."""
    try:
        doc["stored"] = keep_logged(account_id, conversation_id, message_id, text, html,
                                    doc.get("attachments") or [], data)
    except Exception as exc:  # Gmail accepted it: log the message with its preview rather than fail (R23)
        log.error("sent message not kept whole in storage", accountId=account_id, messageId=message_id,
                  error=type(exc).__name__)
        for meta in doc.get("attachments") or []:
            meta.pop("storageObject", None)
        doc["stored"] = {}
