"""Which CRM conversations a Gmail message belongs in: the matching rules as pure functions.

Nothing here touches Firestore or Gmail; the sync engine gathers what these
rules need (the account's contacts and users among the message's addresses,
the thread map) into `AccountView`s and gets back a decision per account.
That keeps every rule (R7, R8, R11-R14, the Auto BCC skip) testable on its own
and makes a redelivered notification decide exactly as the first one did.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Literal

from shared.core.models import ContactRef, Message
from shared.crm.blocklist import EMPTY as NO_BLOCKLIST
from shared.crm.blocklist import Blocklist
from shared.gmail import forwards
from shared.gmail.mime_build import is_crm_message_id
from shared.gmail.mime_parse import ParsedMessage
from shared.sync.flags import flags_from_labels

Direction = Literal["inbound", "outbound"]

# Gmail labels whose messages never sync: not mail that was sent or received.
SKIP_LABELS = frozenset({"DRAFT", "SPAM", "TRASH", "CHAT"})


def skipped_label(label_ids: Iterable[str]) -> str | None:
    """The label that excludes a message from sync, if any."""
    hit = sorted(SKIP_LABELS.intersection(label_ids))
    return hit[0] if hit else None


def direction_of(msg: ParsedMessage, mailbox_address: str) -> Direction:
    """Outbound when Gmail filed it as SENT or the rep's address wrote it (R8); else inbound (R7)."""
    if "SENT" in msg.label_ids:
        return "outbound"
    if msg.sender is not None and msg.sender.email.lower() == mailbox_address.strip().lower():
        return "outbound"
    return "inbound"


def is_forward(msg: ParsedMessage) -> bool:
    """R8, R29: a forward by its subject prefix (any common language) or headers, never by quoted body text."""
    return forwards.is_forward(msg.subject, msg.headers, msg.has_attached_message)


@dataclass(frozen=True)
class AccountView:
    """What one linked CRM account knows about the addresses of one message."""

    account_id: str
    user_ids: tuple[str, ...]  # the account's users linked to this mailbox (usually one)
    contacts: Mapping[str, ContactRef] = field(default_factory=dict)  # lower address -> earliest contact (R13)
    user_emails: frozenset[str] = frozenset()  # addresses of the message that are users of the account (R11)
    auto_bcc_addresses: frozenset[str] = frozenset()  # the linked users' Auto BCC addresses (R16)
    thread_conversation: str | None = None  # conversation this Gmail thread already maps to here (R10)
    blocklist: Blocklist = NO_BLOCKLIST  # the account's R21 blocklist


@dataclass(frozen=True)
class CrmSend:
    """R18b: the idempotency record of a CRM send whose Message-ID this Gmail message carries, not done yet
    (send_email crashed after Gmail accepted it, or is still finishing). It is logged in that account only."""

    account_id: str
    user_id: str
    contact_id: str | None = None  # when the record names it; else the recipient decides (R12)


@dataclass(frozen=True)
class Delivery:
    account_id: str
    user_id: str
    contact: ContactRef
    conversation_id: str
    direction: Direction
    is_forward: bool
    source: Literal["gmail", "crm"] = "gmail"  # "crm": a CRM send the sync logs itself (R18b)
    # R26: the contact is assigned only to users of this account other than the mailbox's; logged all the
    # same unless another linked account has the contact unassigned or assigned to the mailbox's user (R14)
    assigned_elsewhere: bool = False


@dataclass(frozen=True)
class Skip:
    account_id: str
    # internal | unknown_sender | unknown_recipient | not_assigned | thread_owned_elsewhere | auto_bcc_copy
    # | crm_send | blocklisted | label_<name>
    reason: str


@dataclass
class Decision:
    direction: Direction
    deliveries: list[Delivery] = field(default_factory=list)
    skips: list[Skip] = field(default_factory=list)


def message_addresses(msg: ParsedMessage) -> list[str]:
    """Every address the matching rules look at (sender and recipients), lower-cased, in order."""
    out = [msg.sender.email] if msg.sender else []
    out += [a.email for a in msg.recipients()]
    return list(dict.fromkeys(out))


