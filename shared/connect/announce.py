"""`connection.status` events for the CRM, after the write they announce (best effort)."""

from __future__ import annotations

from shared.core import log
from shared.core.events import CrmEvent, publish


def announce(users: list[tuple[str, str]], status: str, address: str | None) -> None:
    try:
        publish(CrmEvent(type="connection.status", accountId=a, userId=u, status=status, address=address)
                for a, u in users)
    except Exception as exc:  # the write is done; a lost event must not undo or fail the connection
        log.error("could not publish connection.status", error=type(exc).__name__, status=status)
