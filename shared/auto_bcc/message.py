"""A raw RFC 822 Auto BCC copy -> the fields of an outbound CRM message (R16). Pure, no I/O.

The copy comes from any mail client (Outlook, Apple Mail, Gmail) or from
anyone on the internet, so it is parsed with the stdlib `email` package, with
the `compat32` policy: `policy.default` parses every header it is asked for
into a structured object, about 40 times slower, which let one 100 KB copy
with thousands of parts or recipients hold a worker for seconds (a cheap
denial of service). The few headers used here are read raw and decoded the
way the sync decodes Gmail's (RFC 2047 words, `shared.gmail.mime_parse`);
bodies and attachments follow the sync's rules too: every text/plain and
text/html leaf that is not an attachment, attachments being the parts with a
filename or `Content-Disposition: attachment` (and forwarded messages), at
most `MAX_DEPTH` levels down. What it must decide:

- the recipient contact: the first To address (then Cc, then Bcc) that is not
  an Auto BCC address, not the sender, and not a user of the CRM account (the
  caller passes those), as R12 orders recipients;
- a stable id for idempotency: the Message-ID header (a mail server that
  delivers the same copy twice keeps it), or, if a client omitted it, a hash
  of the raw bytes;
- when it was sent: the `Date` header, unless it is missing, unreadable, out
  of range, or later than the copy's arrival (a wrong clock or a forged year
  9999 would pin the conversation's `lastMessageAt`, R16b): then the arrival;
- the attachments' bytes: the copy is not in any Gmail mailbox, so auto_bcc
  keeps them itself and gives each its own id (`ab_<n>`, R20).

Whatever the copy holds, parsing ends in an `AutoBccCopy` or a
`MalformedMessage`, never another exception.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message as MimePart
from email.utils import parsedate_to_datetime
from typing import Any

from shared.core.refusal import Refusal
from shared.core.text import make_snippet
from shared.gmail.forwards import FORWARD_HEADERS, is_forward
from shared.gmail.mime_parse import Address, charset_of, decode_words, parse_addresses, to_text

MAX_BODY_CHARS = 300_000
MAX_DEPTH = 20  # as the sync walks Gmail's parts: deeper parts are not read
MAX_FILENAME_CHARS = 255
MAX_MIME_TYPE_CHARS = 255
_MIME_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")
_MSGID = re.compile(r"<[^<>\s]+>")
_SURROGATES = re.compile("[\udc80-\udcff]")


class MalformedMessage(Refusal, ValueError):
    """The body is not a usable RFC 822 message; the text says why (safe to show the caller)."""

    status, code = 400, "malformed_message"


@dataclass
class AutoBccCopy:
    sender: Address
    to: list[Address]
    cc: list[Address]
    bcc: list[Address]
    subject: str
    message_id: str  # "<…>" from the header, or "sha256:<hex>" of the raw bytes
    sent_at: datetime
    in_reply_to: str | None
    references: list[str]
    text: str | None
    html: str | None
    snippet: str
    is_forward: bool
    attachments: list[dict[str, Any]] = field(default_factory=list)  # metadata, as on the message doc
    attachment_data: list[bytes] = field(default_factory=list, repr=False)  # bytes, same order
    # the relays' verdicts, top to bottom as the copy carries them (shared/auto_bcc/sender_auth.py)
    auth_results: list[str] = field(default_factory=list)
    arc_results: list[str] = field(default_factory=list)

    def participants(self) -> list[str]:
        """Every address on the copy (sender, To, Cc, Bcc), for the blocklist (R21)."""
        return [self.sender.email, *(a.email for a in self.recipients())]

    def recipients(self) -> list[Address]:
        """To, then Cc, then Bcc (R12 order), each address once."""
        seen: set[str] = set()
        out = []
        for a in [*self.to, *self.cc, *self.bcc]:
            if a.email not in seen:
                seen.add(a.email)
                out.append(a)
        return out


def _raw_text(value: Any) -> str:
    """A header value as written: 8-bit bytes (kept by the parser as surrogate escapes) read as
    UTF-8, else Latin-1, the two charsets unencoded headers are written in."""
    text = str(value)
    if not _SURROGATES.search(text):
        return text
    data = text.encode("utf-8", "surrogateescape")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _headers(part: MimePart, name: str) -> list[str]:
    key = name.lower()
    return [_raw_text(v) for k, v in part.raw_items() if k.lower() == key]


def _header(part: MimePart, name: str) -> str | None:
    values = _headers(part, name)
    return values[0] if values else None


def _addresses(msg: MimePart, name: str) -> list[Address]:
    out: list[Address] = []
    for v in _headers(msg, name):
        out.extend(parse_addresses(v))
    return out


def attachment_id(index: int) -> str:
    """The id of a copy's n-th attachment; the message doc's `gmailAttachmentId` (R20)."""
    return f"ab_{index}"


def _mime_type(part: MimePart) -> str:
    value = part.get_content_type()[:MAX_MIME_TYPE_CHARS]
    return value if _MIME_TYPE.match(value) else "application/octet-stream"


def _is_attachment(part: MimePart, mime: str) -> bool:
    if mime == "message/rfc822":
        return True
    disposition = (_header(part, "Content-Disposition") or "").strip().lower()
    return disposition.startswith("attachment") or bool(part.get_filename())


def _content(part: MimePart) -> bytes:
    """The part's bytes with the transfer encoding undone (a forwarded message: as written)."""
    payload = part.get_payload()
    if isinstance(payload, list):  # message/rfc822
        return b"".join(m.as_bytes() for m in payload if isinstance(m, MimePart))
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