def primary_recipient(msg: ParsedMessage, contacts: Mapping[str, ContactRef],
                      excluded: frozenset[str] | set[str]) -> ContactRef | None:
    """R12: the first recipient that is an existing contact, in To order, then Cc, then Bcc."""
    for a in msg.recipients():
        if a.email not in excluded and a.email in contacts:
            return contacts[a.email]
    return None


def _logged_thread(conversation_id: str) -> ContactRef:
    """R27: a logged thread stays whole: mail of it from or to people who are not contacts goes to the
    thread's conversation, under the contact whose conversation it is (its id is the contact's)."""
    return ContactRef(id=conversation_id, email="")


def _decide_account(msg: ParsedMessage, mailbox: str, direction: Direction, view: AccountView,
                    thread_owner: str | None, auto_bcc_domain: str | None) -> Delivery | Skip:
    acct = view.account_id
    if thread_owner is not None and thread_owner != acct:
        return Skip(acct, "thread_owned_elsewhere")  # R14: a CRM reply claimed the thread
    own = {mailbox} | view.user_emails | view.auto_bcc_addresses
    if view.blocklist.first_blocked(message_addresses(msg), ignore=own) is not None:
        return Skip(acct, "blocklisted")  # R21: mail from or to a listed address or domain never syncs
    contact: ContactRef | None
    if direction == "outbound":
        recipients = [a.email for a in msg.recipients()]
        if view.auto_bcc_addresses.intersection(recipients):
            return Skip(acct, "auto_bcc_copy")  # auto_bcc logs it; logging here too would duplicate
        domain_suffix = "@" + auto_bcc_domain.lower() if auto_bcc_domain else None
        not_people = {r for r in recipients if domain_suffix and r.endswith(domain_suffix)} | {mailbox}
        external = [r for r in recipients if r not in not_people and r not in view.user_emails]
        if not external:
            return Skip(acct, "internal")  # R11: only colleagues (or the rep) received it
        contact = primary_recipient(msg, view.contacts, not_people | set(view.user_emails))
        if contact is None and view.thread_conversation is not None:
            # R8b, R27: the rep answers or forwards, in a thread logged here, to someone outside the CRM (the
            # contact's colleague): it belongs to that conversation (whose id is its contact's id,
            # ARCHITECTURE "Firestore"); no contact is created.
            contact = _logged_thread(view.thread_conversation)
        if contact is None:
            return Skip(acct, "unknown_recipient")  # R11: no contact is created for it
    else:
        sender = msg.sender.email if msg.sender else ""
        if not sender:
            return Skip(acct, "unknown_sender")
        if sender in view.user_emails or sender == mailbox:
            return Skip(acct, "internal")  # R11
        contact = view.contacts.get(sender)
        if contact is None and view.thread_conversation is not None:
            contact = _logged_thread(view.thread_conversation)  # R27: the contact's colleague replies all
        if contact is None:
            return Skip(acct, "unknown_sender")  # R11
    users = view.user_ids
    assigned_elsewhere = False
    if contact.assignedUserIds:
        mine = tuple(u for u in view.user_ids if u in contact.assignedUserIds)
        assigned_elsewhere = not mine
        users = mine or view.user_ids  # R26: the mail is the mailbox user's all the same
    return Delivery(
        account_id=acct,
        user_id=users[0] if users else "",
        assigned_elsewhere=assigned_elsewhere,
        contact=contact,
        conversation_id=view.thread_conversation or contact.id,
        direction=direction,
        is_forward=direction == "outbound" and is_forward(msg),
    )


def _decide_crm_send(msg: ParsedMessage, mailbox: str, view: AccountView, send: CrmSend,
                     auto_bcc_domain: str | None) -> Delivery | Skip:
    """R18b: the CRM send Gmail accepted but send_email never logged, in the sending account, as send_email
    would have logged it (source crm, the sending user, the record's contact, the thread's conversation)."""
    if send.contact_id:
        conv = view.thread_conversation or send.contact_id
        return Delivery(account_id=view.account_id, user_id=send.user_id, contact=ContactRef(send.contact_id, ""),
                        conversation_id=conv, direction="outbound", is_forward=False, source="crm")
    out = _decide_account(msg, mailbox, "outbound", replace(view, blocklist=NO_BLOCKLIST), None, auto_bcc_domain)
    if isinstance(out, Skip):
        return Skip(view.account_id, "crm_send_unmatched")
    return Delivery(account_id=out.account_id, user_id=send.user_id, contact=out.contact,
                    conversation_id=out.conversation_id, direction="outbound", is_forward=False, source="crm")


