"""R11b: contacts by address, exact by construction: a normalised index the sync owns.

The CRM stores a contact's address as the rep typed it (`cArLa@Client.TEST`)
and Firestore compares strings exactly, so no query on `contacts.email` can
find every spelling. Instead, every contact write is mirrored into

    sync_contact_index/{accountId}_{sha256(lower(email))[:32]}
        {accountId, email: lower(email), contacts: {contactId: {createdAt, name, assignedUserIds}}}

and a look-up is one `get_all` of deterministic ids, whatever the spelling.
`sync_contact_keys/{sha256(accountId, contactId)}` remembers under which address
a contact is indexed, so a changed or deleted address leaves its old entry.

Kept current by `reconcile`, which reads the contact as it is NOW and fixes
both entries in one transaction: it is the body of the `contacts_index`
function (a Firestore trigger on `accounts/{a}/contacts/{c}` in production,
the devstack feeder locally), and being from the truth rather than from the
event's payload it is right under redelivery, reordering and concurrency.
R13 holds through it: an entry keeps every contact of the address with its
createdAt, and the earliest wins (ties by id), exactly as before.

Contacts that existed before the index (R2: "contacts that already exist in
the CRM are matched"): decided as a per-account BACKFILL, not a permanent
fallback. The sync backfills an account the first time it needs it, a
bounded number of contacts per pass (`sync_contact_index_state/{accountId}`
keeps where it stopped), and until the backfill completes a look-up also runs
the old spelling-variant query and merges the two, so nothing that matched
before stops matching meanwhile. Once complete, the index alone answers.

The same scan runs again when the last one is older than REFRESH_DAYS (the
index stays in use meanwhile): it compares each contact with the address its
key records and reconciles only the ones that differ, two reads per page of
contacts. That heals what a trigger can miss: contacts written while the
first deploy of `contacts_index` was still rolling out (deploy.sh deploys it
first; Cloud Build deploys the functions in parallel), or events Eventarc gave
up on after its retry window.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.core import log, roundtrips
from shared.core.clients import firestore_client
from shared.core.models import ContactRef
from shared.crm import paths
from shared.crm.paths import contact_index_ref, contact_index_state_ref, contact_key_ref, contact_ref

if TYPE_CHECKING:
    from google.cloud.firestore import DocumentSnapshot

BACKFILL_PER_PASS = 2000  # contacts checked per sync pass while an account's scan runs
REFRESH_DAYS = 7  # a complete index is checked against the contacts again after this
BACKFILL_PAGE = 200
BACKFILL_WORKERS = 8
MAX_ADDRESS_BYTES = 1000  # longer "addresses" are not addresses; never indexed
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _db() -> Any:
    return firestore_client()


def normalized_email(value: object) -> str | None:
    """The index key of a contact's `email` field: stripped, lower-cased; None when it is no address."""
    if not isinstance(value, str):
        return None
    e = value.strip().lower()
    if "@" not in e or len(e.encode("utf-8", "surrogatepass")) > MAX_ADDRESS_BYTES:
        return None
    return e


def _entry_info(data: dict[str, Any]) -> dict[str, Any]:
    assigned = data.get("assignedUserIds")
    return {"createdAt": data.get("createdAt"), "name": str(data.get("name") or ""),
            "assignedUserIds": [str(u) for u in assigned] if isinstance(assigned, list) and assigned else None}


def reconcile(account_id: str, contact_id: str) -> None:
    """Make the index say what `accounts/{account_id}/contacts/{contact_id}` says now (transaction)."""
    from google.cloud import firestore  # lazy: Firestore library (cold start)

    contact = contact_ref(account_id, contact_id)
    kref = contact_key_ref(account_id, contact_id)

    @firestore.transactional
    def run(tx: Any) -> None:
        csnap = contact.get(transaction=tx)
        ksnap = kref.get(transaction=tx)
        data = (csnap.to_dict() or {}) if csnap.exists else {}
        new = normalized_email(data.get("email")) if csnap.exists else None
        old = (ksnap.to_dict() or {}).get("email") if ksnap.exists else None
        entries: dict[str, tuple[Any, dict[str, Any] | None]] = {}
        for email in sorted({e for e in (old, new) if isinstance(e, str)}):
            ref = contact_index_ref(account_id, email)
            snap = ref.get(transaction=tx)
            entries[email] = (ref, (snap.to_dict() or {}) if snap.exists else None)
        now = datetime.now(UTC)
        if isinstance(old, str) and old != new:
            ref, doc = entries[old]
            members = dict((doc or {}).get("contacts") or {})
            if contact_id in members:
                members.pop(contact_id)
                if members:
                    tx.set(ref, {**(doc or {}), "contacts": members, "updatedAt": now})
                else:
                    tx.delete(ref)
        if new is not None:
            ref, doc = entries[new]
            members = dict((doc or {}).get("contacts") or {})
            info = _entry_info(data)
            if members.get(contact_id) != info:
                members[contact_id] = info
                tx.set(ref, {"accountId": account_id, "email": new, "contacts": members, "updatedAt": now})
        if new != old:
            if new is None:
                tx.delete(kref)
            else:
                tx.set(kref, {"accountId": account_id, "contactId": contact_id, "email": new, "updatedAt": now})

    run(_db().transaction())


