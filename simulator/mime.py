"""RFC 822 in, Gmail's `MessagePart` tree out; and the header edits Gmail makes.

A message is parsed once when it enters a mailbox and kept as an immutable
`ParsedMessage`: the payload tree (JSON-ready, as `format=full` shows it),
the headers the simulator threads and searches by, the snippet, and the
attachments by id. Every later `messages.get` only copies labels around it,
which is what keeps the simulator fast.

What Gmail does that this copies: body data is the transfer-decoded octets
(base64url, charset untouched); multipart containers have `body.size` 0; a
part with a filename is an attachment (`body.attachmentId`, no data); header
values are unfolded and decoded as Gmail shows them: raw UTF-8 (RFC 6532) is
read as UTF-8 (other 8-bit bytes as Windows-1252), RFC 2047 encoded words are
decoded (in an address header each display name on its own, quoted when it
holds a comma or another special, so the value still parses as addresses),
and so are filenames (RFC 2231, RFC 2047 or raw 8-bit); the snippet is the
start of the text, whitespace collapsed, HTML-escaped. A header that cannot
be decoded is kept as written: a message Gmail accepts never fails to parse.
"""

from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import html
import re
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses
from typing import Any

SNIPPET_CHARS = 200
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_WS = re.compile(r"\s+")
_TAG = re.compile(r"<(script|style)\b.*?</\1\s*>|<[^>]+>", re.S | re.I)
_MSGID = re.compile(r"<[^<>\s]+>")
_SUBJECT_PREFIX = re.compile(r"^\s*((re|fwd?|aw|wg|sv|vs|antw|tr)\s*(\[\d+\])?\s*:\s*)+", re.I)


def b64url(data: bytes) -> str:
    """Gmail's body and raw encoding: URL-safe base64 with padding."""
    return base64.urlsafe_b64encode(data).decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Accepts what clients send for `raw`: URL-safe or standard alphabet, padded or not."""
    s = text.strip().replace("+", "-").replace("/", "_")
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def unfold(value: str) -> str:
    return _FOLD.sub("", value)


def normalize_subject(subject: str) -> str:
    """The subject Gmail compares when threading: reply/forward prefixes and case ignored."""
    return _WS.sub(" ", _SUBJECT_PREFIX.sub("", subject or "")).strip().casefold()


def message_ids(value: str | None) -> list[str]:
    return _MSGID.findall(value or "")


@dataclass(frozen=True)
class Attachment:
    part_id: str
    data: bytes


@dataclass(frozen=True)
class ParsedMessage:
    payload: dict[str, Any]
    headers: tuple[tuple[str, str], ...]
    snippet: str
    text: str
    attachments: dict[str, Attachment] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        key = name.lower()
        for k, v in self.headers:
            if k.lower() == key:
                return v
        return None

    def header_all(self, name: str) -> list[str]:
        key = name.lower()
        return [v for k, v in self.headers if k.lower() == key]

    @property
    def subject(self) -> str:
        return self.header("Subject") or ""

    @property
    def rfc822_id(self) -> str | None:
        ids = message_ids(self.header("Message-ID"))
        return ids[0] if ids else None

    @property
    def references(self) -> list[str]:
        """In-Reply-To first, then References newest first: the order threading tries them."""
        refs = message_ids(self.header("In-Reply-To")) + list(reversed(message_ids(self.header("References"))))
        return list(dict.fromkeys(refs))

    def addresses(self, *names: str) -> list[str]:
        """Lower-cased addresses in the given headers, in order."""
        values = [v for n in names for v in self.header_all(n)]
        return [a.lower() for _, a in getaddresses(values) if a and "@" in a]


_ADDRESS_HEADERS = frozenset({"from", "to", "cc", "bcc", "reply-to", "sender", "delivered-to", "return-path",
                              "resent-from", "resent-to", "resent-cc"})
_SPECIALS = re.compile(r'[()<>\[\]:;@\\,."]')


def eight_bit(value: str) -> str:
    """A header value as the parser left it (8-bit bytes as surrogates) read as UTF-8, else as Windows-1252."""
    if not any("\udc80" <= ch <= "\udcff" for ch in value):
        return value
    data = value.encode("ascii", "surrogateescape")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", "replace")


def decode_words(value: str) -> str:
    """RFC 2047 encoded words decoded; a value that does not decode (unknown charset, bad base64) as written."""
    if "=?" not in value:
        return value
    try:
        return str(make_header(decode_header(value)))
    except Exception:  # LookupError, binascii.Error, HeaderParseError, …: Gmail shows such a header as sent
        return value


def display_value(name: str, value: str) -> str:
    """A header value as Gmail's payload.headers shows it (unfolded, decoded)."""
    text = unfold(eight_bit(value)).strip()
    if "=?" not in text:
        return text
    if name.lower() not in _ADDRESS_HEADERS:
        return decode_words(text)
    pairs = getaddresses([text])
    if not pairs or any(not addr and not nm for nm, addr in pairs):
        return decode_words(text)
    out = []
    for nm, addr in pairs:
        shown = decode_words(nm).strip()
        if not shown:
            out.append(addr)
            continue
        if _SPECIALS.search(shown):
            shown = '"' + shown.replace("\\", "\\\\").replace('"', '\\"') + '"'
        out.append(f"{shown} <{addr}>")
    return ", ".join(out)


