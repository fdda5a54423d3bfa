"""Mail as people write it, for the console's controls: a contact writing in, the rep in Gmail.

Built with the stdlib `email` package (policy default); the simulator then
treats it exactly like mail from outside (`/sim/…/deliver`) or a send from
Gmail's own UI (`/sim/…/send`). Replies and forwards carry In-Reply-To and
References of the logged message, as Gmail writes them, so they thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr, make_msgid
from typing import Any


@dataclass(frozen=True)
class Upload:
    filename: str
    mime_type: str
    content: bytes


def _new(frm: str, to: list[str], subject: str, text: str) -> EmailMessage:
    m = EmailMessage()
    m["From"] = frm
    m["To"] = ", ".join(to)
    m["Subject"] = subject
    m["Message-ID"] = make_msgid(domain="console.localhost")
    m.set_content(text)
    return m


def _attach(m: EmailMessage, upload: Upload | None) -> None:
    if upload is not None:
        maintype, _, subtype = (upload.mime_type or "application/octet-stream").partition("/")
        m.add_attachment(upload.content, maintype=maintype, subtype=subtype or "octet-stream",
                         filename=upload.filename)


def from_contact(address: str, name: str, to: str, subject: str, text: str, upload: Upload | None = None) -> bytes:
    """A contact writing to the rep from their own mail client."""
    m = _new(formataddr((name, address)) if name else address, [to], subject, text)
    _attach(m, upload)
    return m.as_bytes(policy=SMTP)


def _subject(prefix: str, subject: str) -> str:
    """'Re: Quote' stays 'Re: Quote' (no 'Re: Re:'), as Gmail does."""
    subject = subject or ""
    return subject if subject.lower().startswith(prefix.lower()) else f"{prefix} {subject}".strip()


def _thread_headers(m: EmailMessage, original: dict[str, Any]) -> None:
    parent = original.get("rfc822MessageId")
    if parent:
        refs = [r for r in original.get("references") or [] if r] + [parent]
        m["In-Reply-To"] = parent
        m["References"] = " ".join(dict.fromkeys(refs))


def reply(rep: str, original: dict[str, Any], text: str) -> bytes:
    """The rep answering a logged message from Gmail: to its contact, same thread."""
    to = [original.get("from", "")] if original.get("direction") == "inbound" else list(original.get("to") or [])
    m = _new(rep, [a for a in to if a], _subject("Re:", original.get("subject", "")), text)
    _thread_headers(m, original)
    return m.as_bytes(policy=SMTP)


def forward(rep: str, original: dict[str, Any], to: str, text: str) -> bytes:
    """The rep forwarding a logged message from Gmail, the original quoted as Gmail does."""
    sent = original.get("sentAt")
    header = [
        "---------- Forwarded message ---------",
        f"From: {original.get('from', '')}",
        f"Date: {format_datetime(sent) if isinstance(sent, datetime) else sent or ''}",
        f"Subject: {original.get('subject', '')}",
        f"To: {', '.join(original.get('to') or [])}",
    ]
    body = f"{text}\n\n" + "\n".join(header) + "\n\n" + (original.get("text") or original.get("snippet") or "")
    m = _new(rep, [to], _subject("Fwd:", original.get("subject", "")), body)
    _thread_headers(m, original)
    return m.as_bytes(policy=SMTP)
