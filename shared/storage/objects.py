"""Objects in the mail bucket: create-once streamed writes and reads.

Writes are idempotent by construction: a name fixes its content (names.py),
every write carries `ifGenerationMatch=0` (create only), and a 412 means the
object is there already, which is success. With a precondition set,
google-cloud-storage retries the request itself on 429/5xx
(`DEFAULT_RETRY_IF_GENERATION_SPECIFIED`), so a retry can never overwrite.

Large values are streamed: bytes through a resumable upload in
`CHUNK_BYTES` pieces (`io.BytesIO(bytes)` shares the caller's buffer, no
copy), text encoded slice by slice into the upload, so a body or attachment
is never held twice in memory. Small ones go in one multipart request.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from shared.core.config import get_config

CHUNK_BYTES = 8 * 256 * 1024  # a resumable upload's chunk: a multiple of 256 KiB, as Cloud Storage requires
SMALL_BYTES = 1024 * 1024  # up to this, one multipart request
TEXT_SLICE_CHARS = 256 * 1024  # characters encoded at a time when streaming a body

_lock = threading.Lock()


class StorageNotConfigured(RuntimeError):
    """STORAGE_BUCKET is not set: the deployment has no mail bucket."""


@lru_cache(maxsize=1)
def bucket() -> Any:
    """The mail bucket (google-cloud-storage imported here, on first use: cold start)."""
    from google.cloud import storage  # type: ignore[attr-defined]  # lazy: Cloud Storage library (cold start)

    cfg = get_config()
    if not cfg.storage_bucket:
        raise StorageNotConfigured("STORAGE_BUCKET is not set")
    with _lock:  # STORAGE_EMULATOR_HOST (local stack) is read by the client itself
        return storage.Client(project=cfg.project_id).bucket(cfg.storage_bucket)


def configured() -> bool:
    return bool(get_config().storage_bucket)


def _exists_already(exc: BaseException) -> bool:
    from google.api_core.exceptions import PreconditionFailed  # lazy: Cloud Storage library (cold start)

    return isinstance(exc, PreconditionFailed)


def put_bytes(name: str, data: bytes | bytearray | memoryview, content_type: str) -> int:
    """Create `name` with `data` unless it exists; returns its size."""
    blob = bucket().blob(name, chunk_size=CHUNK_BYTES if len(data) > SMALL_BYTES else None)
    try:
        if len(data) <= SMALL_BYTES:
            blob.upload_from_string(bytes(data), content_type=content_type, if_generation_match=0)
        else:
            blob.upload_from_file(io.BytesIO(data), size=len(data), content_type=content_type,
                                  if_generation_match=0, rewind=False)
    except Exception as exc:
        if not _exists_already(exc):
            raise
    return len(data)


def _utf8_slices(text: str) -> Iterator[bytes]:
    for i in range(0, len(text), TEXT_SLICE_CHARS):
        yield text[i:i + TEXT_SLICE_CHARS].encode("utf-8", "replace")


def put_text(name: str, text: str, content_type: str) -> int:
    """Create `name` with `text` as UTF-8 unless it exists; returns its size in bytes."""
    if len(text) <= SMALL_BYTES // 4:  # at most 4 bytes a character: surely small
        return put_bytes(name, text.encode("utf-8", "replace"), content_type + "; charset=utf-8")
    size = 0
    try:
        with bucket().blob(name, chunk_size=CHUNK_BYTES).open(
                "wb", content_type=content_type + "; charset=utf-8", if_generation_match=0,
                ignore_flush=True) as out:
            for piece in _utf8_slices(text):
                out.write(piece)
                size += len(piece)
    except Exception as exc:
        if not _exists_already(exc):
            raise
        size = sum(len(p) for p in _utf8_slices(text))
    return size


def read_bytes(name: str) -> bytes | None:
    """The object's bytes, or None when there is no such object."""
    from google.api_core.exceptions import NotFound  # lazy: Cloud Storage library (cold start)

    try:
        data: bytes = bucket().blob(name).download_as_bytes()
    except NotFound:
        return None
    return data


def read_text(name: str) -> str | None:
    data = read_bytes(name)
    return None if data is None else data.decode("utf-8", "replace")


def delete_prefix(prefix: str) -> int:
    """Delete every object under `prefix` (an account's erasure); returns how many."""
    from google.api_core.exceptions import NotFound  # lazy: Cloud Storage library (cold start)

    count = 0
    for blob in bucket().list_blobs(prefix=prefix):
        try:
            blob.delete()
            count += 1
        except NotFound:
            pass
    return count
