"""Contact and user look-ups by email address (R11, R11b, R12, R13, R16).

Contacts are found through the sync's own normalised index
(shared/crm/contact_index.py, R11b): exact whatever capitalisation the CRM
stored. While an account's index is still being backfilled, the old way runs
as well and the two are merged: the CRM writes addresses as the rep typed them
and Firestore compares strings exactly, so an address is looked up under the
spellings people actually use (as written, lower, upper, capitalised; see
`address_variants`) with `in` queries, and the hits are compared
case-insensitively. Users (few per account) are read whole and compared
lower-cased. When several contacts share an address the one created first wins
(R13), ties broken by id so every function picks the same one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from shared.core.clients import firestore_client
from shared.core.models import ContactRef
from shared.core.roundtrips import ContextPool  # threads metered with their caller
from shared.crm import contact_index, paths
from shared.crm.contact_index import reconcile, sort_key
from shared.crm.paths import contact_ref

IN_QUERY_LIMIT = 30
QUERY_WORKERS = 8  # Firestore's limit on values of one `in` filter


def _cap(part: str) -> str:
    return part[:1].upper() + part[1:]


def address_variants(address: str) -> list[str]:
    """Spellings under which the CRM may have stored `address`: as written, lower, upper, and the
    capitalisations people type (Carla@client.test, Carla@Client.test, John.Smith@…). Firestore
    has no case-insensitive match; other mixed-case spellings are not found (docs/SYNC.md)."""
    a = address.strip()
    low = a.lower()
    out = [a, low, a.upper()]
    if "@" in low:
        local, _, domain = low.rpartition("@")
        written_local = a.rpartition("@")[0]
        titled = ".".join(_cap(p) for p in local.split("."))
        dom_first = _cap(domain)
        dom_title = ".".join(_cap(p) for p in domain.split("."))
        out += [f"{written_local}@{domain}", f"{_cap(local)}@{domain}", f"{titled}@{domain}",
                f"{local}@{dom_first}", f"{_cap(local)}@{dom_first}", f"{titled}@{dom_first}",
                f"{_cap(local)}@{dom_title}"]
    return list(dict.fromkeys(out))


def _variant_chunks(addresses: Iterable[str]) -> list[list[str]]:
    values: dict[str, None] = {}
    for a in addresses:
        if a and a.strip():
            for v in address_variants(a):
                values.setdefault(v, None)
    flat = list(values)
    return [flat[i:i + IN_QUERY_LIMIT] for i in range(0, len(flat), IN_QUERY_LIMIT)]


def _run_queries(col: Any, chunks: list[list[str]]) -> list[list[Any]]:
    """`email in chunk` for every chunk, concurrently when there are several (one round trip each)."""
    from google.cloud.firestore_v1.base_query import FieldFilter  # lazy: Firestore library (cold start)

    def run(chunk: list[str]) -> list[Any]:
        return list(col.where(filter=FieldFilter("email", "in", chunk)).stream())

    if len(chunks) <= 1:
        return [run(c) for c in chunks]
    with ContextPool(max_workers=min(QUERY_WORKERS, len(chunks))) as pool:
        return list(pool.map(run, chunks))


def _contact_from(snap: Any) -> ContactRef:
    d = snap.to_dict() or {}
    assigned = d.get("assignedUserIds")
    return ContactRef(
        id=snap.id,
        email=str(d.get("email") or ""),
        name=str(d.get("name") or ""),
        createdAt=d.get("createdAt"),
        assignedUserIds=tuple(str(u) for u in assigned) if assigned else None,
    )


def find_contacts(account_id: str, addresses: Iterable[str], *, indexed: bool) -> dict[str, ContactRef]:
    """The earliest-created contact per address (lower-cased key) among `addresses` (R11b, R13).

    `indexed`: whether the account's contact index is complete (`contact_index.is_complete` of its state,
    which the caller reads with its other documents)."""
    wanted = {a.strip().lower() for a in addresses if a and a.strip()}
    if not wanted:
        return {}
    if indexed:
        return contact_index.lookup(account_id, wanted)
    with ContextPool(max_workers=2) as pool:
        from_index = pool.submit(contact_index.lookup, account_id, wanted)
        best = _find_by_spellings(account_id, wanted)
        for key, c in from_index.result().items():
            if key not in best or sort_key(c) < sort_key(best[key]):
                best[key] = c
    return best


def _find_by_spellings(account_id: str, wanted: set[str]) -> dict[str, ContactRef]:
    """Before an account's index is complete: `email in [spellings]` queries, compared lower-cased."""
    col = firestore_client().collection(f"{paths.ACCOUNTS}/{account_id}/{paths.CONTACTS}")
    best: dict[str, ContactRef] = {}
    for snaps in _run_queries(col, _variant_chunks(wanted)):
        for snap in snaps:
            c = _contact_from(snap)
            key = c.email.strip().lower()
            if key not in wanted:
                continue
            if key not in best or sort_key(c) < sort_key(best[key]):
                best[key] = c
    return best


def find_user_emails(account_id: str, addresses: Iterable[str]) -> set[str]:
    """Lower-cased addresses among `addresses` that belong to users of the account (R11)."""

    wanted = {a.strip().lower() for a in addresses if a and a.strip()}
    if not wanted:
        return set()
    col = firestore_client().collection(f"{paths.ACCOUNTS}/{account_id}/{paths.USERS}")
    found: set[str] = set()
    for snaps in _run_queries(col, _variant_chunks(wanted)):
        for snap in snaps:
            email = str((snap.to_dict() or {}).get("email") or "").strip().lower()
            if email in wanted:
                found.add(email)
    return found


def auto_contact_id(address: str) -> str:
    """Deterministic id of a contact the sync creates, so a retried create finds its own doc."""
    return "ab_" + hashlib.sha256(address.strip().lower().encode("utf-8")).hexdigest()[:32]


def create_contact_if_absent(account_id: str, address: str, name: str, source: str, *, indexed: bool) -> ContactRef:
    """R16: the existing earliest contact for `address`, else a new one (create-if-absent). `indexed` as for
    `find_contacts`."""
    from google.api_core.exceptions import AlreadyExists  # lazy: Firestore library (cold start)

    key = address.strip().lower()
    existing = find_contacts(account_id, [key], indexed=indexed).get(key)
    if existing is not None:
        return existing
    cid = auto_contact_id(key)
    ref = contact_ref(account_id, cid)
    created = datetime.now(UTC)
    try:
        ref.create({"email": key, "name": name or "", "createdAt": created, "source": source})
    except AlreadyExists:
        return _contact_from(ref.get())

    reconcile(account_id, cid)  # matched at once, not only when the trigger has run (R16: later replies sync)
    return ContactRef(id=cid, email=key, name=name or "", createdAt=created)
