"""The send_email request (SPEC §6), validated completely before anything is read or written.

Every header value (subject, filenames, addresses, ids that end up in headers)
is checked for the line breaks Python's `email` refuses in a header and for NUL,
which is a 400 `header_injection`; ids follow Firestore's rules; sizes are checked
on the decoded content, so a message over Gmail's 25 MB limit (R15) is a 413
`too_large` before any Firestore or Gmail call.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from shared.gmail.mime_build import OutgoingAttachment
from shared.http.answers import ApiError
from shared.http.validate import (
    MAX_ID_BYTES,
    check_id,
    invalid,
    optional_address_list,
    optional_str,
    require_id,
    require_str,
)

MAX_CONTENT_BYTES = 25 * 1024 * 1024  # R15: text + html + decoded attachments
MAX_MIME_BYTES = 36_700_160  # the discovery document's maxSize for messages.send uploads
# A 25 MB attachment is ~33.4 MB as base64, plus JSON around it.
MAX_REQUEST_BYTES = 36 * 1024 * 1024
MAX_ATTACHMENTS = 100
MAX_SUBJECT_CHARS = 998  # RFC 5322 line length; Gmail cuts longer subjects anyway
MAX_RECIPIENTS = 50
MAX_IDEMPOTENCY_KEY = 200


@dataclass(frozen=True)
class SendRequest:
    account_id: str
    user_id: str
    contact_id: str
    idempotency_key: str
    subject: str | None
    text: str | None
    html: str | None
    cc: tuple[str, ...]
    bcc: tuple[str, ...]
    attachments: tuple[OutgoingAttachment, ...]
    reply_to_message_id: str | None

    @property
    def content_bytes(self) -> int:
        return (len((self.text or "").encode("utf-8")) + len((self.html or "").encode("utf-8"))
                + sum(len(a.content) for a in self.attachments))

    def fingerprint(self) -> str:
        """Identifies the request's content: the same idempotency key with other content is a client bug."""
        h = hashlib.sha256()
        head = {"contactId": self.contact_id, "subject": self.subject, "cc": self.cc, "bcc": self.bcc,
                "replyTo": self.reply_to_message_id}
        h.update(json.dumps(head, sort_keys=True).encode("utf-8"))
        for part in (self.text or "", self.html or ""):
            h.update(hashlib.sha256(part.encode("utf-8")).digest())
        for a in self.attachments:
            h.update(hashlib.sha256(a.filename.encode("utf-8") + b"\0" + a.mime_type.encode("utf-8")).digest())
            h.update(hashlib.sha256(a.content).digest())
        return h.hexdigest()[:32]


def too_large(message: str) -> ApiError:
    return ApiError(413, "too_large", message, limitBytes=MAX_CONTENT_BYTES)


def _attachments(body: dict[str, Any]) -> tuple[OutgoingAttachment, ...]:
    value = body.get("attachments")
    if value is None:
        return ()
    if not isinstance(value, list):
        raise invalid("attachments", "must be a list of {filename, mimeType, contentBase64}")
    if len(value) > MAX_ATTACHMENTS:
        raise invalid("attachments", f"must have at most {MAX_ATTACHMENTS} items")
    out: list[OutgoingAttachment] = []
    total = 0
    for i, item in enumerate(value):
        name = f"attachments[{i}]"
        if not isinstance(item, dict):
            raise invalid(name, "must be an object {filename, mimeType, contentBase64}")
        filename = require_str(item, "filename", max_len=255, header=True) if "filename" in item else None
        if not filename or not filename.strip():
            raise invalid(f"{name}.filename", "is required")
        mime_type = optional_str(item, "mimeType", max_len=255, header=True) or ""
        encoded = item.get("contentBase64")
        if not isinstance(encoded, str):
            raise invalid(f"{name}.contentBase64", "is required and must be a base64 string")
        # Cheap upper bound first, so an oversized body is refused before decoding it.
        if total + (len(encoded) * 3) // 4 - 2 > MAX_CONTENT_BYTES:
            raise too_large(f"attachments exceed {MAX_CONTENT_BYTES} bytes in total (R15)")
        try:
            content = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            try:  # URL-safe alphabet is common in Google APIs; accept it too
                content = base64.b64decode(encoded, altchars=b"-_", validate=True)
            except (binascii.Error, ValueError):
                raise invalid(f"{name}.contentBase64", "is not valid base64") from None
        total += len(content)
        out.append(OutgoingAttachment(filename=filename, mime_type=mime_type, content=content))
    return tuple(out)


def parse_send_request(body: dict[str, Any]) -> SendRequest:
    account_id = require_id(body, "accountId")
    user_id = require_id(body, "userId")
    contact_id = require_id(body, "contactId")
    key = require_str(body, "idempotencyKey", max_len=MAX_IDEMPOTENCY_KEY, header=True)
    if not key.strip():
        raise invalid("idempotencyKey", "must not be empty")
    # A message id the sync wrote (gm_…, ab_…): a Firestore id, and never a line break (it names the parent
    # whose Message-ID goes into In-Reply-To).
    reply_to = optional_str(body, "replyToMessageId", max_len=MAX_ID_BYTES, header=True)
    if reply_to is not None:
        check_id("replyToMessageId", reply_to)
    subject = optional_str(body, "subject", max_len=MAX_SUBJECT_CHARS, header=True)
    if reply_to is None and (subject is None or not subject.strip()):
        raise invalid("subject", "is required (it may be omitted only for a reply)")
    text = optional_str(body, "text", max_len=MAX_CONTENT_BYTES)
    html = optional_str(body, "html", max_len=MAX_CONTENT_BYTES)
    if text is None and html is None:
        raise invalid("text", "text or html is required")
    cc = optional_address_list(body, "cc", max_items=MAX_RECIPIENTS)
    bcc = optional_address_list(body, "bcc", max_items=MAX_RECIPIENTS)
    for field in ("to", "from", "headers"):
        if field in body:
            raise invalid(field, "is not accepted: the sender is the connected Gmail, the recipient the contact (R6)")
    attachments = _attachments(body)
    req = SendRequest(account_id=account_id, user_id=user_id, contact_id=contact_id, idempotency_key=key,
                      subject=subject, text=text, html=html, cc=tuple(cc), bcc=tuple(bcc),
                      attachments=attachments, reply_to_message_id=reply_to)
    if req.content_bytes > MAX_CONTENT_BYTES:
        raise too_large(f"text, html and attachments exceed {MAX_CONTENT_BYTES} bytes in total (R15)")
    return req
