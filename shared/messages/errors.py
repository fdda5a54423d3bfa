"""Refusals of the `messages` operations (functions/messages.py maps them to answers)."""

from __future__ import annotations


class MessagesRefusal(Exception):
    """The operation cannot be done; the subclass says why."""


class MessageNotFound(MessagesRefusal):
    """No such message in this account (another tenant's ids included)."""


class NotConnected(MessagesRefusal):
    """None of the mailboxes the message came through is connected to this account any more."""


class MissingScopes(MessagesRefusal):
    """A mailbox the message came through was connected before 0.3, without gmail.modify (R33)."""

    def __init__(self, mailbox_ids: list[str]) -> None:
        super().__init__(", ".join(mailbox_ids))
        self.mailbox_ids = mailbox_ids


class ReauthRequired(MessagesRefusal):
    """Google rejected a mailbox's authorization; the rep must connect again (R5)."""


class GmailBusy(MessagesRefusal):
    """Gmail is rate limiting or failing; the CRM may retry (the change is idempotent)."""
