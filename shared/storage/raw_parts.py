"""Attachment bytes out of a raw RFC 822 message, addressed by Gmail's `partId` (R32).

The sync keeps every attachment's bytes. Fetching them one by one
(users.messages.attachments.get) costs a call and 20 quota units per
attachment, and a hostile message has thousands of parts; the message's raw
form (`messages.get?format=raw`) costs one call for all of them. Its MIME
tree is parsed here with the standard library (policy=default) and each
leaf is numbered as Gmail numbers `payload.parts`: the root is "", its
children "0", "1", …, theirs "1.0", "1.1", … (a `message/rfc822` part is
one leaf: the forwarded message whole).

Only the wanted parts are decoded, one at a time, handed to the caller and
dropped (a generator): never every attachment in memory at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from email import policy
from email.message import Message
from email.parser import BytesParser

MAX_DEPTH = 20  # as deep as the sync's own walk of Gmail's payload (shared/gmail/mime_parse.py)


def wanted_parts(raw: bytes, part_ids: set[str]) -> Iterator[tuple[str, bytes]]:
    """(partId, decoded bytes) of each wanted leaf, in tree order."""
    if not part_ids:
        return
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    yield from _walk(msg, "", part_ids, 0)


def _walk(part: Message, part_id: str, wanted: set[str], depth: int) -> Iterator[tuple[str, bytes]]:
    if depth > MAX_DEPTH:
        return
    mime = part.get_content_type()
    if part.is_multipart() and mime != "message/rfc822":
        prefix = f"{part_id}." if part_id else ""
        for i, child in enumerate(part.get_payload() or []):
            if isinstance(child, Message):
                yield from _walk(child, f"{prefix}{i}", wanted, depth + 1)
        return
    if part_id not in wanted:
        return
    yield part_id, _leaf_bytes(part)


def _leaf_bytes(part: Message) -> bytes:
    if part.get_content_type() == "message/rfc822":
        inner = part.get_payload()
        if isinstance(inner, list) and inner and isinstance(inner[0], Message):
            return inner[0].as_bytes(policy=policy.default)
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""
