"""The CRM's `GET /status`: the one connection check (shared/crm/connection.py) as the CRM sees it.

Every existing CRM user gets an Auto BCC address, connected or not (R16b): an
Outlook user who never connects Gmail can still Bcc their address. A user who
connected keeps the address stored at connection (stable even if the key was
rotated since); anyone else gets the derived one, with its route document
created so the `auto_bcc` webhook resolves it.
"""

from __future__ import annotations

from typing import Any

from shared.connect.auto_bcc_route import ensure_address
from shared.connect.scopes import missing_scopes
from shared.connect.users import require_user
from shared.crm.connection import ConnectionState, resolve


def connection_status(account_id: str, user_id: str) -> dict[str, Any]:
    sync = require_user(account_id, user_id).sync()
    auto_bcc = sync.autoBccAddress or ensure_address(account_id, user_id)
    conn = resolve(account_id, user_id)
    if conn.state is ConnectionState.DISCONNECTED or conn.mailbox is None or conn.link is None:
        return {"status": "disconnected", "address": None, "autoBccAddress": auto_bcc,
                "connectedAt": None, "lastSyncAt": None, "lastError": None, "missingScopes": []}
    return {
        "status": conn.state.value,
        "address": conn.mailbox.address,
        "autoBccAddress": auto_bcc,
        "connectedAt": _iso(sync.connectedAt or conn.link.linkedAt),
        "lastSyncAt": _iso(conn.mailbox.lastSyncAt),
        "lastError": conn.mailbox.lastError,
        "missingScopes": missing_scopes(conn.link.mailboxId),  # R33: a pre-0.3 grant lacks gmail.modify
        # R22: messages the sync could not store at all (count, and the last few with their reason)
        "skippedCount": conn.mailbox.skippedCount or 0,
        "lastSkipped": [{"gmailMessageId": e.get("gmailMessageId"), "reason": e.get("reason"),
                         "at": _iso(e.get("at"))} for e in conn.mailbox.lastSkipped or [] if isinstance(e, dict)],
    }


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None
