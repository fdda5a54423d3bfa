"""Refusals of the `messages` operations: each class carries its answer (shared/core/refusal.py).

The answer's text is the class's own: what is raised names an id only for the
log's sake (`detail`), never in the answer (another tenant's ids stay unseen).
"""

from __future__ import annotations

from shared.core.refusal import QuietRefusal


class MessagesRefusal(QuietRefusal):
    """The operation cannot be done; the subclass says why, and how the CRM is answered."""


class MessageNotFound(MessagesRefusal):
    """No such message in this account (another tenant's ids included)."""

    status, code, message = 404, "not_found", "no such message"


class NotConnected(MessagesRefusal):
    """None of the mailboxes the message came through is connected to this account any more."""

    status, code, message = 409, "not_connected", "no mailbox this message came through is connected"


class MissingScopes(MessagesRefusal):
    """A mailbox the message came through was connected before 0.3, without gmail.modify (R33)."""

    status, code = 409, "missing_scopes"
    message = ("a mailbox this message came through was connected without permission to change mail "
               "(gmail.modify): the rep must connect again")

    def __init__(self, mailbox_ids: list[str]) -> None:
        super().__init__(", ".join(mailbox_ids))
        self.mailbox_ids = mailbox_ids


class ReauthRequired(MessagesRefusal):
    """Google rejected a mailbox's authorization; the rep must connect again (R5)."""

    status, code, message = 409, "reauth_required", "the rep must connect Gmail again"


class GmailBusy(MessagesRefusal):
    """Gmail is rate limiting or failing; the CRM may retry (the change is idempotent)."""

    status, code, message = 503, "gmail_unavailable", "Gmail did not answer; try again shortly"
