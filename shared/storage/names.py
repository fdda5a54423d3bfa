"""Object names of the whole mail (R32): one prefix per account, one per message document.

    accounts/{accountId}/conversations/{conversationId}/messages/{messageId}/body.txt
                                                                        .../body.html
                                                                        .../attachments/{n}

The segments are the Firestore ids of the message document, so two messages
share a name only when they share a document (and then the first write wins
for both). An id that is not plain url-safe (`[A-Za-z0-9_-]`) is written as
`~` + its base64url: no id can smuggle a `/`, `.` or `..` segment into a name,
and the encoding is one-to-one, so ids of different tenants never meet. The
per-account prefix is what an operator exports or erases for one account
(docs/OPERATIONS.md).
"""

from __future__ import annotations

import base64
import re
from typing import Literal

_PLAIN = re.compile(r"[A-Za-z0-9_-]{1,256}")
BodyKind = Literal["text", "html"]
BODY_FILES: dict[str, str] = {"text": "body.txt", "html": "body.html"}


def segment(value: str) -> str:
    """One id as a name segment: itself when url-safe, else `~` + unpadded base64url of its UTF-8."""
    if _PLAIN.fullmatch(value):
        return value
    return "~" + base64.urlsafe_b64encode(value.encode("utf-8", "replace")).decode("ascii").rstrip("=")


def account_prefix(account_id: str) -> str:
    return f"accounts/{segment(account_id)}/"


def message_prefix(account_id: str, conversation_id: str, message_id: str) -> str:
    return (f"{account_prefix(account_id)}conversations/{segment(conversation_id)}"
            f"/messages/{segment(message_id)}/")


def body_name(account_id: str, conversation_id: str, message_id: str, kind: BodyKind) -> str:
    return message_prefix(account_id, conversation_id, message_id) + BODY_FILES[kind]


def attachment_name(account_id: str, conversation_id: str, message_id: str, index: int) -> str:
    return f"{message_prefix(account_id, conversation_id, message_id)}attachments/{index}"
