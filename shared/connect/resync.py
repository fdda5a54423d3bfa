"""The CRM's `POST /resync`: "sync this user's mailbox now", only for a user who is connected."""

from __future__ import annotations

from shared.connect.errors import NotConnected, ReauthRequired
from shared.connect.users import require_user
from shared.core import log
from shared.crm.connection import ConnectionState, resolve
from shared.sync.requests import request_sync


def resync(account_id: str, user_id: str) -> None:
    require_user(account_id, user_id)
    conn = resolve(account_id, user_id)
    if conn.state is ConnectionState.DISCONNECTED:
        raise NotConnected("this user has no connected Gmail")
    if conn.state is ConnectionState.REAUTH_REQUIRED:
        raise ReauthRequired("the rep must connect Gmail again")
    request_sync([conn.address])
    log.info("resync requested", accountId=account_id, userId=user_id, mailboxId=conn.mailbox_id)
