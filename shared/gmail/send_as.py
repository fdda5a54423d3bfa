"""R28: a rep's Gmail send-as aliases, read with the scope we already hold.

Internal mail (R11) is mail among the account's users, and a user is reached at
more than their CRM `email`: at the Gmail address they connected (a personal
Gmail beside erin@acme) and at that Gmail's send-as aliases ("Send mail as").
`users.settings.sendAs.list` is allowed under `gmail.readonly`. Only aliases
Gmail lists as `accepted` count: a `pending` alias is an address the rep typed
but never proved to own (it could be a customer's), so it must not turn a
customer's mail into internal mail.

Read at connect (shared/connect/callback.py) and again whenever the pass renews
the mailbox's watch (every few days, shared/sync/renewal.py); stored through
shared/crm/user_addresses.py.
"""

from __future__ import annotations

from typing import Any

from shared.core import log
from shared.gmail.watch import GMAIL_NUM_RETRIES


def read_send_as(service: Any, primary: str) -> list[str] | None:
    """The accepted send-as aliases other than `primary`, lower-cased, sorted; None when Gmail did not answer
    (logged; the caller keeps what it stored)."""
    try:
        resp = service.users().settings().sendAs().list(userId="me").execute(num_retries=GMAIL_NUM_RETRIES)
    except Exception as exc:
        log.warning("could not read the Gmail send-as aliases", error=type(exc).__name__)
        return None
    out = set()
    for item in resp.get("sendAs") or []:
        addr = str(item.get("sendAsEmail") or "").strip().lower()
        if not addr or "@" not in addr or item.get("isPrimary") or addr == primary.strip().lower():
            continue
        if item.get("verificationStatus", "accepted") == "accepted":
            out.add(addr)
    return sorted(out)
