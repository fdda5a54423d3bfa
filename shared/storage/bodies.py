"""Keep a logged message whole (R32): its bodies and attachment bytes in Cloud Storage.

The three log paths (the sync, CRM sends, Auto BCC) call this when they log
a message, before its document is written, so a document never names an
object that is not there; a path that dies in between leaves objects that its
retry writes again (create-once, the same bytes).

On the document:
- `stored`: `{"text": {"object": name, "bytes": n}, "html": {...}}` for each
  body the message has; the document's own `text`/`html` are the preview
  (`truncated: true` when a preview is shorter than its body);
- `attachments[i].storageObject`: the object holding attachment i's bytes.

A message from before 0.3 has neither; readers fall back to the document's
bodies and to Gmail (shared/attachments/fetch.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.storage import names, objects

CONTENT_TYPES = {"text": "text/plain", "html": "text/html"}


def keep_bodies(account_id: str, conversation_id: str, message_id: str,
                bodies: Mapping[str, str | None]) -> dict[str, dict[str, Any]]:
    """Write each present body (`text`, `html`); returns the document's `stored` field."""
    stored: dict[str, dict[str, Any]] = {}
    for kind in ("text", "html"):
        value = bodies.get(kind)
        if value is None:
            continue
        name = names.body_name(account_id, conversation_id, message_id, kind)  # type: ignore[arg-type]
        stored[kind] = {"object": name, "bytes": objects.put_text(name, value, CONTENT_TYPES[kind])}
    return stored


def keep_attachment(account_id: str, conversation_id: str, message_id: str, index: int,
                    data: bytes | bytearray | memoryview, mime_type: str) -> str:
    """Write attachment `index`'s bytes; returns the object name for `attachments[index].storageObject`."""
    name = names.attachment_name(account_id, conversation_id, message_id, index)
    objects.put_bytes(name, data, mime_type or "application/octet-stream")
    return name


def read_body(doc: Mapping[str, Any], kind: str) -> str | None:
    """A body whole: from its object when the message has one, else the document's own (pre-0.3)."""
    ref = (doc.get("stored") or {}).get(kind) if isinstance(doc.get("stored"), dict) else None
    if isinstance(ref, dict) and isinstance(ref.get("object"), str):
        text = objects.read_text(ref["object"])
        if text is not None:
            return text
    value = doc.get(kind)
    return value if isinstance(value, str) else None


def stored_attachment(meta: Mapping[str, Any]) -> bytes | None:
    """An attachment's bytes from storage, or None when it has none there (pre-0.3, or missing)."""
    name = meta.get("storageObject")
    if not isinstance(name, str) or not name:
        return None
    return objects.read_bytes(name)


def preview_cut(stored: Mapping[str, Any], doc: Mapping[str, Any]) -> bool:
    """R32's `truncated`: a preview on the document is shorter than its stored body."""
    for kind, ref in stored.items():
        value = doc.get(kind)
        size = ref.get("bytes") if isinstance(ref, dict) else None
        if isinstance(size, int) and len((value or "").encode("utf-8", "replace")) < size:
            return True
    return False
