"""What a connection was granted against what 0.3 asks for (R33): `GET /status` `missingScopes`.

A connection made before 0.3 was granted gmail.readonly and gmail.send; it
keeps syncing and sending, and lacks gmail.modify (the CRM's changes to
Gmail) until the rep connects again. The granted scopes are on the stored
token (`sync_tokens/{mailboxId}.scopes`, written at connect).
"""

from __future__ import annotations

from shared.core.config import GMAIL_FULL, GMAIL_MODIFY, REQUIRED_SCOPES
from shared.crm.paths import token_ref


def missing_from(granted: list[str] | None) -> list[str]:
    """The scopes connect asks for today that `granted` lacks (gmail.mail.google.com covers them all)."""
    have = set(granted or [])
    if GMAIL_FULL in have:
        return []
    return [s for s in REQUIRED_SCOPES if s not in have and not (s == GMAIL_MODIFY and GMAIL_FULL in have)]


def missing_scopes(mailbox_id: str) -> list[str]:
    snap = token_ref(mailbox_id).get()
    return missing_from((snap.to_dict() or {}).get("scopes")) if snap.exists else []
