"""Bytes of Auto BCC copies' attachments, kept in Firestore (R20).

An Auto BCC copy reaches us by webhook and lives in no Gmail mailbox we can
read, so its attachments cannot be fetched later: auto_bcc stores them when
it logs the copy. Firestore holds at most 1 MiB per document, so each
attachment is cut into `CHUNK_BYTES` pieces, `sync_attachments/{h}_{nnnn}`
with h = hash(account, conversation, message, attachment id): deterministic
ids, so a retried webhook rewrites the same documents (idempotent) and a
reader computes every id from the attachment's size without a query.

The chunks are written before the message document that points at them, so a
message never names bytes that are not there; a copy that died between the
two leaves chunks that the retry of the same copy overwrites.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.core.clients import firestore_client
from shared.core.models import AttachmentChunk
from shared.crm import paths
from shared.crm.paths import attachment_chunk_ref

CHUNK_BYTES = 1_000_000  # < 1 MiB with room for the name and fields; never change: readers derive ids from it
BATCH_BYTES = 8_000_000  # a Firestore commit carries at most 10 MiB
BATCH_WRITES = 500  # and at most 500 writes


class StoredAttachmentMissing(Exception):
    """A chunk the message's metadata implies is not there (it was deleted, or never written)."""


@dataclass(frozen=True)
class StoredAttachment:
    attachment_id: str
    data: bytes


def chunk_count(size: int) -> int:
    return (size + CHUNK_BYTES - 1) // CHUNK_BYTES


def chunk_ids(account_id: str, conversation_id: str, message_id: str, attachment_id: str, size: int) -> list[str]:
    return [paths.attachment_chunk_id(account_id, conversation_id, message_id, attachment_id, n)
            for n in range(chunk_count(size))]


def chunks(account_id: str, conversation_id: str, message_id: str,
            attachments: Sequence[StoredAttachment]) -> Iterator[tuple[str, AttachmentChunk]]:
    now = datetime.now(UTC)
    for att in attachments:
        ids = chunk_ids(account_id, conversation_id, message_id, att.attachment_id, len(att.data))
        for n, doc_id in enumerate(ids):
            yield doc_id, AttachmentChunk(
                accountId=account_id, conversationId=conversation_id, messageId=message_id,
                attachmentId=att.attachment_id, index=n, count=len(ids), size=len(att.data),
                data=att.data[n * CHUNK_BYTES:(n + 1) * CHUNK_BYTES], createdAt=now)


def store(account_id: str, conversation_id: str, message_id: str, attachments: Sequence[StoredAttachment]) -> int:
    """Write every chunk (set: a retry writes the same documents); returns the documents written."""
    db = firestore_client()
    batch: Any = None
    pending_bytes = pending_writes = written = 0
    for doc_id, chunk in chunks(account_id, conversation_id, message_id, attachments):
        if batch is not None and (pending_writes >= BATCH_WRITES or pending_bytes + len(chunk.data) > BATCH_BYTES):
            batch.commit()
            batch, pending_bytes, pending_writes = None, 0, 0
        if batch is None:
            batch = db.batch()
        batch.set(attachment_chunk_ref(doc_id), chunk.to_doc())
        pending_bytes += len(chunk.data) + 512
        pending_writes += 1
        written += 1
    if batch is not None:
        batch.commit()
    return written


def read(account_id: str, conversation_id: str, message_id: str, attachment_id: str, size: int) -> bytes:
    """The attachment's bytes, whole (tests and small callers; the attachments function streams)."""
    return b"".join(stream(account_id, conversation_id, message_id, attachment_id, size))


def stream(account_id: str, conversation_id: str, message_id: str, attachment_id: str,
           size: int) -> Iterator[bytes]:
    """The attachment's bytes chunk by chunk, one document read at a time, so a 25 MB attachment is
    never whole in memory. The first chunk is read before this returns: a missing attachment raises
    StoredAttachmentMissing here, before an answer has started; a chunk missing further on raises
    while the bytes are being sent (the answer is cut short of its Content-Length)."""
    ids = chunk_ids(account_id, conversation_id, message_id, attachment_id, size)
    if not ids:
        return iter(())
    def chunk(n: int) -> bytes:
        snap = attachment_chunk_ref(ids[n]).get()
        if not snap.exists:
            raise StoredAttachmentMissing(ids[n])
        doc = AttachmentChunk.from_doc(snap.to_dict())
        expected = min(CHUNK_BYTES, size - n * CHUNK_BYTES)
        if doc.index != n or doc.attachmentId != attachment_id or doc.messageId != message_id \
                or len(doc.data) != expected:
            raise StoredAttachmentMissing(f"{ids[n]}: {len(doc.data)} bytes, expected {expected}")
        return bytes(doc.data)

    first = chunk(0)

    def rest() -> Iterator[bytes]:
        yield first
        for n in range(1, len(ids)):
            yield chunk(n)

    return rest()
