"""Connect, update and disconnect a CRM user's Gmail (R1, R3, R4, R14), all-or-nothing.

The order of every operation is chosen so that a failure at any step leaves
nothing half-written:

1. Google first (token exchange, users.getProfile, users.watch): nothing is in
   Firestore yet, so a failure here only needs the new grant cleaned up.
2. One Firestore transaction writes the mailbox, the encrypted token, the link,
   the user's `emailSync`, the Auto BCC route; it also swaps away the user's
   previous mailbox (R3) and restores other users of the same mailbox that were
   `reauth_required` (R5, R14).
3. After the commit, a mailbox that lost its last link is retired at Google
   (users.stop, token revoke). Its token document is already gone in step 2,
   so a crash here leaves at worst a watch that expires by itself within 7 days
   and whose notifications gmail_push acknowledges and ignores (the mailbox is
   `disconnected`).

A mailbox (one Gmail address) has one token, one watch and one sync cursor, no
matter how many (account, user) links it has (R14). It keeps its cursor across
reconnects while it still has links (R5: the gap is synced), and starts from
"now" (R2) when it is new or was fully disconnected (R4: nothing that arrived
while disconnected is imported).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.connect.errors import UserNotFound
from shared.connect.oauth_flow import TokenGrant, revoke_token
from shared.core import log
from shared.core.clients import firestore_client
from shared.core.config import get_config
from shared.core.crypto import Sealed, open_sealed
from shared.core.models import AutoBccRoute, EmailSync, Link, Mailbox, StoredToken
from shared.crm import paths
from shared.crm.mailboxes import links_for_mailbox, now
from shared.crm.paths import auto_bcc_route_ref, link_ref, mailbox_ref, token_ref, user_ref
from shared.crm.user_addresses import stamp
from shared.gmail.credentials import forget_access_token
from shared.gmail.service import build_gmail
from shared.gmail.watch import GMAIL_NUM_RETRIES, Profile


@dataclass
class Retired:
    """A mailbox that lost its last link: its watch must stop and its token be revoked."""

    mailbox_id: str
    address: str
    refresh_token: str | None = field(default=None, repr=False)


@dataclass
class ConnectOutcome:
    mailbox_id: str
    address: str
    auto_bcc_address: str
    connected_at: datetime
    new_cursor: bool  # the sync cursor was (re)started at this connection
    restored: list[Link]  # other users of this mailbox whose status went back to connected
    retired: Retired | None  # the user's previous mailbox, if no one uses it any more


@dataclass
class DisconnectOutcome:
    was_linked: bool
    address: str | None
    retired: Retired | None


# --------------------------------------------------------------------------- Google side

def retire_at_google(retired: Retired) -> dict[str, bool]:
    """Stop the watch and revoke the token of a mailbox nobody uses any more (best effort, logged)."""
    forget_access_token(retired.mailbox_id)
    result = {"watchStopped": False, "tokenRevoked": False}
    if not retired.refresh_token:
        return result
    try:
        grant = TokenGrant(access_token="", refresh_token=retired.refresh_token, scopes=frozenset(), expiry=None)
        creds = grant.credentials()
        creds.token = None  # force a refresh on first use
        build_gmail(creds).users().stop(userId="me").execute(num_retries=GMAIL_NUM_RETRIES)
        result["watchStopped"] = True
    except Exception as exc:  # invalid_grant (already revoked), network: the watch then expires on its own
        log.warning("could not stop the Gmail watch", mailboxId=retired.mailbox_id, error=type(exc).__name__)
    result["tokenRevoked"] = revoke_token(retired.refresh_token)
    if not result["tokenRevoked"]:
        log.warning("could not revoke the token at Google", mailboxId=retired.mailbox_id)
    log.info("mailbox retired", mailboxId=retired.mailbox_id, **result)
    return result


# --------------------------------------------------------------------------- Firestore side

def _links_of(tx: Any, mailbox_id: str) -> list[Link]:
    return links_for_mailbox(mailbox_id, tx)


def _is(link: Link, account_id: str, user_id: str) -> bool:
    return link.accountId == account_id and link.userId == user_id


@dataclass
class _RetirePlan:
    """What the transaction read about a mailbox losing its last link (reads come before writes)."""

    mailbox_id: str
    address: str
    mailbox_exists: bool
    token_doc: dict[str, Any] | None


def _plan_retire(tx: Any, mailbox_id: str) -> _RetirePlan:
    token_snap = token_ref(mailbox_id).get(transaction=tx)
    mb_snap = mailbox_ref(mailbox_id).get(transaction=tx)
    return _RetirePlan(mailbox_id=mailbox_id, address=(mb_snap.to_dict() or {}).get("address", "") if mb_snap.exists
                       else "", mailbox_exists=mb_snap.exists,
                       token_doc=token_snap.to_dict() if token_snap.exists else None)


def _apply_retire(tx: Any, plan: _RetirePlan) -> None:
    tx.delete(token_ref(plan.mailbox_id))
    if plan.mailbox_exists:
        tx.update(mailbox_ref(plan.mailbox_id), {"status": "disconnected", "lastError": None, "watchExpiration": None})


def _retired(plan: _RetirePlan | None) -> Retired | None:
    """Decrypt the retired mailbox's token after the commit (outside the transaction's retries)."""
    if plan is None:
        return None
    retired = Retired(mailbox_id=plan.mailbox_id, address=plan.address)
    if plan.token_doc:
        t = StoredToken.from_doc(plan.token_doc)
        try:
            retired.refresh_token = open_sealed(Sealed(t.ciphertext, t.nonce, t.keyVersion), context=plan.mailbox_id)
        except Exception as exc:
            log.error("stored token could not be decrypted", mailboxId=plan.mailbox_id, error=type(exc).__name__)
    return retired


def commit_connection(
    account_id: str,
    user_id: str,
    profile: Profile,
    watch_expiration: datetime,
    token: StoredToken,
    auto_bcc: AutoBccRoute,
    auto_bcc_token: str,
) -> ConnectOutcome:
    """Step 2: the one transaction that makes the connection real (see the module doc)."""
    from google.cloud import firestore  # lazy: Firestore library (cold start)

    mailbox_id = paths.mailbox_id(profile.address)
    db = firestore_client()
    route_ref = auto_bcc_route_ref(auto_bcc_token)

    @firestore.transactional
    def run(tx: Any) -> tuple[ConnectOutcome, _RetirePlan | None]:
        # ---- reads (all before any write, as Firestore transactions require)
        user_snap = user_ref(account_id, user_id).get(transaction=tx)
        if not user_snap.exists:
            raise UserNotFound(f"{account_id}/{user_id}")
        link_snap = link_ref(account_id, user_id).get(transaction=tx)
        previous = Link.from_doc(link_snap.to_dict()) if link_snap.exists else None
        mb_snap = mailbox_ref(mailbox_id).get(transaction=tx)
        mb = Mailbox.from_doc(mb_snap.to_dict()) if mb_snap.exists else None
        others = [ln for ln in _links_of(tx, mailbox_id) if not _is(ln, account_id, user_id)]
        other_users = [(ln, user_ref(ln.accountId, ln.userId).get(transaction=tx)) for ln in others]
        retired = None
        if previous is not None and previous.mailboxId != mailbox_id:
            still_used = [ln for ln in _links_of(tx, previous.mailboxId) if not _is(ln, account_id, user_id)]
            if not still_used:
                retired = _plan_retire(tx, previous.mailboxId)

        # ---- writes
        at = now()
        new_cursor = mb is None or mb.status == "disconnected" or not mb.historyId
        # the sweep reads a mailbox once it is due (shared/sync/sweep.py): a new connection is due now
        sweep_fields: dict[str, Any] = {"sweepShard": paths.sweep_shard(mailbox_id, get_config().sync_sweep_shards),
                                        "sweepDueAt": at}
        if new_cursor:
            tx.set(mailbox_ref(mailbox_id), Mailbox(
                address=profile.address, status="connected", historyId=profile.history_id, connectedAt=at,
                lastSyncedInternalDate=int(at.timestamp() * 1000), watchExpiration=watch_expiration, **sweep_fields,
                aliases=list(profile.aliases),
            ).to_doc())
        else:
            tx.update(mailbox_ref(mailbox_id), {"address": profile.address, "status": "connected",
                                                "lastError": None, "watchExpiration": watch_expiration,
                                                "watchLapsedAt": None, "aliases": list(profile.aliases),
                                                **sweep_fields})
        tx.set(token_ref(mailbox_id), token.to_doc())
        tx.set(link_ref(account_id, user_id), Link(accountId=account_id, userId=user_id, mailboxId=mailbox_id,
                                                   address=profile.address, linkedAt=at).to_doc())
        tx.update(user_ref(account_id, user_id), {"emailSync": EmailSync(
            status="connected", address=profile.address, autoBccAddress=auto_bcc.address, connectedAt=at,
            lastSyncAt=None if new_cursor or mb is None else mb.lastSyncAt, lastError=None,
            aliases=list(profile.aliases), addressesStamp=stamp(at),
        ).to_doc()})
        tx.set(route_ref, auto_bcc.to_doc())
        restored = []
        for ln, snap in other_users:
            if snap.exists and ((snap.to_dict() or {}).get("emailSync") or {}).get("status") != "connected":
                tx.set(user_ref(ln.accountId, ln.userId), {"emailSync": {"status": "connected", "lastError": None}},
                       merge=True)
                restored.append(ln)
        if retired is not None:
            _apply_retire(tx, retired)
        return ConnectOutcome(mailbox_id=mailbox_id, address=profile.address, auto_bcc_address=auto_bcc.address,
                              connected_at=at, new_cursor=new_cursor, restored=restored, retired=None), retired

    outcome, plan = run(db.transaction())
    outcome.retired = _retired(plan)
    return outcome


def remove_connection(account_id: str, user_id: str) -> DisconnectOutcome:
    """R4 in one transaction: unlink, mark the user disconnected, retire the mailbox if it was the last link."""
    from google.cloud import firestore  # lazy: Firestore library (cold start)

    db = firestore_client()

    @firestore.transactional
    def run(tx: Any) -> tuple[DisconnectOutcome, _RetirePlan | None]:
        user_snap = user_ref(account_id, user_id).get(transaction=tx)
        link_snap = link_ref(account_id, user_id).get(transaction=tx)
        link = Link.from_doc(link_snap.to_dict()) if link_snap.exists else None
        retired = None
        if link is not None:
            still_used = [ln for ln in _links_of(tx, link.mailboxId) if not _is(ln, account_id, user_id)]
            if not still_used:
                retired = _plan_retire(tx, link.mailboxId)
        sync = ((user_snap.to_dict() or {}).get("emailSync") or {}) if user_snap.exists else {}
        if link is not None:
            tx.delete(link_ref(account_id, user_id))
        if user_snap.exists and (link is not None or sync.get("status") not in (None, "disconnected")):
            tx.update(user_ref(account_id, user_id), {"emailSync": EmailSync(
                status="disconnected", addressesStamp=stamp(now())).to_doc()})  # R28: no longer their address
        if retired is not None:
            _apply_retire(tx, retired)
        return DisconnectOutcome(was_linked=link is not None, address=link.address if link else None,
                                 retired=None), retired

    outcome, plan = run(db.transaction())
    outcome.retired = _retired(plan)
    return outcome


def mailbox_has_links(mailbox_id: str) -> bool:

    return bool(links_for_mailbox(mailbox_id))
