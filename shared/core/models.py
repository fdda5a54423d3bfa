"""Typed documents: every Firestore document of SPEC §6 and the sync's own.

`to_doc()` gives the Firestore dict, `from_doc()` reads one back (tolerating
missing optional fields, since the CRM writes some of these documents).
Timestamps are timezone-aware datetimes (Firestore timestamps).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any, Literal, TypeVar

T = TypeVar("T", bound="Doc")

SyncStatus = Literal["connected", "reauth_required", "disconnected"]
Direction = Literal["inbound", "outbound"]
Source = Literal["crm", "gmail", "auto_bcc"]
Visibility = Literal["shared", "subject", "metadata"]


@dataclass
class Doc:
    def to_doc(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_doc(cls: type[T], data: dict[str, Any] | None) -> T:
        data = data or {}
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


# --- CRM-owned (the CRM writes these; the sync reads them and writes emailSync) ---

@dataclass
class EmailSync(Doc):
    status: SyncStatus = "disconnected"
    address: str | None = None
    autoBccAddress: str | None = None
    connectedAt: datetime | None = None
    lastSyncAt: datetime | None = None
    lastError: str | None = None
    aliases: list[str] | None = None  # R28: the connected Gmail's accepted send-as aliases (shared/connect/aliases.py)
    addressesStamp: int | None = None  # R28: when address or aliases last changed (ms; the users cache sums it)


@dataclass
class User(Doc):
    email: str = ""
    name: str = ""
    emailSync: dict[str, Any] | None = None

    def sync(self) -> EmailSync:
        return EmailSync.from_doc(self.emailSync)


@dataclass
class Contact(Doc):
    email: str = ""
    name: str = ""
    createdAt: datetime | None = None
    assignedUserIds: list[str] | None = None
    source: str | None = None  # "auto_bcc" when R16 created it


@dataclass
class Conversation(Doc):
    contactId: str = ""
    lastMessageAt: datetime | None = None
    lastMessageSnippet: str = ""
    lastMessageDirection: str | None = None
    channel: str = "email"


@dataclass
class Attachment(Doc):
    filename: str = ""
    mimeType: str = ""
    size: int = 0
    gmailAttachmentId: str | None = None


@dataclass
class Message(Doc):
    direction: Direction = "inbound"
    source: Source = "gmail"
    contactId: str = ""
    userId: str | None = None
    from_: str = ""
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    bcc: list[str] = field(default_factory=list)
    subject: str = ""
    text: str | None = None
    html: str | None = None
    snippet: str = ""
    sentAt: datetime | None = None
    gmailMessageId: str | None = None
    gmailThreadId: str | None = None
    mailboxId: str | None = None  # the sync mailbox it came through first (R20: its attachments are fetched there)
    # 0.3 (R25): one document per account and Message-ID; every mailbox it came through, and its id in each
    mailboxIds: list[str] = field(default_factory=list)
    gmailIds: dict[str, str] = field(default_factory=dict)  # mailboxId -> that mailbox's Gmail message id
    visibility: Visibility = "shared"  # R31: shared | subject | metadata (what of the mail is stored)
    rfc822MessageId: str | None = None
    inReplyTo: str | None = None
    references: list[str] = field(default_factory=list)
    isForward: bool = False
    attachments: list[dict[str, Any]] = field(default_factory=list)
    createdAt: datetime | None = None
    # 0.2: Gmail's state of the message, kept current by the sync (R19); a message deleted in Gmail stays here
    read: bool = True
    starred: bool = False
    trashed: bool = False
    deletedInGmail: bool = False
    truncated: bool = False  # R22/R23; 0.3 (R32): a body preview here is shorter than the body kept in storage
    stored: dict[str, Any] = field(default_factory=dict)  # R32: {"text"|"html": {object, bytes}} (shared/storage)

    def to_doc(self) -> dict[str, Any]:
        d = asdict(self)
        d["from"] = d.pop("from_")  # `from` is the contract's name, a Python keyword
        return d

    @classmethod
    def from_doc(cls, data: dict[str, Any] | None) -> Message:
        data = dict(data or {})
        if "from" in data:
            data["from_"] = data.pop("from")
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


# --- sync-owned ---

@dataclass
class Mailbox(Doc):
    address: str = ""
    status: SyncStatus = "disconnected"
    historyId: str | None = None  # the sync cursor: everything up to it is stored
    connectedAt: datetime | None = None
    lastSyncAt: datetime | None = None
    lastSyncedInternalDate: int | None = None  # ms epoch of the newest synced message (gap recovery)
    lastError: str | None = None
    watchExpiration: datetime | None = None
    leaseOwner: str | None = None
    leaseUntil: datetime | None = None
    dirty: bool = False  # a notification arrived while the lease was held: sync again
    # R22: messages that could not be stored at all (shared/crm/skipped.py); GET /status shows them
    skippedCount: int = 0
    lastSkipped: list[dict[str, Any]] = field(default_factory=list)  # newest last: {gmailMessageId, reason, at}
    # issue 11: a forced sync requested before this is answered already (when the last whole pass began)
    lastPassStartedAt: datetime | None = None
    sweepShard: int | None = None  # the sweep reads one shard at a time (shared/sync/sweep.py)
    sweepDueAt: datetime | None = None  # when the sweep forces a sync if nothing else did (jittered)
    watchLapsedAt: datetime | None = None  # the watch was found expired (visible, alerted); cleared on renewal
    lastErrorAt: datetime | None = None
    aliases: list[str] | None = None  # R28: accepted send-as aliases, as last read (connect, watch renewal)


@dataclass
class Link(Doc):
    accountId: str = ""
    userId: str = ""
    mailboxId: str = ""
    address: str = ""
    linkedAt: datetime | None = None


@dataclass
class StoredToken(Doc):
    ciphertext: str = ""
    nonce: str = ""
    keyVersion: str = ""
    scopes: list[str] = field(default_factory=list)
    updatedAt: datetime | None = None


@dataclass
class ThreadMap(Doc):
    mailboxId: str = ""
    gmailThreadId: str = ""
    ownerAccountId: str | None = None  # R14: set when the rep replies from one account's CRM
    conversations: dict[str, str] = field(default_factory=dict)  # accountId -> conversationId


@dataclass
class OAuthState(Doc):
    accountId: str = ""
    userId: str = ""
    returnUrl: str = ""
    codeVerifier: str = ""
    expiresAt: datetime | None = None
    usedAt: datetime | None = None
    browserHash: str | None = None  # R24: sha256 of the session cookie of the browser that opened /start first
    openedAt: datetime | None = None


@dataclass
class SendSlot(Doc):
    mailboxId: str = ""
    day: str = ""
    idempotencyKey: str = ""
    createdAt: datetime | None = None
    expireAt: datetime | None = None  # TTL policy


@dataclass
class IdempotencyRecord(Doc):
    accountId: str = ""
    userId: str = ""
    key: str = ""
    state: Literal["pending", "done", "failed"] = "pending"
    leaseUntil: datetime | None = None
    rfc822MessageId: str = ""
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    createdAt: datetime | None = None
    expireAt: datetime | None = None  # TTL policy


@dataclass
class AttachmentChunk(Doc):
    """One piece (at most CHUNK_BYTES) of an Auto BCC copy's attachment (R20): the copy is in no
    Gmail mailbox, so auto_bcc keeps the bytes, split to fit Firestore's 1 MiB per document."""

    accountId: str = ""
    conversationId: str = ""
    messageId: str = ""
    attachmentId: str = ""
    index: int = 0
    count: int = 0  # chunks of this attachment
    size: int = 0  # bytes of the whole attachment
    data: bytes = b""
    createdAt: datetime | None = None


@dataclass
class AutoBccRoute(Doc):
    accountId: str = ""
    userId: str = ""
    address: str = ""


@dataclass(frozen=True)
class ContactRef:
    """A contact as the matching rules see it (pure: classify.py takes these, never reads Firestore)."""

    id: str
    email: str
    name: str = ""
    createdAt: datetime | None = None
    assignedUserIds: tuple[str, ...] | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def assigned_to(self, user_id: str) -> bool:
        """R14: a contact without assigned users is everyone's; otherwise only its assignees'."""
        return not self.assignedUserIds or user_id in self.assignedUserIds


def as_int(value: Any) -> int | None:
    """A numeric field as documents hold it (the cursor `historyId` is Gmail's decimal string; older
    documents hold ints); absent, empty or garbled is None, never an exception in the sync's way."""
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None
