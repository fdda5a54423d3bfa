"""R21: addresses and whole domains whose mail is never synced nor logged, as pure functions.

The CRM writes `accounts/{accountId}/settings/emailSync {blocklist: [...]}`;
the sync (shared/sync/engine.py) and Auto BCC (shared/auto_bcc) read it and
ask the same question here, so both keep exactly the same mail out.

Entries (case-insensitive, surrounding spaces ignored):
- `a@b.com`: that address exactly;
- `b.com`, `@b.com` or `*.b.com`: every address at `b.com` AND at any subdomain
  of it (`x@mail.b.com`), never a look-alike (`x@notb.com`). Subdomains are in
  because companies send from them (`mail.`, `eu.`) and a rep who blocks a
  company means all of it.
Anything else is ignored rather than guessed at: an entry with spaces, a bare
word without a dot (`com` would block half the internet), or a non-string.
A typo in the CRM therefore never blocks everything.

Who counts: every participant of the message (From, To, Cc, Bcc) except the
rep's own address, the account's users and Auto BCC addresses: a company that
lists its own domain still gets its reps' mail with customers, while mail from
or to a blocked party, in any position, never syncs (privacy first: one
blocked party on a thread keeps the message out).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

MAX_ENTRIES = 5000  # the CRM's list is read on every sync pass; a runaway list is cut, not a failure
_DOMAIN = re.compile(r"^(?=.{1,253}$)[^\s@.]+(\.[^\s@.]+)+$")
_LOCAL = re.compile(r"^[^\s@]{1,64}$")


@dataclass(frozen=True)
class Blocklist:
    addresses: frozenset[str] = frozenset()  # lower-cased full addresses
    domains: frozenset[str] = frozenset()  # lower-cased domains (their subdomains are blocked too)

    @classmethod
    def parse(cls, entries: object) -> Blocklist:
        """The CRM's `blocklist` field as written (any JSON value) → a Blocklist; junk entries ignored."""
        if not isinstance(entries, list | tuple):
            return EMPTY
        addresses: set[str] = set()
        domains: set[str] = set()
        for raw in list(entries)[:MAX_ENTRIES]:
            entry = normalize_entry(raw)
            if entry is None:
                continue
            (addresses if "@" in entry else domains).add(entry)
        return cls(frozenset(addresses), frozenset(domains))

    def __bool__(self) -> bool:
        return bool(self.addresses or self.domains)

    def blocks(self, address: str) -> bool:
        """True when `address` is listed, or its domain or a parent domain of it is."""
        a = address.strip().lower()
        if not a or "@" not in a:
            return False
        if a in self.addresses:
            return True
        domain = a.rpartition("@")[2]
        labels = domain.split(".")
        return any(".".join(labels[i:]) in self.domains for i in range(len(labels) - 1))

    def first_blocked(self, addresses: Iterable[str], ignore: Iterable[str] = ()) -> str | None:
        """The first address of `addresses` (not in `ignore`) the list blocks, else None."""
        if not self:
            return None
        skip = {i.strip().lower() for i in ignore}
        for a in addresses:
            if a.strip().lower() not in skip and self.blocks(a):
                return a
        return None


EMPTY = Blocklist()


def normalize_entry(raw: object) -> str | None:
    """One entry → `local@domain` or `domain` (lower-cased), or None when it is not a usable entry."""
    if not isinstance(raw, str):
        return None
    e = raw.strip().lower()
    if e.startswith("*."):
        e = e[2:]
    if e.startswith("@"):
        e = e[1:]
    if "@" in e:
        local, _, domain = e.rpartition("@")
        return e if _LOCAL.match(local) and _DOMAIN.match(domain) else None
    return e if _DOMAIN.match(e) else None
