"""R21 blocklist: addresses and whole domains whose mail the CRM never sees.

The CRM writes `accounts/{accountId}/settings/emailSync` `{blocklist: [...]}`
with entries like `"a@b.com"` (one address) and `"b.com"` (the domain and
every subdomain: `x@b.com`, `x@mail.b.com`; a leading `@` or `*.` is
accepted and means the same). Matching is case-insensitive whatever the CRM
stored (R11b). Entries that are neither (not a string, empty, spaces) are
ignored rather than blocking everything. `is_blocked` and `any_blocked` are
pure; `read_blocklist` is the one read of the setting.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

SETTINGS = "settings"
EMAIL_SYNC_SETTINGS = "emailSync"


@dataclass(frozen=True)
class Blocklist:
    addresses: frozenset[str] = frozenset()
    domains: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.addresses or self.domains)


def _entry(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    entry = value.strip().lower()
    if not entry or any(c.isspace() for c in entry):
        return None
    return entry


def parse_blocklist(entries: Any) -> Blocklist:
    """The CRM's list as written (anything that is not a list blocks nothing)."""
    addresses: set[str] = set()
    domains: set[str] = set()
    for value in entries if isinstance(entries, list) else []:
        entry = _entry(value)
        if entry is None:
            continue
        if entry.startswith("*."):
            entry = entry[2:]
        local, at, domain = entry.rpartition("@")
        if at and local:
            addresses.add(entry)
        elif (domain := domain.strip(".")) and "@" not in domain:
            domains.add(domain)
    return Blocklist(frozenset(addresses), frozenset(domains))


def is_blocked(address: str, blocklist: Blocklist) -> bool:
    """True when the address is on the list, or its domain is a listed domain or under one."""
    addr = address.strip().lower()
    if not blocklist or not addr:
        return False
    if addr in blocklist.addresses:
        return True
    domain = addr.rpartition("@")[2].strip(".")
    labels = domain.split(".")
    return any(".".join(labels[i:]) in blocklist.domains for i in range(len(labels)))


def any_blocked(addresses: Iterable[str], blocklist: Blocklist) -> bool:
    return bool(blocklist) and any(is_blocked(a, blocklist) for a in addresses)


def settings_path(account_id: str) -> str:
    from shared.core import paths

    return f"{paths.ACCOUNTS}/{account_id}/{SETTINGS}/{EMAIL_SYNC_SETTINGS}"


def read_blocklist(account_id: str) -> Blocklist:
    """The account's blocklist (one document read; none when the CRM wrote no setting)."""
    from shared.core.clients import firestore_client

    snap = firestore_client().document(settings_path(account_id)).get()
    return parse_blocklist((snap.to_dict() or {}).get("blocklist") if snap.exists else None)
