"""Build the RFC 822 message a CRM send hands to Gmail (stdlib `email`, policy=default).

Why build it ourselves instead of letting Gmail fill in headers: the Message-ID
is ours and deterministic (derived from the idempotency key), so a retry after
a crash can ask Gmail whether the first attempt went out (`rfc822msgid:`),
and the sync engine can recognise the message later. Replies carry
In-Reply-To/References and a "Re:" subject, which together with the threadId
is what Gmail needs to keep them in one thread (R10).

The structure follows what mail clients produce: text and HTML together are a
multipart/alternative, attachments wrap that in a multipart/mixed; non-ASCII
subjects become RFC 2047 encoded words, non-ASCII filenames RFC 2231
parameters. Serialisation uses CRLF line ends (RFC 5322) and
quoted-printable bodies, so the message is 7-bit clean apart from binary
attachments, which are base64.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

MESSAGE_ID_DOMAIN = "gmail-crm-sync"
_RE_PREFIX = re.compile(r"^\s*(re|aw|sv|antw)\s*:\s*", re.IGNORECASE)
_MIME_TYPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$")
_UNSAFE = re.compile(r"[\r\n\x00]")


@dataclass(frozen=True)
class OutgoingAttachment:
    filename: str
    mime_type: str
    content: bytes


@dataclass(frozen=True)
class OutgoingEmail:
    """Everything that goes into the message; addresses are already validated."""

    from_address: str
    to_address: str
    subject: str
    message_id: str
    from_name: str = ""
    to_name: str = ""
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()
    text: str | None = None
    html: str | None = None
    attachments: tuple[OutgoingAttachment, ...] = ()
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    date: datetime | None = None
    extra_headers: dict[str, str] = field(default_factory=dict)


def message_id_for(idempotency_id: str) -> str:
    """The Message-ID of a CRM send: the same key always yields the same id (R18 crash window)."""
    token = hashlib.sha256(("crm-send\x00" + idempotency_id).encode("utf-8")).hexdigest()[:40]
    return f"<{token}@{MESSAGE_ID_DOMAIN}>"


def is_crm_message_id(message_id: str | None) -> bool:
    return bool(message_id) and (message_id or "").strip().endswith(f"@{MESSAGE_ID_DOMAIN}>")


def strip_reply_prefixes(subject: str) -> str:
    """'Re: RE: Aw: Offer' -> 'Offer' (Gmail compares subjects without these prefixes)."""
    previous = None
    s = subject.strip()
    while previous != s:
        previous = s
        s = _RE_PREFIX.sub("", s, count=1).strip()
    return s


def reply_subject(subject: str) -> str:
    """The "Re:" rule: exactly one 'Re: ' in front of the original subject."""
    return "Re: " + strip_reply_prefixes(subject)


def reply_references(parent_references: list[str] | tuple[str, ...], parent_message_id: str) -> tuple[str, ...]:
    """RFC 5322 §3.6.4: the parent's References (or In-Reply-To) followed by the parent's Message-ID."""
    refs = [r for r in parent_references if r and r != parent_message_id]
    refs.append(parent_message_id)
    # Keep the first one (thread root) and the most recent ones: long threads must not grow headers forever.
    if len(refs) > 20:
        refs = [refs[0], *refs[-19:]]
    return tuple(refs)


def normalize_mime_type(mime_type: str | None, filename: str) -> tuple[str, str]:
    """(maintype, subtype) for an attachment: the given type if well-formed, else a guess from the name."""
    candidate = (mime_type or "").strip().lower()
    if not _MIME_TYPE.match(candidate):
        candidate = (mimetypes.guess_type(filename, strict=False)[0] or "application/octet-stream").lower()
    maintype, _, subtype = candidate.partition("/")
    if maintype == "multipart":  # a multipart needs boundaries we did not write: send it as opaque bytes
        return "application", "octet-stream"
    return maintype, subtype


def safe_filename(filename: str) -> str:
    """The last path component, without control characters (a name, never a path)."""
    name = re.split(r"[\\/]", filename)[-1]
    name = "".join(ch for ch in name if ch >= " " and ch != "\x7f").strip()
    return name or "attachment"


def _display_name(name: str) -> str:
    # Names come from CRM documents, not from the request; CR/LF there must not break the header.
    return _UNSAFE.sub(" ", name).strip()


def build_message(email: OutgoingEmail) -> EmailMessage:
    if email.text is None and email.html is None:
        raise ValueError("a message needs text or html")
    msg = EmailMessage(policy=policy.default)
    msg["From"] = Address(display_name=_display_name(email.from_name), addr_spec=email.from_address)
    msg["To"] = Address(display_name=_display_name(email.to_name), addr_spec=email.to_address)
    if email.cc:
        msg["Cc"] = [Address(addr_spec=a) for a in email.cc]
    if email.bcc:
        # Gmail reads Bcc from the raw message and removes it before delivery; the Sent copy keeps it.
        msg["Bcc"] = [Address(addr_spec=a) for a in email.bcc]
    msg["Subject"] = email.subject
    msg["Date"] = format_datetime(email.date or datetime.now(UTC))
    msg["Message-ID"] = email.message_id
    if email.in_reply_to:
        msg["In-Reply-To"] = email.in_reply_to
    if email.references:
        msg["References"] = " ".join(email.references)
    for name, value in email.extra_headers.items():
        msg[name] = value

    if email.text is not None:
        msg.set_content(email.text, subtype="plain", cte="quoted-printable")
        if email.html is not None:
            msg.add_alternative(email.html, subtype="html", cte="quoted-printable")
    else:
        msg.set_content(email.html or "", subtype="html", cte="quoted-printable")

    for att in email.attachments:
        maintype, subtype = normalize_mime_type(att.mime_type, att.filename)
        filename = safe_filename(att.filename)
        if maintype == "message":
            # RFC 2046 §5.2.1: message/* parts may not be base64; 8bit carries any content.
            msg.add_attachment(att.content, maintype=maintype, subtype=subtype, filename=filename, cte="8bit")
        else:
            msg.add_attachment(att.content, maintype=maintype, subtype=subtype, filename=filename)
    return msg


def to_bytes(msg: EmailMessage) -> bytes:
    """CRLF-terminated wire bytes (what Gmail's `raw` and the upload endpoint take)."""
    return msg.as_bytes(policy=policy.SMTP)


def build_bytes(email: OutgoingEmail) -> bytes:
    return to_bytes(build_message(email))
