"""R20 for CRM sends: give a message send_email logged the Gmail attachment ids it could not know.

Gmail's messages.send answers only id/threadId/labelIds, so send_email logs
`attachments: [{filename, mimeType, size}]` without `gmailAttachmentId`, and
the send path's round-trip budget leaves no room to read the message back.
The sync reads it anyway: Gmail notifies the mailbox of the sent message, the
pass fetches it (messages.get, already paid for) and skips it as the CRM's
own (R9). At that point the ids are known, and this module writes them onto
the CRM's message document (named by its Message-ID, R25, in the conversation the
thread map gives for the account): one batched read of the candidates, one
batched write of those that lack ids, nothing at all for a chunk without a
CRM send with attachments.

Matching is by position (send_email logs the request's attachments in the
order mime_build attaches them, and Gmail lists the parts in that order) and
confirmed by filename, compared as mime_build puts it in the MIME
(`safe_filename`); an entry that does not match keeps no id. Only missing ids
are written; every other field of every entry stays as send_email wrote it,
and the write is guarded by the update time read, so a concurrent writer is
never overwritten (such a conflict reads again, once). Running it twice
writes nothing the second time. What is never filled keeps answering 409
`attachment_pending` (shared/attachments/fetch.py).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shared.core import log
from shared.core.clients import firestore_client
from shared.crm.paths import message_ref
from shared.gmail.mime_build import safe_filename
from shared.gmail.mime_parse import AttachmentMeta


@dataclass(frozen=True)
class Candidate:
    """A CRM-sent message the sync just fetched, and where send_email logged it."""

    account_id: str
    conversation_id: str
    message_id: str
    attachments: tuple[AttachmentMeta, ...]


def _name(filename: str) -> str:
    return unicodedata.normalize("NFC", safe_filename(filename or "")).casefold()


def is_pending(attachment: Any) -> bool:
    """An attachment entry whose Gmail id is not known yet."""
    return isinstance(attachment, dict) and not attachment.get("gmailAttachmentId")


def fill_ids(stored: Sequence[Any], fetched: Sequence[AttachmentMeta]) -> list[dict[str, Any]] | None:
    """The stored entries with each missing `gmailAttachmentId` taken from the fetched part at the same
    position when the filenames agree; None when there is nothing to fill (nothing to write)."""
    out: list[dict[str, Any]] = []
    changed = False
    for i, entry in enumerate(stored):
        if not isinstance(entry, dict):
            return None  # not a shape we wrote: leave the document alone
        entry = dict(entry)
        part = fetched[i] if i < len(fetched) else None
        if (is_pending(entry) and part is not None and part.gmailAttachmentId
                and _name(str(entry.get("filename") or "")) == _name(part.filename)):
            entry["gmailAttachmentId"] = part.gmailAttachmentId
            changed = True
        out.append(entry)
    return out if changed else None


ATTEMPTS = 2  # a document changed between our read and our write is read again once


def record_ids(candidates: Sequence[Candidate]) -> int:
    """Write the missing ids of the candidates' documents; returns how many documents were written."""
    from google.api_core.exceptions import (  # lazy: Firestore library (cold start)
        FailedPrecondition,
        InvalidArgument,
        NotFound,
    )

    if not candidates:
        return 0
    error = ""
    for _ in range(ATTEMPTS):
        try:
            return _record_once(candidates)
        except (FailedPrecondition, NotFound) as exc:  # changed meanwhile: read again
            error = type(exc).__name__
        except InvalidArgument as exc:  # the document would pass Firestore's 1 MiB: leave it pending
            error = type(exc).__name__
            break
    log.warning("attachment ids not recorded", messages=len(candidates), error=error)
    return 0


def _record_once(candidates: Sequence[Candidate]) -> int:
    db = firestore_client()
    by_path = {message_ref(c.account_id, c.conversation_id, c.message_id).path: c for c in candidates}
    batch = db.batch()
    written = 0
    refs = [message_ref(c.account_id, c.conversation_id, c.message_id) for c in by_path.values()]
    for snap in db.get_all(refs):
        if not snap.exists:
            continue  # not logged in this account: nothing to fill
        doc = snap.to_dict() or {}
        if doc.get("source") != "crm":
            continue
        filled = fill_ids(doc.get("attachments") or [], by_path[snap.reference.path].attachments)
        if filled is None:
            continue
        batch.update(snap.reference, {"attachments": filled},
                     option=db.write_option(last_update_time=snap.update_time))
        written += 1
    if written:
        batch.commit()
    return written
