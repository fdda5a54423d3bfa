"""Specs of the R20 pieces that need no server: chunking of stored bytes and the download headers."""

from __future__ import annotations

from shared.attachments import store
from shared.attachments.store import CHUNK_BYTES, StoredAttachment, chunk_count, chunk_ids
from shared.core.budget import FIRESTORE_MAX_DOCUMENT_BYTES, document_size
from shared.core.models import AttachmentChunk


def test_r20_chunk_count_covers_every_byte_and_empty_needs_none() -> None:
    assert [chunk_count(n) for n in (0, 1, CHUNK_BYTES, CHUNK_BYTES + 1, 25 * 1024 * 1024)] == [0, 1, 1, 2, 27]


def test_r20_chunk_ids_are_deterministic_and_differ_per_account_and_attachment() -> None:
    a = chunk_ids("acme", "c1", "ab_1", "ab_0", 2 * CHUNK_BYTES)
    assert a == chunk_ids("acme", "c1", "ab_1", "ab_0", 2 * CHUNK_BYTES) and len(a) == 2
    assert a[0].endswith("_0000") and a[1].endswith("_0001")
    assert not set(a) & set(chunk_ids("globex", "c1", "ab_1", "ab_0", 2 * CHUNK_BYTES))
    assert not set(a) & set(chunk_ids("acme", "c1", "ab_1", "ab_1", 2 * CHUNK_BYTES))


def test_r20_a_full_chunk_fits_one_firestore_document() -> None:
    full = StoredAttachment("ab_0", b"x" * CHUNK_BYTES)
    ((doc_id, chunk),) = list(store.chunks("a" * 200, "c" * 200, "m" * 200, [full]))
    assert isinstance(chunk, AttachmentChunk)
    assert document_size(f"sync_attachments/{doc_id}", chunk.to_doc()) < FIRESTORE_MAX_DOCUMENT_BYTES


def test_r20_chunks_put_the_bytes_back_together_in_order() -> None:
    data = bytes(range(256)) * 9000
    chunks = [c for _, c in store.chunks("acme", "c1", "ab_1", [StoredAttachment("ab_0", data)])]
    assert [c.index for c in chunks] == [0, 1, 2] and {c.count for c in chunks} == {3}
    assert b"".join(c.data for c in chunks) == data


def test_r20_download_name_is_percent_encoded_utf8_so_no_header_injection() -> None:
    from functions.attachments import content_disposition

    assert content_disposition("Angebot März.pdf") == "attachment; filename*=UTF-8''Angebot%20M%C3%A4rz.pdf"
    assert (content_disposition('a"\r\nSet-Cookie: x=1')
            == "attachment; filename*=UTF-8''a%22%0D%0ASet-Cookie%3A%20x%3D1")
    assert content_disposition("../../etc/passwd") == "attachment; filename*=UTF-8''.._.._etc_passwd"
    assert content_disposition("") == "attachment; filename*=UTF-8''attachment"