def classify(msg: ParsedMessage, mailbox_address: str, views: Iterable[AccountView], *,
             thread_owner: str | None = None, auto_bcc_domain: str | None = None,
             crm_send: CrmSend | None = None) -> Decision:
    """Decide, for every linked account, whether and where the message is logged (R7-R14, R18b, R21)."""
    mailbox = mailbox_address.strip().lower()
    direction = direction_of(msg, mailbox)
    decision = Decision(direction=direction)
    label = skipped_label(msg.label_ids)
    # R9: the CRM's own sends carry its Message-ID; send_email logs them in the sending account only,
    # also when this notification is processed before send_email has written its document. R18b: unless
    # its idempotency record says send_email never finished (`crm_send`): then the sync logs it there.
    is_crm = direction == "outbound" and is_crm_message_id(msg.rfc822_message_id)
    for view in views:
        if label is not None:
            decision.skips.append(Skip(view.account_id, f"label_{label.lower()}"))
            continue
        if is_crm:
            if crm_send is not None and crm_send.account_id == view.account_id:
                out = _decide_crm_send(msg, mailbox, view, crm_send, auto_bcc_domain)
            else:
                out = Skip(view.account_id, "crm_send")
        else:
            out = _decide_account(msg, mailbox, direction, view, thread_owner, auto_bcc_domain)
        if isinstance(out, Delivery):
            decision.deliveries.append(out)
        else:
            decision.skips.append(out)
    return _choose_by_assignment(decision)


def _choose_by_assignment(decision: Decision) -> Decision:
    """R26: assignment only chooses between accounts (R14). An account where the contact is assigned to
    other users gives way when another linked account takes the message as its own (contact unassigned, or
    assigned to the mailbox's user); when none does, every account logs it: a contact's mail is never lost
    to an assignment, and inside one account it is logged whoever the contact is assigned to."""
    if not any(d.assigned_elsewhere for d in decision.deliveries):
        return decision
    if all(d.assigned_elsewhere for d in decision.deliveries):
        return decision
    decision.skips += [Skip(d.account_id, "not_assigned") for d in decision.deliveries if d.assigned_elsewhere]
    decision.deliveries = [d for d in decision.deliveries if not d.assigned_elsewhere]
    return decision


FUTURE_TOLERANCE = timedelta(days=1)


def sent_at(internal_date_ms: int, now: datetime | None = None) -> datetime:
    """R22: Gmail's internalDate as a timestamp; an absurd one (beyond what a timestamp holds, or more than a
    day in the future, as imported mail can carry from its Date header) is logged as the time it was seen,
    so one hostile date neither fails the write nor pins the conversation's lastMessageAt."""
    now = now or datetime.now(UTC)
    try:
        at = datetime.fromtimestamp(internal_date_ms / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return now
    return now if at > now + FUTURE_TOLERANCE else at


def build_message(msg: ParsedMessage, delivery: Delivery, mailbox_id: str | None = None) -> Message:
    """The CRM message document for one delivery (R12: Cc/Bcc recorded, no contacts made for them; R19: read,
    starred, trashed as Gmail's labels say). `mailbox_id` is where it was read, so its attachments can be
    fetched there later (R20). Bodies are whole: shared/crm/fit.py cuts what does not fit (R22)."""
    return Message(
        direction=delivery.direction,
        source=delivery.source,
        contactId=delivery.contact.id,
        userId=delivery.user_id or None,
        from_=msg.sender.email if msg.sender else "",
        to=[a.email for a in msg.to],
        cc=[a.email for a in msg.cc],
        bcc=[a.email for a in msg.bcc],
        subject=msg.subject,
        text=msg.text,
        html=msg.html,
        snippet=msg.snippet,
        sentAt=sent_at(msg.internal_date_ms),
        gmailMessageId=msg.gmail_id,
        gmailThreadId=msg.thread_id,
        rfc822MessageId=msg.rfc822_message_id,
        inReplyTo=msg.in_reply_to,
        references=list(msg.references),
        isForward=delivery.is_forward,
        attachments=[a.to_doc() for a in msg.attachments],
        mailboxId=mailbox_id,
        **flags_from_labels(msg.label_ids).to_doc(),
    )
