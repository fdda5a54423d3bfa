"""R4 for the CRM's `POST /disconnect`: unlink, retire the mailbox at Google if it was the last link, tell the CRM."""

from __future__ import annotations

from shared.connect import connections
from shared.connect.announce import announce
from shared.connect.users import require_user
from shared.core import log


def disconnect(account_id: str, user_id: str) -> None:
    """Idempotent: a user without a link is simply (still) disconnected."""
    require_user(account_id, user_id)
    outcome = connections.remove_connection(account_id, user_id)
    if outcome.retired is not None:
        connections.retire_at_google(outcome.retired)
    if outcome.was_linked:
        announce([(account_id, user_id)], "disconnected", outcome.address)
    log.info("gmail disconnected", accountId=account_id, userId=user_id, wasLinked=outcome.was_linked,
             lastLink=outcome.retired is not None)
