"""The CRM's per-account email sync settings (`accounts/{accountId}/settings/emailSync`), read once per pass.

Today they hold the R21 blocklist. Reading goes through `get_all`, so a pass
over a mailbox linked in several accounts pays one round trip for all of them
(and callers may fold the refs into a `get_all` they already make).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from shared.core.clients import firestore_client
from shared.crm.blocklist import EMPTY, Blocklist
from shared.crm.paths import settings_ref


def blocklist_from(snapshot: Any) -> Blocklist:
    """The blocklist of one settings snapshot (missing document or field: nothing blocked)."""
    if snapshot is None or not snapshot.exists:
        return EMPTY
    return Blocklist.parse((snapshot.to_dict() or {}).get("blocklist"))


def blocklists(account_ids: Iterable[str]) -> dict[str, Blocklist]:
    """accountId -> its blocklist, in one round trip."""
    ids = sorted(set(account_ids))
    if not ids:
        return {}
    refs = {settings_ref(a).path: a for a in ids}
    out = dict.fromkeys(ids, EMPTY)
    for snap in firestore_client().get_all([settings_ref(a) for a in ids]):
        out[refs[snap.reference.path]] = blocklist_from(snap)
    return out


def blocklist_for(account_id: str) -> Blocklist:
    """One account's blocklist (Auto BCC: one copy, one account)."""
    return blocklist_from(settings_ref(account_id).get())
