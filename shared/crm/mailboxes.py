"""Reads and small writes of mailboxes, links and tokens, used by every function.

A mailbox is one Gmail address; links tie it to (account, user) pairs (R14: one
Gmail in several CRM accounts is one mailbox with several links). Connecting,
updating and disconnecting are in `shared/connect/connections.py`; this module holds
what the sync and send paths need too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.core.clients import firestore_client
from shared.core.crypto import Sealed, open_sealed, seal
from shared.core.models import Link, Mailbox, StoredToken
from shared.core.secrets import SecretUnavailable
from shared.crm import paths
from shared.crm.paths import link_ref, mailbox_ref, token_ref, user_ref


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class MailboxRead:
    """A mailbox and its token document as one invocation read them: what opening Gmail needs, read once
    (the sync reads both with its lease, `read_mailbox` in one round trip for everyone else)."""

    mailbox_id: str
    mailbox: Mailbox | None
    token_doc: dict[str, Any] | None


def read_mailbox(mailbox_id: str) -> MailboxRead:
    """The mailbox and its token in one round trip."""
    refs = [mailbox_ref(mailbox_id), token_ref(mailbox_id)]
    snaps = {s.reference.path: s for s in firestore_client().get_all(refs)}
    mb, token = (snaps.get(r.path) for r in refs)
    return MailboxRead(mailbox_id, Mailbox.from_doc(mb.to_dict()) if mb is not None and mb.exists else None,
                       token.to_dict() if token is not None and token.exists else None)


def get_mailbox(mailbox_id: str) -> Mailbox | None:
    snap = mailbox_ref(mailbox_id).get()
    return Mailbox.from_doc(snap.to_dict()) if snap.exists else None


def get_link(account_id: str, user_id: str) -> Link | None:
    snap = link_ref(account_id, user_id).get()
    return Link.from_doc(snap.to_dict()) if snap.exists else None


def links_for_mailbox(mailbox_id: str, tx: Any = None) -> list[Link]:
    """Every (account, user) linked to the mailbox; read inside `tx` when one is given."""
    from google.cloud.firestore_v1.base_query import FieldFilter  # lazy: Firestore library (cold start)

    q = firestore_client().collection(paths.LINKS).where(filter=FieldFilter("mailboxId", "==", mailbox_id))
    snaps = tx.get(q) if tx is not None else q.stream()
    return [Link.from_doc(s.to_dict()) for s in snaps]


def sealed_token(mailbox_id: str, refresh_token: str, scopes: list[str]) -> StoredToken:
    """The encrypted token document; the mailbox id is bound as associated data."""
    s = seal(refresh_token, context=mailbox_id)
    return StoredToken(ciphertext=s.ciphertext, nonce=s.nonce, keyVersion=s.key_version,
                       scopes=sorted(scopes), updatedAt=now())


class TokenUnreadable(Exception):
    """The stored refresh token does not decrypt (a corrupt document, a key version that is gone).

    Not transient and not Google's verdict: connecting Gmail again writes a new token. A Secret Manager
    outage is `SecretUnavailable` instead (shared.core.secrets), which a retry can cure.
    """


def load_refresh_token(mailbox_id: str) -> str | None:
    snap = token_ref(mailbox_id).get()
    return open_token(mailbox_id, snap.to_dict() if snap.exists else None)


def open_token(mailbox_id: str, token_doc: dict[str, Any] | None) -> str | None:
    """The refresh token of a `sync_tokens` document the caller already read (the sync reads it with the
    mailbox, the send path in its one batched read); None when there is no document."""
    if not token_doc:
        return None
    t = StoredToken.from_doc(token_doc)
    try:
        return open_sealed(Sealed(t.ciphertext, t.nonce, t.keyVersion), context=mailbox_id)
    except SecretUnavailable:
        raise
    except Exception as exc:  # InvalidTag, malformed base64, a key of the wrong size, bad UTF-8
        raise TokenUnreadable(f"token of mailbox {mailbox_id}: {type(exc).__name__}") from None


def _replaced(mailbox_id: str, rejected_token: str, tx: Any) -> bool:
    """Whether the stored refresh token is another than the rejected one (unreadable: cannot tell, no)."""
    snap = token_ref(mailbox_id).get(transaction=tx)
    try:
        stored = open_token(mailbox_id, snap.to_dict() if snap.exists else None)
    except TokenUnreadable:
        return False
    return stored is not None and stored != rejected_token


def set_status(mailbox_id: str, status: str, reason: str | None, rejected_token: str | None = None) -> list[Link]:
    """Set the mailbox and every linked user's emailSync status in one transaction.

    Returns the links whose status changed, so callers publish one event each. `rejected_token`: the
    refresh token Google refused (R5). A pass or a send that read the token before the rep connected again
    learns of the refusal after the new token was stored; then the mailbox is not marked, because the
    refusal is about a token nobody uses any more (the new connection stays connected).
    """
    from google.cloud import firestore  # lazy: Firestore library (cold start)

    db = firestore_client()
    links = links_for_mailbox(mailbox_id)

    @firestore.transactional
    def run(tx: Any) -> list[Link]:
        mb = mailbox_ref(mailbox_id).get(transaction=tx)
        if not mb.exists:
            return []
        if rejected_token is not None and _replaced(mailbox_id, rejected_token, tx):
            return []
        changed = []
        user_snaps = [(ln, user_ref(ln.accountId, ln.userId).get(transaction=tx)) for ln in links]
        if (mb.to_dict() or {}).get("status") != status:
            tx.update(mailbox_ref(mailbox_id), {"status": status, "lastError": reason})
        for ln, snap in user_snaps:
            current = ((snap.to_dict() or {}).get("emailSync") or {}).get("status")
            if current != status:
                tx.set(user_ref(ln.accountId, ln.userId),
                       {"emailSync": {"status": status, "lastError": reason}}, merge=True)
                changed.append(ln)
        return changed

    result: list[Link] = run(db.transaction())
    return result
