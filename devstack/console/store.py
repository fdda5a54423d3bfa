"""What the console reads from Firestore, shaped for the page.

Reads the documents as stored (plain dicts, not the sync's dataclasses): the
console must show what is there, including fields a newer sync writes and
fields an older one never wrote, so every field is optional here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.crm import paths

# Message fields of R19/R22 (0.2): shown when the sync writes them.
STATE_FIELDS = ("read", "starred", "trashed", "deletedInGmail", "truncated", "isForward")


@dataclass
class MessageView:
    id: str
    data: dict[str, Any]
    mailbox: str | None  # the rep's Gmail address holding data["gmailMessageId"], if known
    gmail_labels: list[str] | None = None  # the simulator's current labels of that Gmail message

    def get(self, name: str, default: Any = None) -> Any:
        return self.data.get(name, default)

    @property
    def read_state(self) -> str:
        """'read', 'unread', or 'unknown' (a sync without R19 writes no `read`)."""
        value = self.data.get("read")
        return "unknown" if value is None else ("read" if value else "unread")

    @property
    def sort_key(self) -> tuple[float, float, str]:
        return (_ts(self.data.get("sentAt")), _ts(self.data.get("createdAt")), self.id)


@dataclass
class ThreadView:
    gmail_thread_id: str | None
    messages: list[MessageView]


@dataclass
class ConversationView:
    id: str
    data: dict[str, Any]
    contact: dict[str, Any] | None
    threads: list[ThreadView]

    @property
    def message_count(self) -> int:
        return sum(len(t.messages) for t in self.threads)


@dataclass
class AccountView:
    id: str
    data: dict[str, Any]
    users: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    contacts: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    conversations: list[ConversationView] = field(default_factory=list)

    @property
    def rep_address(self) -> str | None:
        """The first connected Gmail address of the account's users (where a contact's mail goes)."""
        for _, data in self.users:
            sync = data.get("emailSync") or {}
            if sync.get("status") == "connected" and sync.get("address"):
                return str(sync["address"])
        return None


def _ts(value: Any) -> float:
    return value.timestamp() if isinstance(value, datetime) else 0.0


def _docs(query: Any) -> list[tuple[str, dict[str, Any]]]:
    return sorted(((s.id, s.to_dict() or {}) for s in query.stream()), key=lambda kv: kv[0])


def mailboxes(db: Any) -> list[tuple[str, dict[str, Any]]]:
    return sorted(_docs(db.collection(paths.MAILBOXES)), key=lambda kv: str(kv[1].get("address", "")))


def user_addresses(users: Iterable[tuple[str, dict[str, Any]]], links: dict[str, str]) -> dict[str, str]:
    """userId -> the Gmail address its messages live in (emailSync.address, else its link's)."""
    out = dict(links)
    for user_id, data in users:
        address = (data.get("emailSync") or {}).get("address")
        if address:
            out[user_id] = address
    return out


def threads_of(messages: list[MessageView]) -> list[ThreadView]:
    """Messages grouped by Gmail thread, threads by their first message, each in time order."""
    groups: dict[str | None, list[MessageView]] = {}
    for m in sorted(messages, key=lambda m: m.sort_key):
        groups.setdefault(m.get("gmailThreadId"), []).append(m)
    return [ThreadView(tid, msgs) for tid, msgs in groups.items()]


def accounts(db: Any, gmail_labels: Callable[[str], dict[str, list[str]]] | None = None,
             mailbox_addresses: dict[str, str] | None = None) -> list[AccountView]:
    """Every CRM account with its users, contacts and conversations (messages in thread order).

    `gmail_labels(address)` gives {gmailMessageId: labelIds} of a simulated mailbox, so each
    message can show what Gmail says next to what the CRM stored. `mailbox_addresses`
    (sync_mailboxes id -> address) places messages that record their `mailboxId`.
    """
    by_id = mailbox_addresses or {}
    links: dict[tuple[str, str], str] = {}
    for _, ln in _docs(db.collection(paths.LINKS)):
        if ln.get("accountId") and ln.get("userId") and ln.get("address"):
            links[(ln["accountId"], ln["userId"])] = ln["address"]
    labels_cache: dict[str, dict[str, list[str]]] = {}

    def labels(address: str | None, gmail_id: str | None) -> list[str] | None:
        if gmail_labels is None or not address or not gmail_id:
            return None
        if address not in labels_cache:
            labels_cache[address] = gmail_labels(address)
        return labels_cache[address].get(gmail_id)

    out = []
    for ref in sorted(db.collection(paths.ACCOUNTS).list_documents(), key=lambda r: r.id):
        snap = ref.get()
        account = AccountView(ref.id, snap.to_dict() or {} if snap.exists else {})
        account.users = _docs(ref.collection(paths.USERS))
        account.contacts = _docs(ref.collection(paths.CONTACTS))
        contacts = dict(account.contacts)
        addresses = user_addresses(account.users, {u: a for (acc, u), a in links.items() if acc == ref.id})
        for conv_id, conv in _docs(ref.collection(paths.CONVERSATIONS)):
            msgs = []
            for msg_id, data in _docs(ref.collection(paths.CONVERSATIONS).document(conv_id).collection(paths.MESSAGES)):
                mailbox = _mailbox_of(data, by_id, addresses)
                msgs.append(MessageView(msg_id, data, mailbox, labels(mailbox, data.get("gmailMessageId"))))
            account.conversations.append(
                ConversationView(conv_id, conv, contacts.get(conv.get("contactId", "")), threads_of(msgs))
            )
        account.conversations.sort(key=lambda c: _ts(c.data.get("lastMessageAt")), reverse=True)
        out.append(account)
    return out


def _mailbox_of(data: dict[str, Any], by_id: dict[str, str], by_user: dict[str, str]) -> str | None:
    """The Gmail address holding the message's gmailMessageId: its recorded mailboxId, else its user's."""
    if not data.get("gmailMessageId") or data.get("source") == "auto_bcc":
        return None
    return by_id.get(data.get("mailboxId") or "") or by_user.get(data.get("userId") or "")


def message(db: Any, account_id: str, conversation_id: str, message_id: str) -> MessageView | None:
    """One message with the mailbox it lives in (for the Gmail-side controls)."""
    snap = db.document(paths.message_path(account_id, conversation_id, message_id)).get()
    if not snap.exists:
        return None
    data = snap.to_dict() or {}
    by_id: dict[str, str] = {}
    if data.get("mailboxId"):
        mb = db.collection(paths.MAILBOXES).document(data["mailboxId"]).get().to_dict() or {}
        by_id = {data["mailboxId"]: mb["address"]} if mb.get("address") else {}
    by_user: dict[str, str] = {}
    user_id = data.get("userId") or ""
    if user_id:
        user = db.document(paths.user_path(account_id, user_id)).get().to_dict() or {}
        link = db.collection(paths.LINKS).document(paths.link_id(account_id, user_id)).get().to_dict() or {}
        by_user = user_addresses([(user_id, user)], {user_id: link["address"]} if link.get("address") else {})
    return MessageView(message_id, data, _mailbox_of(data, by_id, by_user))
