"""Every connected mailbox a logged message came through, with the message's Gmail id there (R33).

A message reaches an account through one or more mailboxes: the one on its
document (`mailboxId`; a CRM send: the sending user's mailbox), the
mailboxes of its other logged copies in the same conversation (the same
RFC 822 `Message-ID` synced from a colleague's mailbox), and, where the
document lists them (R25), `mailboxIds`. A mailbox counts only while it is
linked to this account (a disconnected rep's mailbox is left alone). Where a
mailbox's Gmail id for the message is not known, it is looked up by
`rfc822msgid:` when the change is applied.

Also here: the scope check. A mailbox connected before 0.3 holds a grant
without `gmail.modify`; such a mailbox cannot take the change, and the whole
request is refused before anything is written (409 `missing_scopes`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.core.clients import firestore_client
from shared.core.config import GMAIL_FULL, GMAIL_MODIFY
from shared.crm.mailboxes import get_link, links_for_mailbox
from shared.crm.paths import token_ref

MAX_COPIES = 20  # copies of one Message-ID in one conversation looked at (one per rep's mailbox at most)


@dataclass
class Target:
    mailbox_id: str
    gmail_id: str | None  # None: look it up by the message's RFC 822 Message-ID
    rfc822_id: str | None


def can_modify(scopes: list[str] | None) -> bool:
    return bool(scopes) and (GMAIL_MODIFY in (scopes or []) or GMAIL_FULL in (scopes or []))


def copies(account_id: str, conversation_id: str, doc: dict[str, Any], ref: Any) -> list[Any]:
    """The message's document and its other copies in the conversation (same Message-ID)."""
    from google.cloud.firestore_v1.base_query import FieldFilter  # lazy: Firestore library (cold start)

    rfc = doc.get("rfc822MessageId")
    if not isinstance(rfc, str) or not rfc:
        return []
    query = ref.parent.where(filter=FieldFilter("rfc822MessageId", "==", rfc)).limit(MAX_COPIES)
    return [s for s in query.stream() if s.reference.path != ref.path]


def find_targets(account_id: str, doc: dict[str, Any], siblings: list[Any]) -> list[Target]:
    """The mailboxes (linked to this account) the message came through, each once."""
    rfc = doc.get("rfc822MessageId") if isinstance(doc.get("rfc822MessageId"), str) else None
    found: dict[str, Target] = {}

    def add(mailbox_id: Any, gmail_id: Any) -> None:
        if isinstance(mailbox_id, str) and mailbox_id and mailbox_id not in found:
            found[mailbox_id] = Target(mailbox_id, gmail_id if isinstance(gmail_id, str) and gmail_id else None, rfc)

    primary = doc.get("mailboxId")
    if not primary and doc.get("userId"):  # a CRM send or an Auto BCC copy: the user's mailbox
        link = get_link(account_id, str(doc["userId"]))
        primary = link.mailboxId if link else None
    add(primary, doc.get("gmailMessageId") if doc.get("source") != "auto_bcc" else None)
    for snap in siblings:
        other = snap.to_dict() or {}
        add(other.get("mailboxId"), other.get("gmailMessageId"))
    for mailbox_id in doc.get("mailboxIds") or []:  # R25, where the document lists them
        add(mailbox_id, None)
    return [t for t in found.values() if any(ln.accountId == account_id for ln in links_for_mailbox(t.mailbox_id))]


def without_modify_scope(targets: list[Target]) -> list[str]:
    """The target mailboxes whose stored grant lacks gmail.modify (connected before 0.3)."""
    if not targets:
        return []
    snaps = firestore_client().get_all([token_ref(t.mailbox_id) for t in targets])
    lacking = []
    for snap in snaps:
        if snap.exists and not can_modify((snap.to_dict() or {}).get("scopes")):
            lacking.append(snap.id)
    return sorted(lacking)