def _readable(msg: Message) -> None:
    """Every part's header values as text: 8-bit bytes read as UTF-8 (RFC 6532) instead of surrogates.

    compat32 hands a header with 8-bit bytes back as an `email.header.Header`
    (whose str() garbles it) and every accessor that looks inside it fails;
    with text values `get`, `get_filename` and `get_content_charset` work.
    The raw message is stored apart and never re-serialized from this tree.
    """
    for part in msg.walk():
        headers: list[tuple[str, Any]] = part._headers  # type: ignore[attr-defined]
        part._headers = [  # type: ignore[attr-defined]
            (k, eight_bit(v) if isinstance(v, str) else v) for k, v in headers
        ]


def filename_of(part: Message) -> str:
    """The part's filename as Gmail shows it: RFC 2231 and RFC 2047 decoded, never an exception."""
    try:
        name = part.get_filename() or ""
    except Exception:  # a malformed RFC 2231 parameter: no filename rather than a 500
        return ""
    return decode_words(unfold(str(name))).strip()


def parse(raw: bytes, message_key: str) -> ParsedMessage:
    """Parse a raw message. `message_key` makes attachment ids unique to the message."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    _readable(msg)
    attachments: dict[str, Attachment] = {}
    texts: dict[str, str] = {}
    payload = _part(msg, "", message_key, attachments, texts)
    text = texts.get("text/plain")
    if text is None and "text/html" in texts:
        text = html.unescape(_TAG.sub(" ", texts["text/html"]))
    text = text or ""
    snippet = html.escape(_collapsed_start(text)).replace("&#x27;", "&#39;")
    headers = tuple((k, display_value(k, str(v))) for k, v in _raw_headers(msg))
    return ParsedMessage(payload=payload, headers=headers, snippet=snippet, text=text, attachments=attachments)


def _collapsed_start(text: str) -> str:
    """The first SNIPPET_CHARS of the text with whitespace collapsed, without collapsing all of a 30 MB body.

    Collapsing is local, so once a prefix yields more than SNIPPET_CHARS the
    start of the whole text is known.
    """
    n = 4 * SNIPPET_CHARS
    while True:
        collapsed = _WS.sub(" ", text[:n]).strip()
        if len(collapsed) > SNIPPET_CHARS or n >= len(text):
            return collapsed[:SNIPPET_CHARS]
        n *= 4


def _part(
    part: Message, part_id: str, key: str, attachments: dict[str, Attachment], texts: dict[str, str]
) -> dict[str, Any]:
    mime = part.get_content_type()
    filename = filename_of(part)
    out: dict[str, Any] = {
        "partId": part_id,
        "mimeType": mime,
        "filename": filename,
        "headers": [{"name": k, "value": display_value(k, str(v))} for k, v in _raw_headers(part)],
    }
    if part.is_multipart() and mime != "message/rfc822":
        children = part.get_payload()
        assert isinstance(children, list)
        prefix = f"{part_id}." if part_id else ""
        out["body"] = {"size": 0}
        out["parts"] = [_part(c, f"{prefix}{i}", key, attachments, texts) for i, c in enumerate(children)]
        return out
    data = _leaf_bytes(part)
    disposition = str(part.get("Content-Disposition") or "").split(";")[0].strip().lower()
    if filename or disposition == "attachment" or mime == "message/rfc822":
        att_id = _attachment_id(key, part_id)
        attachments[att_id] = Attachment(part_id=part_id, data=data)
        out["body"] = {"attachmentId": att_id, "size": len(data)}
        return out
    if mime in ("text/plain", "text/html") and mime not in texts:
        charset = part.get_content_charset() or "utf-8"
        try:
            texts[mime] = data.decode(charset, "replace")
        except LookupError:
            texts[mime] = data.decode("utf-8", "replace")
    out["body"] = {"size": len(data), "data": b64url(data)} if data else {"size": 0}
    return out


def _raw_headers(part: Message) -> list[tuple[str, Any]]:
    # compat32 keeps each header as written; the public accessors would decode or refold it.
    headers: list[tuple[str, Any]] = part._headers  # type: ignore[attr-defined]
    return headers


def _leaf_bytes(part: Message) -> bytes:
    if part.get_content_type() == "message/rfc822" or part.is_multipart():
        inner = part.get_payload()
        if isinstance(inner, list):
            return b"".join(m.as_bytes() for m in inner if isinstance(m, Message))
    data = part.get_payload(decode=True)
    if isinstance(data, bytes):
        return data
    return b""


def _attachment_id(key: str, part_id: str) -> str:
    # Opaque and long like Gmail's ("ANGjdJ…"); stable, so a test can compare two reads.
    digest = hashlib.sha256(f"{key}/{part_id}".encode()).digest()
    return "ANGjdJ" + base64.urlsafe_b64encode(digest + digest[:12]).decode("ascii").rstrip("=")


# -- header edits on raw bytes ---------------------------------------------------------


@dataclass
class RawMessage:
    """A raw message split into header lines (each with its folded continuations) and the rest."""

    header_lines: list[bytes]
    newline: bytes
    body: bytes

    @classmethod
    def split(cls, raw: bytes) -> RawMessage:
        newline = b"\r\n" if b"\r\n" in raw[:2000] else b"\n"
        end = raw.find(newline + newline)
        if end < 0:
            head, body = raw, b""
        else:
            head, body = raw[:end], raw[end + 2 * len(newline) :]
        lines: list[bytes] = []
        for line in head.split(newline):
            if lines and line[:1] in (b" ", b"\t"):
                lines[-1] += newline + line
            elif line:
                lines.append(line)
        return cls(lines, newline, body)

    def _name(self, line: bytes) -> str:
        return line.split(b":", 1)[0].strip().decode("ascii", "replace").lower()

    def get(self, name: str) -> str | None:
        key = name.lower()
        for line in self.header_lines:
            if self._name(line) == key:
                return unfold(line.split(b":", 1)[1].decode("utf-8", "replace")).strip()
        return None

    def remove(self, name: str) -> None:
        key = name.lower()
        self.header_lines = [ln for ln in self.header_lines if self._name(ln) != key]

    def set(self, name: str, value: str, *, prepend: bool = False) -> None:
        key = name.lower()
        line = f"{name}: {value}".encode()
        for i, ln in enumerate(self.header_lines):
            if self._name(ln) == key:
                self.header_lines[i] = line
                return
        if prepend:
            self.header_lines.insert(0, line)
        else:
            self.header_lines.append(line)

    def to_bytes(self) -> bytes:
        return self.newline.join(self.header_lines) + self.newline + self.newline + self.body