@dataclass
class _Walk:
    text: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    meta: list[dict[str, Any]] = field(default_factory=list)
    data: list[bytes] = field(default_factory=list)
    forwarded: bool = False


def _walk(msg: MimePart) -> _Walk:
    acc = _Walk()
    stack: list[tuple[MimePart, int]] = [(msg, 0)]
    while stack:
        part, depth = stack.pop()
        mime = part.get_content_type()
        children = part.get_payload() if part.is_multipart() and mime != "message/rfc822" else None
        if isinstance(children, list):
            if depth < MAX_DEPTH:
                stack.extend((c, depth + 1) for c in reversed(children) if isinstance(c, MimePart))
            continue
        if _is_attachment(part, mime):
            acc.forwarded = acc.forwarded or mime == "message/rfc822"
            try:
                content, filename = _content(part), decode_words(_raw_text(part.get_filename() or ""))
            except Exception:  # an undecodable part: keep what can be read of it
                content, filename = b"", ""
            acc.meta.append({"filename": filename[:MAX_FILENAME_CHARS], "mimeType": _mime_type(part),
                             "size": len(content), "gmailAttachmentId": attachment_id(len(acc.data))})
            acc.data.append(content)
        elif mime in ("text/plain", "text/html"):
            text = to_text(_content(part), charset_of(_header(part, "Content-Type") or ""))
            (acc.text if mime == "text/plain" else acc.html).append(text)
    return acc


def _body(parts: list[str]) -> str | None:
    return "\n".join(parts)[:MAX_BODY_CHARS] if parts else None


def sent_at(date_header: str | None, received_at: datetime) -> datetime:
    """The `Date` header in UTC, or the arrival time when it is absent, unreadable, out of range
    or in the future (R16b)."""
    if not date_header:
        return received_at
    try:
        dt = parsedate_to_datetime(date_header)
        if dt is None:
            return received_at
        dt = (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(UTC)
    except (TypeError, ValueError, IndexError, OverflowError):  # year 9999 at -0500 overflows in UTC
        return received_at
    return received_at if dt > received_at else dt


def parse_copy(raw: bytes, received_at: datetime | None = None) -> AutoBccCopy:
    """Parse the copy; MalformedMessage when it has no sender or no recipient at all."""
    try:
        return _parse(raw, (received_at or datetime.now(UTC)).astimezone(UTC))
    except MalformedMessage:
        raise
    except RecursionError:  # the stdlib parser recurses once per multipart level
        raise MalformedMessage("the message nests its parts too deeply to read") from None
    except Exception as exc:  # the parser is lenient, but a hostile copy must not become a 500
        raise MalformedMessage(f"the message cannot be read ({type(exc).__name__})") from None


def _parse(raw: bytes, now: datetime) -> AutoBccCopy:
    if not raw or not raw.strip():
        raise MalformedMessage("the body is empty; send the raw RFC 822 message")
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    if not msg.keys():
        raise MalformedMessage("the body has no RFC 822 headers")
    senders = _addresses(msg, "From")
    if not senders:
        raise MalformedMessage("the message has no valid From address")
    to, cc, bcc = _addresses(msg, "To"), _addresses(msg, "Cc"), _addresses(msg, "Bcc")
    if not (to or cc or bcc):
        raise MalformedMessage("the message has no To, Cc or Bcc address")
    ids = _MSGID.findall(_header(msg, "Message-ID") or "")
    message_id = ids[0] if ids else "sha256:" + hashlib.sha256(raw).hexdigest()
    subject = decode_words(_header(msg, "Subject"))
    walk = _walk(msg)
    text, markup = _body(walk.text), _body(walk.html)
    irt = _MSGID.findall(_header(msg, "In-Reply-To") or "")
    return AutoBccCopy(
        sender=senders[0], to=to, cc=cc, bcc=bcc, subject=subject, message_id=message_id,
        sent_at=sent_at(_header(msg, "Date"), now), in_reply_to=irt[0] if irt else None,
        references=_MSGID.findall(_header(msg, "References") or ""),
        text=text, html=markup, snippet=make_snippet(None, text, markup),
        is_forward=is_forward(subject, {h: str(_header(msg, h) or "") for h in FORWARD_HEADERS}, walk.forwarded),
        attachments=walk.meta, attachment_data=walk.data,
        auth_results=_headers(msg, "Authentication-Results"), arc_results=_headers(msg, "ARC-Authentication-Results"),
    )


def pick_recipient(copy: AutoBccCopy, is_auto_bcc: Callable[[str], bool], internal: set[str]) -> Address | None:
    """The contact the copy is logged under: first external recipient in To, Cc, Bcc order."""
    for a in copy.recipients():
        if is_auto_bcc(a.email) or a.email == copy.sender.email or a.email in internal:
            continue
        return a
    return None
