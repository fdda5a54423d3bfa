"""A Gmail `format=full` message resource → the fields a CRM message needs.

Gmail has already parsed the MIME tree and undone each part's transfer
encoding: `body.data` is base64url of the part's bytes in the part's own
charset. What is left to us is picking the text and HTML bodies (any
charset, with a fallback when the label lies), decoding RFC 2047 encoded words
in headers (Gmail returns header values as written), attachment metadata (R15:
name, type, size, Gmail attachment id; the content stays in Gmail), and a
snippet. Part headers still say `Content-Transfer-Encoding: quoted-printable`
although the data is decoded, so that header must not be applied again.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
from dataclasses import dataclass, field
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.utils import getaddresses
from typing import Any

from shared.core.text import make_snippet


@dataclass(frozen=True)
class Address:
    email: str  # lower-cased
    name: str = ""

    def display(self) -> str:
        return f"{self.name} <{self.email}>" if self.name else self.email


@dataclass(frozen=True)
class AttachmentMeta:
    filename: str
    mimeType: str
    size: int
    gmailAttachmentId: str | None
    partId: str = ""

    def to_doc(self) -> dict[str, Any]:
        return {"filename": self.filename, "mimeType": self.mimeType, "size": self.size,
                "gmailAttachmentId": self.gmailAttachmentId}


@dataclass
class ParsedMessage:
    gmail_id: str
    thread_id: str
    label_ids: frozenset[str]
    internal_date_ms: int
    sender: Address | None
    to: list[Address]
    cc: list[Address]
    bcc: list[Address]
    subject: str
    rfc822_message_id: str | None
    in_reply_to: str | None
    references: list[str]
    text: str | None
    html: str | None
    snippet: str
    attachments: list[AttachmentMeta] = field(default_factory=list)
    has_attached_message: bool = False  # a message/rfc822 part (a forward as attachment, R29)
    headers: dict[str, str] = field(default_factory=dict)  # lower-cased names, first value

    def recipients(self) -> list[Address]:
        return [*self.to, *self.cc, *self.bcc]


def decode_words(value: str | None) -> str:
    """Header value with RFC 2047 encoded words decoded; unknown charsets degrade, never raise."""
    if not value:
        return ""
    if "=?" not in value:
        return " ".join(value.split())
    try:
        return " ".join(str(make_header(decode_header(value))).split())
    except (LookupError, UnicodeDecodeError, ValueError, binascii.Error, HeaderParseError):
        return " ".join(value.split())


def parse_addresses(value: str | None) -> list[Address]:
    """Addresses of a To/Cc/Bcc/From header, display names decoded, empty and malformed ones dropped."""
    if not value:
        return []
    out: list[Address] = []
    seen: set[str] = set()
    for name, addr in getaddresses([value]):
        addr = addr.strip().strip("<>").strip().lower()
        if "@" not in addr or " " in addr:
            continue
        if addr in seen:
            continue
        seen.add(addr)
        out.append(Address(email=addr, name=decode_words(name).strip('"').strip()))
    return out


def _b64url(data: str) -> bytes:
    data = data.strip()
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def charset_of(content_type: str) -> str:
    m = re.search(r'charset\s*=\s*"?([^";\s]+)"?', content_type or "", re.IGNORECASE)
    return (m.group(1) if m else "utf-8").strip().lower()


def to_text(raw: bytes, charset: str) -> str:
    """Bytes in a declared charset → str; a wrong or unknown charset falls back, never raises."""
    try:
        codecs.lookup(charset)
    except LookupError:
        charset = "utf-8"
    if charset in ("us-ascii", "ascii"):
        charset = "utf-8"  # mislabelled 8-bit mail is common; utf-8 decodes ASCII identically
    try:
        return raw.decode(charset)
    except UnicodeDecodeError:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw.decode("latin-1" if charset == "utf-8" else charset, errors="replace")


def decode_part_bytes(body_data: str) -> bytes:
    """The part's content bytes (Gmail has already removed the transfer encoding)."""
    return _b64url(body_data)


def _headers(part: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for h in part.get("headers") or []:
        name = str(h.get("name", "")).lower()
        if name and name not in out:
            out[name] = str(h.get("value", ""))
    return out


def _is_attachment(part: dict[str, Any], headers: dict[str, str]) -> bool:
    if part.get("filename"):
        return True
    disposition = headers.get("content-disposition", "").lower()
    return disposition.startswith("attachment")


def _filename(part: dict[str, Any], headers: dict[str, str]) -> str:
    name = part.get("filename") or ""
    if not name:
        m = re.search(r'filename\*?\s*=\s*"?([^";]+)"?', headers.get("content-disposition", ""), re.IGNORECASE)
        name = m.group(1) if m else ""
    return decode_words(name) or ("forwarded-message.eml" if part.get("mimeType") == "message/rfc822"
                                  else "attachment")


@dataclass
class _Walk:
    text: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    attachments: list[AttachmentMeta] = field(default_factory=list)
    forwarded: bool = False


def _walk(part: dict[str, Any], acc: _Walk, depth: int = 0) -> None:
    if depth > 20:  # a hostile message cannot recurse us to death
        return
    mime = str(part.get("mimeType") or "").lower()
    headers = _headers(part)
    body = part.get("body") or {}
    if mime == "message/rfc822":
        acc.forwarded = True
    if (_is_attachment(part, headers) or body.get("attachmentId")) and not mime.startswith("multipart/"):
        acc.attachments.append(AttachmentMeta(
            filename=_filename(part, headers), mimeType=mime or "application/octet-stream",
            size=int(body.get("size") or 0), gmailAttachmentId=body.get("attachmentId"),
            partId=str(part.get("partId") or ""),
        ))
        return
    children = part.get("parts") or []
    if children:
        for child in children:
            _walk(child, acc, depth + 1)
        return
    if mime in ("text/plain", "text/html") and body.get("data"):
        raw = decode_part_bytes(str(body["data"]))
        content = to_text(raw, charset_of(headers.get("content-type", "")))
        (acc.text if mime == "text/plain" else acc.html).append(content)


def _message_ids(value: str | None) -> list[str]:
    return re.findall(r"<[^<>\s]+>", value or "")


def parse_gmail_message(resource: dict[str, Any]) -> ParsedMessage:
    """Parse one `users.messages.get(format=full)` resource."""
    payload = resource.get("payload") or {}
    headers = _headers(payload)
    acc = _Walk()
    _walk(payload, acc)
    text = "\n".join(acc.text) if acc.text else None
    markup = "\n".join(acc.html) if acc.html else None
    senders = parse_addresses(headers.get("from"))
    mid = _message_ids(headers.get("message-id"))
    irt = _message_ids(headers.get("in-reply-to"))
    return ParsedMessage(
        gmail_id=str(resource.get("id") or ""),
        thread_id=str(resource.get("threadId") or resource.get("id") or ""),
        label_ids=frozenset(resource.get("labelIds") or []),
        internal_date_ms=int(resource.get("internalDate") or 0),
        sender=senders[0] if senders else None,
        to=parse_addresses(headers.get("to")),
        cc=parse_addresses(headers.get("cc")),
        bcc=parse_addresses(headers.get("bcc")),
        subject=decode_words(headers.get("subject")),
        rfc822_message_id=mid[0] if mid else (headers.get("message-id") or None),
        in_reply_to=irt[0] if irt else None,
        references=_message_ids(headers.get("references")),
        text=text,
        html=markup,
        snippet=make_snippet(resource.get("snippet"), text, markup),
        attachments=acc.attachments,
        has_attached_message=acc.forwarded,
        headers=headers,
    )
