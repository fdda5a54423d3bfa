"""`POST /modify`: the CRM's read/starred/trashed made in every connected mailbox the message came through (R33).

Order of things, so that nothing is written for a refused request and the
sync does not echo the CRM's own change back as an event:
1. read the message and its copies, find the target mailboxes; refuse when
   there is none (`not_connected`) or one lacks gmail.modify (`missing_scopes`);
2. write the CRM's intended state (`read`, `starred`, `trashed`) on the
   message and its copies: when Gmail's history later reports the change,
   the sync's update path (shared/sync/updates.py) finds the document already
   in that state, writes nothing and announces nothing (R19's echo);
3. apply it in each mailbox: users.messages.modify for UNREAD/STARRED,
   trash/untrash for TRASH (all idempotent in Gmail, so a retried request
   does the same again), and announce one `message.updated` when step 2
   changed the message.

A mailbox that no longer has the message (deleted in Gmail) is skipped; a
mailbox Google no longer authorises answers `reauth_required`; a busy Gmail
`gmail_unavailable`, and the CRM retries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.core import log
from shared.core.clients import firestore_client
from shared.core.events import CrmEvent, publish
from shared.crm.mailboxes import read_mailbox
from shared.gmail.credentials import NotConnected as GmailNotConnected
from shared.gmail.credentials import ReauthRequired as GmailReauth
from shared.gmail.credentials import open_gmail, reauth_guard
from shared.gmail.errors import Outcome, classify
from shared.messages.body import message_snapshot
from shared.messages.errors import GmailBusy, MissingScopes, NotConnected, ReauthRequired
from shared.messages.targets import Target, copies, find_targets, without_modify_scope

GMAIL_NUM_RETRIES = 3  # googleapiclient's own backoff on 429/5xx
FLAGS = ("read", "starred", "trashed")


@dataclass(frozen=True)
class FlagChange:
    read: bool | None = None
    starred: bool | None = None
    trashed: bool | None = None

    def fields(self) -> dict[str, bool]:
        return {k: v for k in FLAGS if (v := getattr(self, k)) is not None}

    def labels(self) -> tuple[list[str], list[str]]:
        """(addLabelIds, removeLabelIds) of users.messages.modify for read and starred."""
        add: list[str] = []
        remove: list[str] = []
        if self.read is not None:
            (remove if self.read else add).append("UNREAD")
        if self.starred is not None:
            (add if self.starred else remove).append("STARRED")
        return add, remove


def modify_message(account_id: str, conversation_id: str, message_id: str, change: FlagChange) -> list[str]:
    """Apply `change`; returns the mailbox ids it was applied in."""
    snap = message_snapshot(account_id, conversation_id, message_id)
    doc = snap.to_dict() or {}
    siblings = copies(account_id, conversation_id, doc, snap.reference)
    targets = find_targets(account_id, doc, siblings)
    if not targets:
        raise NotConnected(message_id)
    lacking = without_modify_scope(targets)
    if lacking:
        raise MissingScopes(lacking)
    version = _mark([snap, *siblings], change)
    applied = [t.mailbox_id for t in targets if _apply(t, change)]
    if version is not None:
        _announce(account_id, conversation_id, message_id, {**doc, **change.fields()}, version)
    log.info("crm change applied in gmail", accountId=account_id, messageId=message_id,
             fields=sorted(change.fields()), mailboxes=len(targets), applied=len(applied))
    return applied


def _mark(snaps: list[Any], change: FlagChange) -> str | None:
    """Write the intended state where it differs; returns the message's new update time when it changed."""
    writes = []
    for snap in snaps:
        current = snap.to_dict() or {}
        fields = {k: v for k, v in change.fields().items() if current.get(k) != v}
        if fields:
            writes.append((snap.reference, fields))
    if not writes:
        return None
    batch = firestore_client().batch()
    for ref, fields in writes:
        batch.update(ref, fields)
    results = batch.commit()
    if writes[0][0].path != snaps[0].reference.path:
        return None  # only copies changed: the message itself was already so
    stamp: Any = getattr(results[0], "update_time", None)
    return str(stamp.isoformat()) if stamp is not None and hasattr(stamp, "isoformat") else str(stamp)


def _apply(target: Target, change: FlagChange) -> bool:
    """Make the change in one mailbox; False when the mailbox no longer has the message."""
    try:
        session = open_gmail(read_mailbox(target.mailbox_id))
    except GmailNotConnected:
        return False
    except GmailReauth:
        raise ReauthRequired(target.mailbox_id) from None
    messages = session.service.users().messages()
    try:
        with reauth_guard(target.mailbox_id, session.address, session.credentials):
            gmail_id = target.gmail_id or _look_up(messages, target.rfc822_id)
            if gmail_id is None:
                return False
            add, remove = change.labels()
            if add or remove:
                messages.modify(userId="me", id=gmail_id, body={"addLabelIds": add, "removeLabelIds": remove}
                                ).execute(num_retries=GMAIL_NUM_RETRIES)
            if change.trashed is not None:
                call = messages.trash if change.trashed else messages.untrash
                call(userId="me", id=gmail_id).execute(num_retries=GMAIL_NUM_RETRIES)
    except GmailReauth:
        raise ReauthRequired(target.mailbox_id) from None
    except Exception as exc:
        info = classify(exc)
        log.warning("crm change refused by gmail", mailboxId=target.mailbox_id, status=info.status,
                    reason=info.reason, outcome=info.outcome.value)
        if info.outcome is Outcome.NOT_FOUND:
            return False
        if info.outcome is Outcome.REAUTH:
            raise ReauthRequired(target.mailbox_id) from None
        if info.outcome is Outcome.REJECTED and info.status == 403:
            raise MissingScopes([target.mailbox_id]) from None  # Google's insufficientPermissions
        raise GmailBusy(info.outcome.value) from None
    return True


def _look_up(messages: Any, rfc822_id: str | None) -> str | None:
    """The mailbox's Gmail id of the message with this Message-ID (5 units), or None."""
    if not rfc822_id:
        return None
    resp = messages.list(userId="me", q=f"rfc822msgid:{rfc822_id.strip('<>')}", includeSpamTrash=True,
                         maxResults=1).execute(num_retries=GMAIL_NUM_RETRIES)
    found = (resp or {}).get("messages") or []
    return str(found[0]["id"]) if found else None


def _announce(account_id: str, conversation_id: str, message_id: str, doc: dict[str, Any], version: str) -> None:
    publish([CrmEvent(type="message.updated", accountId=account_id, userId=doc.get("userId"),
                      contactId=doc.get("contactId"), conversationId=conversation_id, messageId=message_id,
                      direction=doc.get("direction"), source=doc.get("source"),
                      gmailMessageId=doc.get("gmailMessageId"), gmailThreadId=doc.get("gmailThreadId"),
                      read=doc.get("read"), starred=doc.get("starred"), trashed=doc.get("trashed"),
                      deletedInGmail=doc.get("deletedInGmail"), version=f"crm:{version}")])
