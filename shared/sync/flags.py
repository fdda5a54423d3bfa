"""R19: a Gmail message's labels → the CRM's view of it (`read`, `starred`, `trashed`, `deletedInGmail`).

One definition for both ends: a new message gets its first state from the
labelIds of `messages.get`, and later history records (`labelsAdded`,
`labelsRemoved` carry the message's labelIds; `messagesDeleted`) give the new
state without another `messages.get` (shared/sync/updates.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class MessageFlags:
    read: bool = True
    starred: bool = False
    trashed: bool = False
    deletedInGmail: bool = False

    def to_doc(self) -> dict[str, Any]:
        return asdict(self)


DELETED = MessageFlags(read=True, starred=False, trashed=False, deletedInGmail=True)


def flags_from_labels(label_ids: Iterable[str]) -> MessageFlags:
    """Gmail's system labels: UNREAD (not read), STARRED, TRASH."""
    labels = set(label_ids)
    return MessageFlags(read="UNREAD" not in labels, starred="STARRED" in labels, trashed="TRASH" in labels)


def changed_fields(stored: dict[str, Any], flags: MessageFlags) -> dict[str, Any]:
    """The flag fields of a stored message document that differ from `flags` (empty: nothing to write).

    A message deleted in Gmail keeps the read/starred/trashed it had: Gmail's
    deletion record says only that it is gone (and a deletion is final)."""
    if stored.get("deletedInGmail") is True:
        return {}
    if flags.deletedInGmail:
        return {"deletedInGmail": True}
    want = flags.to_doc()
    want.pop("deletedInGmail")
    return {k: v for k, v in want.items() if stored.get(k) != v}
