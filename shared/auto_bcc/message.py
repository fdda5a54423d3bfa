"""A raw RFC 822 Auto BCC copy -> the fields of an outbound CRM message (R16). Pure, no I/O.

The copy comes from any mail client (Outlook, Apple Mail, Gmail), so it is
parsed with the stdlib `email` package (policy=default: lenient, decodes
RFC 2047 words and transfer encodings). What it must decide:

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

Whatever the copy holds (it comes from the internet), parsing ends in an
`AutoBccCopy` or a `MalformedMessage`, never another exception.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from typing import Any

from shared.core.text import make_snippet
from shared.gmail.mime_parse import FORWARD_SUBJECT, Address, decode_words, parse_addresses

MAX_BODY_CHARS = 300_000
MAX_FILENAME_CHARS = 255
MAX_MIME_TYPE_CHARS = 255
_MIME_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")
_MSGID = re.compile(r"<[^<>\s]+>")


class MalformedMessage(ValueError):
    """The body is not a usable RFC 822 message; the text says why (safe to show the caller)."""


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


def _header(msg: EmailMessage, name: str) -> str | None:
    try:
        value = msg.get(name)
    except Exception:  # a header the policy cannot parse: fall back to its raw text
        raw = [v for k, v in msg.raw_items() if k.lower() == name.lower()]
        value = raw[0] if raw else None
    return None if value is None else str(value)


def _addresses(msg: EmailMessage, name: str) -> list[Address]:
    try:
        values = msg.get_all(name) or []
    except Exception:
        values = [v for k, v in msg.raw_items() if k.lower() == name.lower()]
    out: list[Address] = []
    for v in values:
        out.extend(parse_addresses(str(v)))
    return out


def _body(msg: EmailMessage, subtype: str) -> str | None:
    try:
        part = msg.get_body(preferencelist=(subtype,))
        if part is None:
            return None
        content = part.get_content()
    except (LookupError, KeyError, ValueError, AssertionError, UnicodeError):
        return None
    if not isinstance(content, str):
        return None
    return content[:MAX_BODY_CHARS]


def attachment_id(index: int) -> str:
    """The id of a copy's n-th attachment; the message doc's `gmailAttachmentId` (R20)."""
    return f"ab_{index}"


def _mime_type(part: EmailMessage) -> str:
    value = part.get_content_type()[:MAX_MIME_TYPE_CHARS]
    return value if _MIME_TYPE.match(value) else "application/octet-stream"


def _attachments(msg: EmailMessage) -> tuple[list[dict[str, Any]], list[bytes]]:
    meta: list[dict[str, Any]] = []
    data: list[bytes] = []
    try:
        parts = list(msg.iter_attachments())
    except Exception:
        return meta, data
    for part in parts:
        try:
            payload = part.get_payload(decode=True)
            filename = decode_words(part.get_filename() or "")
        except Exception:  # an undecodable part: keep what can be read of it
            payload, filename = b"", ""
        content = payload if isinstance(payload, bytes) else b""
        meta.append({
            "filename": filename[:MAX_FILENAME_CHARS],
            "mimeType": _mime_type(part),
            "size": len(content),
            "gmailAttachmentId": attachment_id(len(data)),
        })
        data.append(content)
    return meta, data


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
    except RecursionError:
        raise MalformedMessage("the message nests its parts too deeply to read") from None
    except Exception as exc:  # the stdlib parser is lenient, but a hostile copy must not become a 500
        raise MalformedMessage(f"the message cannot be read ({type(exc).__name__})") from None


def _parse(raw: bytes, now: datetime) -> AutoBccCopy:
    if not raw or not raw.strip():
        raise MalformedMessage("the body is empty; send the raw RFC 822 message")
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    if not isinstance(msg, EmailMessage) or not msg.keys():
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
    text, markup = _body(msg, "plain"), _body(msg, "html")
    irt = _MSGID.findall(_header(msg, "In-Reply-To") or "")
    meta, data = _attachments(msg)
    return AutoBccCopy(
        sender=senders[0], to=to, cc=cc, bcc=bcc, subject=subject, message_id=message_id,
        sent_at=sent_at(_header(msg, "Date"), now), in_reply_to=irt[0] if irt else None,
        references=_MSGID.findall(_header(msg, "References") or ""),
        text=text, html=markup, snippet=make_snippet(None, text, markup),
        is_forward=bool(FORWARD_SUBJECT.match(subject)), attachments=meta, attachment_data=data,
    )


def pick_recipient(copy: AutoBccCopy, is_auto_bcc: Callable[[str], bool], internal: set[str]) -> Address | None:
    """The contact the copy is logged under: first external recipient in To, Cc, Bcc order."""
    for a in copy.recipients():
        if is_auto_bcc(a.email) or a.email == copy.sender.email or a.email in internal:
            continue
        return a
    return None
