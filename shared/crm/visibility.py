"""R31: how much of a rep's synced mail the CRM keeps (`accounts/{a}/users/{u}.emailVisibility`).

`shared` (the default) keeps everything; `subject` keeps participants, time and
subject (no body, snippet or attachments); `metadata` keeps participants and
time only. What is not kept is never written, so a stored message can only be
as open as the most open rep who saw it (R25 lists them in `mailboxIds`): a
later copy through a more open rep's mailbox upgrades the document, a less open
one never takes anything away. Pure functions; the sync reads the level with
the pass's other per-account documents (shared/sync/engine.py
`linked_accounts`), so a change applies to mail synced afterwards.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, cast

from shared.core.models import Visibility

LEVELS: tuple[Visibility, ...] = ("metadata", "subject", "shared")  # least to most open
DEFAULT: Visibility = "shared"
FIELD = "emailVisibility"

# What a level leaves out of a message document, with the value it is stored as instead.
_HIDDEN_BY_SUBJECT: dict[str, Any] = {"text": None, "html": None, "snippet": "", "attachments": []}
_HIDDEN_BY_METADATA: dict[str, Any] = {**_HIDDEN_BY_SUBJECT, "subject": ""}
# The fields a more open copy brings to a document stored at a closed level (R25's upgrade).
CONTENT_FIELDS = ("subject", "text", "html", "snippet", "attachments", "truncated", "visibility")


def level_of(value: Any) -> Visibility:
    """A user's `emailVisibility` as stored by the CRM; anything unknown is the default (never hides less
    than asked: an unknown value is a CRM bug, and `shared` is what 0.2 did)."""
    text = str(value).strip().lower() if isinstance(value, str) else ""
    return cast(Visibility, text) if text in LEVELS else DEFAULT


def user_level(user_doc: Mapping[str, Any] | None) -> Visibility:
    return level_of((user_doc or {}).get(FIELD))


def most_open(levels: Iterable[Visibility]) -> Visibility:
    """The most open of several reps' levels (mail several reps saw, R31); `metadata` when there are none."""
    return max(levels, key=LEVELS.index, default="metadata")


def is_more_open(level: Visibility, than: Visibility) -> bool:
    return LEVELS.index(level) > LEVELS.index(than)


def stored_level(doc: Mapping[str, Any]) -> Visibility:
    """The level a stored document is at (documents from before 0.3 hold everything)."""
    return level_of(doc.get("visibility"))


def apply(doc: dict[str, Any], level: Visibility) -> dict[str, Any]:
    """The message document as `level` stores it (a new dict); `visibility` says which level it is."""
    hidden = {"shared": {}, "subject": _HIDDEN_BY_SUBJECT, "metadata": _HIDDEN_BY_METADATA}[level]
    out = {**doc, **hidden, "visibility": level}
    if hidden:
        out["truncated"] = False
    return out


def upgrade(stored: Mapping[str, Any], copy: Mapping[str, Any]) -> dict[str, Any]:
    """The fields to write when `copy` (a document as another mailbox's rep stores it) reaches a message
    already `stored`: its content when it is more open, else nothing."""
    if not is_more_open(stored_level(copy), stored_level(stored)):
        return {}
    return {k: copy.get(k) for k in CONTENT_FIELDS}
