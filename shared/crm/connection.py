"""The one answer to "is (account, user) connected, and through which mailbox?".

Send, status, resync, Auto BCC and attachments all ask it; before this module
each asked in its own way and Auto BCC checked only the link, so a user who
had to re-authenticate passed. `decide()` is the pure rule (a caller that
already read the link and mailbox in a batch uses it directly);
`resolve()` reads them and applies it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from shared.core.models import Link, Mailbox
from shared.crm.mailboxes import get_link, get_mailbox


class ConnectionState(enum.Enum):
    CONNECTED = "connected"
    REAUTH_REQUIRED = "reauth_required"
    DISCONNECTED = "disconnected"


@dataclass(frozen=True)
class Connection:
    state: ConnectionState
    link: Link | None = None
    mailbox: Mailbox | None = None

    @property
    def connected(self) -> bool:
        return self.state is ConnectionState.CONNECTED

    @property
    def mailbox_id(self) -> str:
        assert self.link is not None
        return self.link.mailboxId

    @property
    def address(self) -> str:
        assert self.mailbox is not None
        return self.mailbox.address


def decide(link: Link | None, mailbox: Mailbox | None) -> Connection:
    """A link whose mailbox is gone or disconnected is no connection; re-auth is its own state (R5)."""
    if link is None:
        return Connection(ConnectionState.DISCONNECTED, None, mailbox)
    return Connection(decide_mailbox(mailbox).state, link, mailbox)


def decide_mailbox(mailbox: Mailbox | None) -> Connection:
    """The mailbox half of `decide`, for callers that start from a mailbox (a Gmail session, a push)."""
    if mailbox is None or mailbox.status == "disconnected":
        return Connection(ConnectionState.DISCONNECTED, None, mailbox)
    if mailbox.status == "reauth_required":
        return Connection(ConnectionState.REAUTH_REQUIRED, None, mailbox)
    return Connection(ConnectionState.CONNECTED, None, mailbox)


def decide_from_snapshots(link_snap: Any, mailbox_snap: Any) -> Connection:
    link = Link.from_doc(link_snap.to_dict()) if link_snap is not None and link_snap.exists else None
    mailbox = Mailbox.from_doc(mailbox_snap.to_dict()) if mailbox_snap is not None and mailbox_snap.exists else None
    return decide(link, mailbox)


def resolve(account_id: str, user_id: str) -> Connection:
    """Link, then its mailbox (two reads; the mailbox id is only known from the link)."""
    link = get_link(account_id, user_id)
    return decide(link, get_mailbox(link.mailboxId) if link else None)
