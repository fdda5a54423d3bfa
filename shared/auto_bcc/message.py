"""A raw RFC 822 Auto BCC copy -> the fields of an outbound CRM message (R16). Pure, no I/O.

The copy comes from any mail client (Outlook, Apple Mail, Gmail), so it is
parsed with the stdlib `email` package (policy=default: lenient, decodes
RFC 2047 words and transfer encodings). What it must decide:

- the recipient contact: the first To address (then Cc, then Bcc) that is not
  an Auto BCC address, not the sender, and not a user of the CRM account (the
  caller passes those), as R12 orders recipients;
- a stable id for idempotency: the Message-ID header (a mail server that
  delivers the same copy twice keeps it), or, if a client omitted it, a hash
  of the raw bytes.
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
    attachments: list[dict[str, Any]] = field(default_factory=list)

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


def _attachments(msg: EmailMessage) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    try:
        parts = list(msg.iter_attachments())
    except Exception:
        return out
    for part in parts:
        payload = part.get_payload(decode=True)
        out.append({
            "filename": decode_words(part.get_filename() or ""),
            "mimeType": part.get_content_type(),
            "size": len(payload) if isinstance(payload, bytes) else 0,
            "gmailAttachmentId": None,  # the copy is not in Gmail; only metadata is kept (R15)
        })
    return out


def _sent_at(msg: EmailMessage, received_at: datetime) -> datetime:
    value = _header(msg, "Date")
    if value:
        try:
            dt = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return received_at
        if dt is not None:
            return dt if dt.tzinfo else dt.replace(tzinfo=UTC)
    return received_at


def parse_copy(raw: bytes, received_at: datetime | None = None) -> AutoBccCopy:
    """Parse the copy; MalformedMessage when it has no sender or no recipient at all."""
    now = received_at or datetime.now(UTC)
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
    return AutoBccCopy(
        sender=senders[0], to=to, cc=cc, bcc=bcc, subject=subject, message_id=message_id,
        sent_at=_sent_at(msg, now), in_reply_to=irt[0] if irt else None,
        references=_MSGID.findall(_header(msg, "References") or ""),
        text=text, html=markup, snippet=make_snippet(None, text, markup),
        is_forward=bool(FORWARD_SUBJECT.match(subject)), attachments=_attachments(msg),
    )


def pick_recipient(copy: AutoBccCopy, is_auto_bcc: Callable[[str], bool], internal: set[str]) -> Address | None:
    """The contact the copy is logged under: first external recipient in To, Cc, Bcc order."""
    for a in copy.recipients():
        if is_auto_bcc(a.email) or a.email == copy.sender.email or a.email in internal:
            continue
        return a
    return None
