"""The sync's part of R32: keep each logged message's bodies and attachment bytes.

Called by the sync pass between planning a chunk and writing its documents
(shared/sync/engine.py): every delivery of the chunk (one message document
per account) gets its bodies written and its attachments' bytes fetched from
Gmail (users.messages.attachments.get) and written, then the document
carries the references. One Gmail message delivered into several accounts is
fetched once per attachment and written under each account's prefix (an
account's objects stay under its own prefix, for export and erasure).

Gmail's client is not thread-safe and the pass prefetches the next chunk on
another thread with the pass's own service, so the attachments are fetched
through a service of their own (same credentials), paced with the pass's
token bucket. An attachment Gmail no longer has (404) is left without bytes:
the message is still logged and `attachments` falls back to the live fetch.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from shared.core import log
from shared.storage import bodies, objects

GMAIL_NUM_RETRIES = 3  # googleapiclient's own backoff on 429/5xx
ATTACHMENT_UNITS = 20  # messages.attachments.get, Google's current table


class Delivery(Protocol):
    """What the hook needs of one planned message document (the engine's `_Item`)."""

    account_id: str
    conversation_id: str
    doc_id: str
    parsed: Any  # shared.gmail.mime_parse.ParsedMessage
    doc: dict[str, Any]


def keep_synced(credentials: Any, items: Sequence[Delivery], pace: Callable[[int], object] | None = None,
                mailbox_id: str = "") -> int:
    """Write every item's bodies and attachments and put the references on its document; returns the
    attachments fetched from Gmail. Does nothing when the deployment has no mail bucket."""
    if not items or not objects.configured():
        return 0
    by_message: dict[str, list[Delivery]] = {}
    for it in items:
        by_message.setdefault(it.parsed.gmail_id, []).append(it)
    service: Any = None
    fetched = 0
    for group in by_message.values():
        parsed = group[0].parsed
        for it in group:
            it.doc["stored"] = bodies.keep_bodies(it.account_id, it.conversation_id, it.doc_id,
                                                  {"text": parsed.text, "html": parsed.html})
            it.doc["truncated"] = bodies.preview_cut(it.doc["stored"], it.doc)
        for n, meta in enumerate(parsed.attachments):
            if not meta.gmailAttachmentId:
                continue
            if service is None:
                from shared.gmail.service import build_gmail

                service = build_gmail(credentials)
            if pace is not None:
                pace(ATTACHMENT_UNITS)
            data = _attachment_bytes(service, parsed.gmail_id, meta.gmailAttachmentId, mailbox_id)
            fetched += 1
            if data is None:
                continue
            for it in group:
                name = bodies.keep_attachment(it.account_id, it.conversation_id, it.doc_id, n, data, meta.mimeType)
                atts = it.doc.get("attachments") or []
                if n < len(atts) and isinstance(atts[n], dict):
                    atts[n]["storageObject"] = name
            del data
    return fetched


def _attachment_bytes(service: Any, gmail_id: str, attachment_id: str, mailbox_id: str) -> bytes | None:
    from shared.gmail.errors import Outcome, classify

    try:
        resp = service.users().messages().attachments().get(
            userId="me", messageId=gmail_id, id=attachment_id).execute(num_retries=GMAIL_NUM_RETRIES)
    except Exception as exc:
        info = classify(exc)
        if info.outcome in (Outcome.NOT_FOUND, Outcome.REJECTED):
            log.warning("attachment gone from Gmail; kept without bytes", mailboxId=mailbox_id,
                        gmailMessageId=gmail_id, status=info.status)
            return None
        raise
    data = resp.get("data") if isinstance(resp, dict) else None
    if not isinstance(data, str):
        return b""
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
