"""An Auto BCC copy -> the message document that fits in Firestore (R16, R22's budget). No I/O.

A copy comes from the internet: up to 30 MB with a 300,000-character body
(~900 KB of CJK in UTF-8), a thousand recipients, hundreds of parts, 8-bit
headers decoded with lone surrogates. Firestore refuses a document above
1 MiB and a string that is not UTF-8, and a refused write after the contact
was created is a partial write. So the document is made to fit *before*
anything is written: lists are capped, strings made UTF-8, and the bodies cut
at a UTF-8 character boundary until the encoded document is under
`TARGET_BYTES`; a cut sets `truncated: true`. Sizes are measured on the
document as the Firestore client encodes it, not estimated from characters.
"""

from __future__ import annotations

from typing import Any

from shared.auto_bcc.message import AutoBccCopy
from shared.core import paths
from shared.core.models import Message

MAX_DOCUMENT_BYTES = 1_048_576  # Firestore's limit per document
TARGET_BYTES = MAX_DOCUMENT_BYTES - 64 * 1024  # room for what the measure cannot see (createdAt, the emulator's count)
MAX_RECIPIENTS = 500  # per field (To, Cc, Bcc)
MAX_REFERENCES = 50  # the newest ones: threading needs the last
MAX_ID_CHARS = 998  # RFC 5322's line length; a longer "Message-ID" is garbage
MAX_SUBJECT_CHARS = 2_000
MAX_ATTACHMENTS = 100  # metadata and bytes kept; more is not a message a rep sends to one contact
_BODIES = ("text", "html")


def utf8(value: str) -> str:
    """The string as Firestore can store it: lone surrogates (undecodable 8-bit header bytes) become "?"."""
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        return value.encode("utf-8", "replace").decode("utf-8")


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return utf8(value)
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    return value


def cut_utf8(value: str, max_bytes: int) -> str:
    """The longest prefix of `value` of at most `max_bytes` UTF-8 bytes, never half a character."""
    data = value.encode("utf-8")
    if len(data) <= max_bytes:
        return value
    return data[:max(0, max_bytes)].decode("utf-8", "ignore")


def encoded_size(path: str, doc: dict[str, Any]) -> int:
    """Bytes of the document as the Firestore client sends it (name and fields)."""
    from google.cloud.firestore_v1 import _helpers
    from google.cloud.firestore_v1.types import document

    pb = document.Document(name=path, fields=_helpers.encode_dict(doc))
    return int(document.Document.pb(pb).ByteSize())


def _fit_bodies(path: str, doc: dict[str, Any]) -> bool:
    """Cut text and html (shorter first keeps all it can) so the document fits; True if cut."""
    if encoded_size(path, doc) <= TARGET_BYTES:
        return False
    names = [n for n in _BODIES if isinstance(doc.get(n), str)]
    sizes = {n: len(doc[n].encode("utf-8")) for n in names}
    room = max(0, TARGET_BYTES - encoded_size(path, {**doc, **{n: "" for n in names}}) - 16 * len(names))
    for i, n in enumerate(sorted(names, key=lambda x: sizes[x])):
        share = min(sizes[n], room // (len(names) - i))
        doc[n] = cut_utf8(doc[n], share)
        room -= share
    return True


def build_document(copy: AutoBccCopy, *, account_id: str, conversation_id: str, message_id: str,
                   contact_id: str, user_id: str, is_auto_bcc: Any) -> tuple[Message, int]:
    """The outbound message of the copy, and how many attachments it keeps (the first ones).

    `is_auto_bcc(address)` tells our own addresses, which are not logged as Cc/Bcc.
    """
    recipients = {
        "to": [a.email for a in copy.to],
        "cc": [a.email for a in copy.cc if not is_auto_bcc(a.email)],
        "bcc": [a.email for a in copy.bcc if not is_auto_bcc(a.email)],
    }
    capped = {k: v[:MAX_RECIPIENTS] for k, v in recipients.items()}
    references = [r for r in copy.references if len(r) <= MAX_ID_CHARS][-MAX_REFERENCES:]
    attachments = copy.attachments[:MAX_ATTACHMENTS]
    rfc822_id = copy.message_id if copy.message_id.startswith("<") and len(copy.message_id) <= MAX_ID_CHARS else None
    in_reply_to = copy.in_reply_to if copy.in_reply_to and len(copy.in_reply_to) <= MAX_ID_CHARS else None
    truncated = (any(len(capped[k]) < len(v) for k, v in recipients.items())
                 or len(attachments) < len(copy.attachments) or len(copy.subject) > MAX_SUBJECT_CHARS)
    msg = Message(
        direction="outbound", source="auto_bcc", contactId=contact_id, userId=user_id,
        from_=copy.sender.email, to=capped["to"], cc=capped["cc"], bcc=capped["bcc"],
        subject=copy.subject[:MAX_SUBJECT_CHARS], text=copy.text, html=copy.html, snippet=copy.snippet,
        sentAt=copy.sent_at, rfc822MessageId=rfc822_id, inReplyTo=in_reply_to, references=references,
        isForward=copy.is_forward, attachments=[dict(a) for a in attachments],
    )
    doc = _clean(msg.to_doc())
    path = paths.message_path(account_id, conversation_id, message_id)
    truncated = _fit_bodies(path, doc) or truncated
    doc["truncated"] = truncated
    return Message.from_doc(doc), len(attachments)
