"""The Auto BCC operation: log one copy a rep sent to their Auto BCC address (R16, R16b, R20, R21).

Every refusal is decided before the first write, so a refused copy creates
nothing (no contact, no message, no attachment bytes):

1. reads: the address's route (`sync_auto_bcc/{token}`), then in one batch the
   user, their link and the account's blocklist setting, then the link's
   mailbox; the parse of the copy; the account's users among its recipients;
2. checks: the address names an existing user (404); the copy parses (400);
   its `From` is the user's own address — their CRM `email` or the Gmail they
   connected — (403, R16b: anyone who learns the address must not log mail
   under the rep); the relay's authentication verdict, when it passed one,
   does not fail that `From` domain (403, issue 23: DMARC fail, or SPF and
   DKIM failing, `sender_auth.py`); no address on it is blocklisted (422, R21); it has an
   external recipient (422); its attachments fit R15's 25 MB (413); the
   message document fits Firestore (bodies cut, `truncated`) or the copy is
   refused as not storable (413, `document.py`);
3. writes, each idempotent: the contact (create-if-absent, the only place the
   project creates contacts), the attachment bytes (deterministic chunk ids,
   before the message that names them), the message (create-if-absent, id
   from the Message-ID: a webhook that delivers twice logs once), the
   conversation's summary, the `message.synced` event. A write that
   Firestore aborts (it waited too long for a document another transaction
   held: contention) runs the writes again, with Google's retry, instead of
   failing the copy with a 500; the event goes out if any attempt created the
   message.

A user who never connected Gmail (an Outlook user) is served like any other
(R16b): the address does not depend on a connection.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shared.attachments import store
from shared.auto_bcc.document import NotStorable, build_document, check_not_bulk
from shared.auto_bcc.message import AutoBccCopy, MalformedMessage, parse_copy, pick_recipient
from shared.auto_bcc.sender_auth import judge, relay_results
from shared.connect.auto_bcc_route import lookup
from shared.core import log
from shared.core.clients import firestore_client
from shared.core.config import get_config
from shared.core.events import CrmEvent, publish
from shared.core.models import AutoBccRoute, Message, User
from shared.core.refusal import Refusal
from shared.crm import paths
from shared.crm.connection import ConnectionState, decide_from_snapshots
from shared.crm.contact_index import is_complete
from shared.crm.contacts import auto_contact_id, create_contact_if_absent, find_contacts
from shared.crm.conversations import store_message, touch_conversation
from shared.crm.paths import contact_index_state_ref, link_ref, mailbox_ref, message_ref, settings_ref, user_ref
from shared.crm.settings import blocklist_from
from shared.crm.users_cache import account_user_emails, find_user_addresses
from shared.storage.logged import keep_logged

if TYPE_CHECKING:
    from shared.crm.blocklist import Blocklist

ABORTED_RETRY_SECONDS = 30.0  # writes aborted by contention are tried again this long
MAX_ATTACHMENT_BYTES = 25 * 1024 * 1024  # R15: what a rep can send in one message

__all__ = ["AttachmentsTooLarge", "Blocklisted", "CopyRefused", "LoggedCopy", "MalformedMessage", "NoRecipient",
           "NotStorable", "SenderNotAuthenticated", "SenderNotUser", "UnknownAddress", "log_copy"]


class CopyRefused(Refusal):
    """The copy is not logged; the text says why (safe to show the webhook's operator), the class how it is answered."""


class UnknownAddress(CopyRefused):
    """Not one of our Auto BCC addresses, or its user no longer exists."""

    status, code = 404, "not_found"


class SenderNotUser(CopyRefused):
    """The copy's From is not the user's own address (R16b)."""

    status, code = 403, "sender_not_user"


class SenderNotAuthenticated(CopyRefused):
    """The relay that received the copy says its From domain failed authentication (issue 23)."""

    status, code = 403, "sender_not_authenticated"


class Blocklisted(CopyRefused):
    """An address on the copy is on the account's blocklist (R21)."""

    status, code = 422, "blocklisted"


class NoRecipient(CopyRefused):
    """No external recipient to log the copy under."""

    status, code = 422, "no_recipient"


class AttachmentsTooLarge(CopyRefused):
    """The attachments exceed R15's 25 MB."""

    status, code = 413, "too_large"


@dataclass(frozen=True)
class LoggedCopy:
    message_id: str
    conversation_id: str
    contact_id: str
    created: bool  # False: the same copy was logged before (the answer is the same)
    truncated: bool


@dataclass(frozen=True)
class _Owner:
    account_id: str
    user_id: str
    own_addresses: frozenset[str]  # the user's CRM email and connected Gmail address, lower-cased
    blocklist: Blocklist
    contacts_indexed: bool  # the account's contact index is complete (R11b), read with the rest


def find_route(to: str) -> AutoBccRoute:
    """The route of Auto BCC address `to`, or UnknownAddress (one read; the adapter calls it before it
    reads the copy's body)."""
    route = lookup(to, get_config().auto_bcc_domain)
    if route is None:
        raise UnknownAddress("unknown Auto BCC address")
    return route


def _owner(route: AutoBccRoute) -> _Owner:
    """Who the address belongs to and what their copies must satisfy (two round trips after the route)."""
    a, u = route.accountId, route.userId
    db = firestore_client()
    refs = [user_ref(a, u), link_ref(a, u), settings_ref(a), contact_index_state_ref(a)]
    snaps = {s.reference.path: s for s in db.get_all(refs)}
    user_snap, link_snap, settings_snap, index_snap = (snaps.get(r.path) for r in refs)
    if user_snap is None or not user_snap.exists:
        raise UnknownAddress("the user of this Auto BCC address no longer exists")
    own = {User.from_doc(user_snap.to_dict()).email.strip().lower()}
    if link_snap is not None and link_snap.exists:
        mailbox_id = (link_snap.to_dict() or {}).get("mailboxId") or ""
        conn = decide_from_snapshots(link_snap, mailbox_ref(mailbox_id).get() if mailbox_id else None)
        if conn.state is not ConnectionState.DISCONNECTED and conn.mailbox is not None:
            own.add(conn.mailbox.address.strip().lower())
            own.update(alias.strip().lower() for alias in conn.mailbox.aliases or [])  # R28: its send-as aliases
    return _Owner(a, u, frozenset(own - {""}), blocklist_from(settings_snap), is_complete(index_snap))


def _check_sender(copy: AutoBccCopy, owner: _Owner) -> None:
    if copy.sender.email not in owner.own_addresses:
        raise SenderNotUser("the copy's From is not the address of the user this Auto BCC address belongs to")
    results = relay_results(copy.auth_results, copy.arc_results, get_config().auto_bcc_authserv_id)
    verdict = judge(results, copy.sender.email.rpartition("@")[2])
    if verdict.refused:
        log.info("auto bcc copy refused: sender not authenticated", accountId=owner.account_id,
                 userId=owner.user_id, reason=verdict.reason)
        raise SenderNotAuthenticated(f"{verdict.reason}; the copy is not logged")


def _internal(account_id: str, copy: AutoBccCopy) -> set[str]:
    """The account's users among the recipients, from the same per-instance cache the sync uses (R11)."""
    addresses = {a.email for a in copy.recipients()}
    users = account_user_emails(account_id)
    return users & addresses if users is not None else find_user_addresses(account_id, addresses)


def _check(copy: AutoBccCopy, owner: _Owner, internal: set[str], is_auto_bcc: Callable[[str], bool]) -> None:
    # R21 as the sync applies it: any listed party keeps the copy out; the rep, colleagues and our own
    # addresses never count (a company that lists its own domain still logs its reps' mail to customers)
    participants = copy.participants()
    own = {copy.sender.email, *internal, *(p for p in participants if is_auto_bcc(p))}
    if owner.blocklist.first_blocked(participants, ignore=own) is not None:
        raise Blocklisted("an address on the copy is on the account's blocklist; it is not logged")
    if sum(len(d) for d in copy.attachment_data) > MAX_ATTACHMENT_BYTES:
        raise AttachmentsTooLarge(f"the attachments exceed {MAX_ATTACHMENT_BYTES} bytes in total")


def log_copy(to: str, raw: bytes, received_at: datetime | None = None, route: AutoBccRoute | None = None) -> LoggedCopy:
    """Log the copy sent to Auto BCC address `to` (see the module doc for the order of things); `route`:
    the address's route when the caller looked it up already (`find_route`)."""
    domain = get_config().auto_bcc_domain
    suffix = "@" + domain.lower()

    def is_auto_bcc(address: str) -> bool:
        return address.endswith(suffix)

    # ---- read and decide: nothing after the first write can refuse the copy
    owner = _owner(route or find_route(to))
    copy = parse_copy(raw, received_at or datetime.now(UTC))
    a, u = owner.account_id, owner.user_id
    _check_sender(copy, owner)
    check_not_bulk(copy, is_auto_bcc)  # before its recipients are looked up
    internal = _internal(a, copy)
    _check(copy, owner, internal, is_auto_bcc)
    recipient = pick_recipient(copy, is_auto_bcc, internal)
    if recipient is None:
        raise NoRecipient("the copy has no external recipient to log it under")
    existing = find_contacts(a, [recipient.email], indexed=owner.contacts_indexed).get(recipient.email)
    message_id = paths.auto_bcc_message_doc_id(copy.message_id)

    def document(contact_id: str) -> Message:  # conversation id = contact id (one per contact)
        return build_document(copy, account_id=a, conversation_id=contact_id, message_id=message_id,
                              contact_id=contact_id, user_id=u, is_auto_bcc=is_auto_bcc)

    contact_id = existing.id if existing is not None else auto_contact_id(recipient.email)
    doc = document(contact_id)

    # ---- write (each step idempotent; a retry of the same copy converges)
    created = False

    def write() -> None:
        nonlocal contact_id, doc, created
        if existing is None:
            contact_id = create_contact_if_absent(a, recipient.email, recipient.name, source="auto_bcc",
                                                  indexed=owner.contacts_indexed).id
            if contact_id != doc.contactId:  # the CRM created one meanwhile: log under it
                doc = document(contact_id)
        if not message_ref(a, contact_id, message_id).get().exists:
            # R32: bodies and bytes in Cloud Storage; Firestore chunks only where there is no mail bucket
            doc.stored = keep_logged(a, contact_id, message_id, copy.text, copy.html, doc.attachments,
                                     copy.attachment_data)
            chunks = 0 if doc.stored else store.store(a, contact_id, message_id, [
                store.StoredAttachment(str(meta["gmailAttachmentId"]), data)
                for meta, data in zip(doc.attachments, copy.attachment_data, strict=True)])
            created = store_message(a, contact_id, message_id, doc) or created
            log.debug("auto bcc attachments stored", chunks=chunks, accountId=a, messageId=message_id)
        touch_conversation(a, contact_id, contact_id, doc.sentAt or datetime.now(UTC), doc.snippet, "outbound")

    _again_when_aborted()(write)()
    if created:
        publish([CrmEvent(type="message.synced", accountId=a, userId=u, contactId=contact_id,
                          conversationId=contact_id, messageId=message_id, direction="outbound",
                          source="auto_bcc")])
    log.info("auto bcc copy logged", accountId=a, userId=u, contactId=contact_id, messageId=message_id,
             created=created, truncated=doc.truncated, bytes=len(raw))
    return LoggedCopy(message_id=message_id, conversation_id=contact_id, contact_id=contact_id,
                      created=created, truncated=doc.truncated)


def _again_when_aborted() -> Any:
    """Google's retry for ABORTED (contention: "retry the request", Firestore's error guide), within the
    webhook's patience; anything else still fails the copy."""
    from google.api_core import exceptions, retry  # lazy: Firestore library (cold start)

    return retry.Retry(predicate=retry.if_exception_type(exceptions.Aborted), initial=0.2, maximum=2.0,
                       multiplier=2.0, timeout=ABORTED_RETRY_SECONDS)