def sort_key(c: ContactRef) -> tuple[datetime, str]:
    """R13 order: created first wins, ties broken by id."""
    created = c.createdAt or _EPOCH
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return (created, c.id)


def _earliest(doc: dict[str, Any]) -> ContactRef | None:
    best: ContactRef | None = None
    for cid, info in sorted((doc.get("contacts") or {}).items()):
        info = info if isinstance(info, dict) else {}
        assigned = info.get("assignedUserIds")
        ref = ContactRef(id=str(cid), email=str(doc.get("email") or ""), name=str(info.get("name") or ""),
                         createdAt=info.get("createdAt"),
                         assignedUserIds=tuple(str(u) for u in assigned) if assigned else None)
        if best is None or sort_key(ref) < sort_key(best):
            best = ref
    return best


def lookup(account_id: str, addresses: Iterable[str]) -> dict[str, ContactRef]:
    """The earliest-created contact (R13) per lower-cased address, from the index: one round trip."""
    wanted = sorted({e for a in addresses if (e := normalized_email(a)) is not None})
    if not wanted:
        return {}
    out: dict[str, ContactRef] = {}
    for snap in _db().get_all([contact_index_ref(account_id, a) for a in wanted]):
        if snap.exists:
            doc = snap.to_dict() or {}
            best = _earliest(doc)
            if best is not None and doc.get("email") in wanted:
                out[str(doc["email"])] = best
    return out


def is_complete(snapshot: DocumentSnapshot | None) -> bool:
    """The account's index covers every contact (the look-up needs nothing else)."""
    return bool(snapshot is not None and snapshot.exists and (snapshot.to_dict() or {}).get("complete") is True)


def needs_scan(snapshot: DocumentSnapshot | None, now: datetime | None = None) -> bool:
    """A first backfill, an unfinished scan, or a complete index last checked over REFRESH_DAYS ago."""
    if snapshot is None or not is_complete(snapshot):
        return True
    state = snapshot.to_dict() or {}
    done = state.get("completedAt")
    if state.get("resumeAfter") or not isinstance(done, datetime):
        return True
    done = done if done.tzinfo else done.replace(tzinfo=UTC)
    return done < (now or datetime.now(UTC)) - timedelta(days=REFRESH_DAYS)


def backfill(account_id: str, snap: DocumentSnapshot | None, limit: int = BACKFILL_PER_PASS) -> bool:
    """Check up to `limit` more of the account's contacts against the index and reconcile those that differ
    (all of them the first time); True once the index is complete. `snap`: the account's
    `sync_contact_index_state` as the caller read it (the sync pass reads it with the linked accounts)."""
    col = _db().collection(f"{paths.ACCOUNTS}/{account_id}/{paths.CONTACTS}")
    sref = contact_index_state_ref(account_id)
    if not needs_scan(snap):
        return True
    roundtrips.mark("contact_index_scan")  # a one-time (then weekly) cost, not a steady pass's (SPEC §5)
    state = (snap.to_dict() or {}) if snap is not None and snap.exists else {}
    complete = state.get("complete") is True  # a refresh keeps the index in use
    after = state.get("resumeAfter")
    done = fixed = 0
    with roundtrips.ContextPool(max_workers=BACKFILL_WORKERS) as pool:  # metered with the pass
        while done < limit:
            q = col.order_by("__name__").select(["email"]).limit(BACKFILL_PAGE)
            if isinstance(after, str) and after:
                q = q.start_after({"__name__": col.document(after)})
            page = list(q.stream())
            keys = {s.reference.path: s for s in _db().get_all([contact_key_ref(account_id, c.id) for c in page])} \
                if page else {}
            stale = [c.id for c in page
                     if _key_email(keys.get(contact_key_ref(account_id, c.id).path)) != normalized_email(
                         (c.to_dict() or {}).get("email"))]
            list(pool.map(lambda cid: reconcile(account_id, cid), stale))
            done += len(page)
            fixed += len(stale)
            if len(page) < BACKFILL_PAGE:
                sref.set({"complete": True, "resumeAfter": None, "completedAt": datetime.now(UTC)}, merge=True)
                log.info("contact index checked", accountId=account_id, contacts=done, reconciled=fixed)
                return True
            after = page[-1].id
            sref.set({"complete": complete, "resumeAfter": after, "updatedAt": datetime.now(UTC)}, merge=True)
    return complete


def _key_email(snapshot: Any) -> str | None:
    if snapshot is None or not snapshot.exists:
        return None
    email = (snapshot.to_dict() or {}).get("email")
    return email if isinstance(email, str) else None
