"""Everything a send needs to know, read in one batch before anything is written (issue 12).

One `get_all` reads the user, the contact, the user's link, the idempotency
record, the contact's conversation and, for a reply, the parent message; with
them the mailbox, its token document and one candidate send slot (R30,
shared.send.limits), whose mailbox id this instance remembers from the last
send of the same user (`_mailbox_of`). The cache is validated by
the link read in the same batch: when the link names another mailbox (the rep
connected another Gmail, R3) the mailbox and token are read again, a second
round trip, which is also what an instance's first send of a user costs.

The refusals (404 for ids not in this account, 409 not connected or needing
re-authentication, 409 for a token that does not decrypt) all come from here,
before a slot or a record exists (R23).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from shared.core.clients import firestore_client
from shared.core.models import Contact, Link, User
from shared.core.secrets import SecretUnavailable
from shared.crm import paths
from shared.crm.connection import ConnectionState, decide_from_snapshots
from shared.crm.mailboxes import TokenUnreadable, open_token
from shared.crm.paths import (
    contact_ref,
    conversation_ref,
    idempotency_ref,
    link_ref,
    mailbox_ref,
    message_ref,
    token_ref,
    user_ref,
)
from shared.http.validate import is_address
from shared.send import answers
from shared.send.limits import Slot, candidate, slot_ref
from shared.send.reply import Parent, find_parent
from shared.send.request import SendRequest

_mailbox_of: dict[tuple[str, str], str] = {}  # (account, user) -> mailbox id, validated by every link read
_cache_lock = threading.Lock()


@dataclass
class SendContext:
    """One send: the request and what was read for it."""

    req: SendRequest
    user: User
    contact: Contact
    mailbox_id: str
    address: str
    refresh_token: str
    record_id: str
    conversation_id: str  # the contact's own, or the parent's (R10: the thread's conversation)
    conversation: Any = None  # its snapshot when read beforehand (else the log reads it)
    parent: Parent | None = None
    subject: str = ""
    slot: Slot | None = None  # R30: the candidate send slot read with the mailbox (None: the general path)
    slot_snap: Any = None

    @property
    def to_address(self) -> str:
        return self.contact.email.strip()


@dataclass
class FirstRead:
    """The first batch, as read: snapshots by name."""

    record_id: str
    snaps: dict[str, Any]
    mailbox_guess: str | None
    slot: Slot | None = None  # the candidate slot read in this batch (of the guessed mailbox)

    def get(self, name: str) -> Any:
        snap = self.snaps.get(name)
        return snap if snap is not None and snap.exists else None


def read_batch(refs: dict[str, Any]) -> dict[str, Any]:
    """Many documents in one round trip, by name."""
    by_path = {ref.path: name for name, ref in refs.items()}
    return {by_path[s.reference.path]: s for s in firestore_client().get_all(list(refs.values()))}


def read_first(req: SendRequest) -> FirstRead:
    record_id = paths.idempotency_id(req.account_id, req.user_id, req.idempotency_key)
    refs: dict[str, Any] = {
        "user": user_ref(req.account_id, req.user_id),
        "contact": contact_ref(req.account_id, req.contact_id),
        "link": link_ref(req.account_id, req.user_id),
        "record": idempotency_ref(record_id),
        "conversation": conversation_ref(req.account_id, req.contact_id),
    }
    with _cache_lock:
        guess = _mailbox_of.get((req.account_id, req.user_id))
    slot = candidate(guess) if guess else None
    if guess:
        refs["mailbox"], refs["token"] = mailbox_ref(guess), token_ref(guess)
    if slot is not None:
        refs["slot"] = slot_ref(slot)
    if req.reply_to_message_id:
        refs["parent"] = message_ref(req.account_id, req.contact_id, req.reply_to_message_id)
    return FirstRead(record_id, read_batch(refs), guess, slot)


def build(req: SendRequest, first: FirstRead) -> SendContext:
    """Check what was read (each failure a refusal) and complete it where the first batch could not."""
    user_snap, contact_snap = first.get("user"), first.get("contact")
    if user_snap is None:
        raise answers.not_found("userId", "user")
    if contact_snap is None:
        raise answers.not_found("contactId", "contact")
    user = User.from_doc(user_snap.to_dict())
    contact = Contact.from_doc(contact_snap.to_dict())
    if not isinstance(contact.email, str) or not is_address(contact.email.strip()):
        raise answers.invalid_contact()

    link_snap = first.get("link")
    mailbox_snap, token_snap = first.get("mailbox"), first.get("token")
    slot, slot_snap = first.slot, first.snaps.get("slot")
    if link_snap is not None:
        mailbox_id = Link.from_doc(link_snap.to_dict()).mailboxId
        if mailbox_id != first.mailbox_guess:
            refs = {"mailbox": mailbox_ref(mailbox_id), "token": token_ref(mailbox_id)}
            slot = candidate(mailbox_id)
            if slot is not None:
                refs["slot"] = slot_ref(slot)
            again = read_batch(refs)
            mailbox_snap, token_snap, slot_snap = again.get("mailbox"), again.get("token"), again.get("slot")
            token_snap = token_snap if token_snap is not None and token_snap.exists else None
            with _cache_lock:
                _mailbox_of[(req.account_id, req.user_id)] = mailbox_id
    conn = decide_from_snapshots(link_snap, mailbox_snap)
    if conn.state is ConnectionState.DISCONNECTED:
        raise answers.not_connected()
    if conn.state is ConnectionState.REAUTH_REQUIRED:
        raise answers.reauth_required()
    if token_snap is None:
        raise answers.not_connected()
    try:
        refresh_token = open_token(conn.mailbox_id, token_snap.to_dict())
    except TokenUnreadable:
        raise answers.credentials_unreadable() from None
    except SecretUnavailable:
        raise answers.credentials_unavailable() from None
    if refresh_token is None:  # the token document exists but is empty
        raise answers.not_connected()

    ctx = SendContext(req=req, user=user, contact=contact, mailbox_id=conn.mailbox_id, address=conn.address,
                      refresh_token=refresh_token, record_id=first.record_id, conversation_id=req.contact_id,
                      conversation=first.snaps.get("conversation"), subject=req.subject or "",
                      slot=slot if slot is not None and slot.mailbox_id == conn.mailbox_id else None,
                      slot_snap=slot_snap)
    if req.reply_to_message_id:
        parent = find_parent(req.account_id, req.contact_id, req.reply_to_message_id, first.get("parent"))
        if parent is None:
            raise answers.not_found("replyToMessageId", "message")
        ctx.parent = parent
        ctx.subject = parent.reply_subject(req.subject)
        if parent.conversation_id != ctx.conversation_id:
            ctx.conversation_id, ctx.conversation = parent.conversation_id, None
    return ctx
