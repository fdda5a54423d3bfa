"""The sync's part of R32: keep each logged message's bodies and attachment bytes.

Called by the sync pass between planning a chunk and writing its documents
(shared/sync/engine.py): every delivery of the chunk (one message document
per account) gets its bodies written and its attachments' bytes written,
then the document carries the references. One Gmail message delivered into
several accounts is fetched once and written under each account's prefix (an
account's objects stay under its own prefix, for export and erasure).

A message with one attachment (most that have any) gets its bytes from
users.messages.attachments.get; one with several from its raw form
(`messages.get?format=raw`, one call whatever the number of attachments;
shared/storage/raw_parts.py), not one call per attachment: a message with
thousands of parts (R22's hostile corpus) costs one call, not thousands.
Either costs 20 quota units in a 2026 project.
Gmail's client is not thread-safe and the pass prefetches the next chunk on
another thread with the pass's own service, so this fetch goes through a
service of its own (same credentials), paced with the pass's token bucket.
A message Gmail no longer has (404) is logged without bytes: `attachments`
falls back to the live fetch.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from shared.core import log
from shared.gmail.errors import Outcome, classify
from shared.gmail.service import build_gmail
from shared.storage import bodies, inflight, objects
from shared.storage.raw_parts import wanted_parts

GMAIL_NUM_RETRIES = 3  # googleapiclient's own backoff on 429/5xx
RAW_UNITS = 20  # messages.get (raw) or messages.attachments.get: 20 each in a 2026 project


class Delivery(Protocol):
    """What the hook needs of one planned message document (the engine's `_Item`)."""

    account_id: str
    conversation_id: str
    doc_id: str
    parsed: Any  # shared.gmail.mime_parse.ParsedMessage
    doc: dict[str, Any]


def keep_synced(credentials: Any, items: Sequence[Delivery], pace: Callable[[int], object] | None = None,
                mailbox_id: str = "") -> int:
    """Write every item's bodies and attachments and put the references on its document; returns the raw
    messages fetched from Gmail. Does nothing when the deployment has no mail bucket."""
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
        index = {meta.partId: n for n, meta in enumerate(parsed.attachments) if meta.gmailAttachmentId}
        if not index:
            continue
        if service is None:
            service = build_gmail(credentials)
        if pace is not None:
            pace(RAW_UNITS)
        with inflight.hold(sum(max(0, meta.size) for meta in parsed.attachments)):  # large ones take turns
            fetched += _keep_attachments(service, group, index, mailbox_id)
    return fetched


def _keep_attachments(service: Any, group: Sequence[Delivery], index: dict[str, int], mailbox_id: str) -> int:
    """The group's attachments, written under each delivery; returns 1 (one Gmail call).

    One attachment: users.messages.attachments.get (its bytes alone: about 4 times its size in memory at
    the peak, the JSON answer and the decoded bytes). Several: one raw fetch cut by `partId` (one call for
    all of them; the standard library's MIME parser peaks near 8 times the raw size, which is what the
    byte budget around this call is for)."""
    parsed = group[0].parsed
    if len(index) == 1:
        ((part_id, n),) = index.items()
        data = _attachment_bytes(service, parsed.gmail_id, str(parsed.attachments[n].gmailAttachmentId), mailbox_id)
        parts = iter([] if data is None else [(part_id, data)])
    else:
        raw = _raw(service, parsed.gmail_id, mailbox_id)
        parts = iter([]) if raw is None else wanted_parts(raw, set(index))
    for part_id, data in parts:
        n = index[part_id]
        for it in group:
            name = bodies.keep_attachment(it.account_id, it.conversation_id, it.doc_id, n, data,
                                          parsed.attachments[n].mimeType)
            atts = it.doc.get("attachments") or []
            if n < len(atts) and isinstance(atts[n], dict):
                atts[n]["storageObject"] = name
    return 1


def _attachment_bytes(service: Any, gmail_id: str, attachment_id: str, mailbox_id: str) -> bytes | None:
    """One attachment's bytes (users.messages.attachments.get), or None when Gmail no longer has it."""
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
    data = resp.pop("data", None) if isinstance(resp, dict) else None
    if not isinstance(data, str):
        return b""
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def _raw(service: Any, gmail_id: str, mailbox_id: str) -> bytes | None:
    """The message as Gmail received it (RFC 822 bytes), or None when Gmail no longer has it."""
    try:
        resp = service.users().messages().get(userId="me", id=gmail_id, format="raw", fields="raw").execute(
            num_retries=GMAIL_NUM_RETRIES)
    except Exception as exc:
        info = classify(exc)
        if info.outcome is Outcome.NOT_FOUND:
            log.warning("message gone from Gmail; kept without attachment bytes", mailboxId=mailbox_id,
                        gmailMessageId=gmail_id)
            return None
        raise
    data = resp.pop("raw", None) if isinstance(resp, dict) else None
    if not isinstance(data, str):
        return None
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
