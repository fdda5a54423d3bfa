"""Google's redirect back to us (R1, R3, R5, R5b, R24): from a signed state and a code to a connection.

Trust and order:
1. The state must be one we signed (else `StateRejected`: its returnUrl cannot
   be trusted, so the adapter answers 400 JSON, no redirect).
2. It must be unexpired, unused, and come back in the browser that opened
   `/start` (R24: `session_mismatch` otherwise, and the state stays unspent).
   From here on it is spent.
3. Google's side (code exchange, scopes, users.getProfile, users.watch), then
   the one Firestore transaction (shared/connect/connections.py), then retiring
   an old mailbox and telling the CRM.
4. R5b: when the mailbox kept its cursor (a re-connect after `reauth_required`,
   an update to a Gmail that is already synced), a sync is requested at once, so
   the mail that arrived in between shows up now and not at the next sweep.
Every failure after step 1 sends the browser back to the returnUrl with a
reason and leaves nothing half-written.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from shared.connect import connections
from shared.connect.announce import announce
from shared.connect.auto_bcc_route import user_route
from shared.connect.browser_session import expired_cookie, presented_secret
from shared.connect.consent import BrowserStep
from shared.connect.errors import UserNotFound
from shared.connect.oauth_flow import ExchangeFailed, exchange_code, revoke_token
from shared.connect.oauth_state import StateError, consume_state
from shared.connect.return_url import outcome_location, trusted_claims
from shared.core import log
from shared.core.config import get_config
from shared.crm import contact_index, paths
from shared.crm.mailboxes import sealed_token
from shared.gmail.credentials import forget_access_token
from shared.gmail.send_as import read_send_as
from shared.gmail.service import build_gmail
from shared.gmail.watch import Profile, read_profile, start_watch
from shared.sync.requests import request_sync
from shared.sync.watch_filter import read_excluded_labels

if TYPE_CHECKING:
    from shared.connect.oauth_flow import TokenGrant
    from shared.connect.oauth_state import StateClaims


def finish_callback(args: Mapping[str, str], cookies: Mapping[str, str]) -> BrowserStep:
    """The browser's next stop (the returnUrl with the outcome); the session cookie is deleted either way."""
    claims = trusted_claims(args.get("state", ""))
    secure = get_config().oauth_cookies_secure
    reason = _outcome(claims, args, presented_secret(cookies, claims.nonce, secure))
    return BrowserStep(outcome_location(claims.return_url, reason), expired_cookie(claims.nonce, secure))


def _outcome(claims: StateClaims, args: Mapping[str, str], browser_secret: str | None) -> str:
    ids = {"accountId": claims.account_id, "userId": claims.user_id}
    if claims.expired(time.time()):
        return "state_expired"
    try:
        verifier = consume_state(claims, browser_secret)  # single use, from here on the state is spent
    except StateError as err:
        log.info("oauth state refused", reason=err.reason, **ids)
        return err.reason
    if args.get("error"):
        reason = "access_denied" if args.get("error") == "access_denied" else "authorization_failed"
        log.info("consent not given", reason=reason, **ids)
        return reason
    code = args.get("code")
    if not code:
        return "missing_code"
    try:
        grant = exchange_code(code, verifier)
    except ExchangeFailed as err:
        log.warning("code exchange failed", reason=err.reason, detail=str(err), **ids)
        return err.reason
    if grant.missing_scopes():
        # Nothing is stored. The grant is not revoked: at Google that would end the grant of this
        # client for the whole Google account, which another CRM user may still be using (R14).
        log.info("consent without required scopes", missing=grant.missing_scopes(), **ids)
        return "missing_scopes"
    if not grant.refresh_token:
        return "no_refresh_token"
    try:
        return _connect(claims, grant)
    except Exception as exc:
        log.error("connection failed", error=type(exc).__name__, **ids)
        return "internal"


def _connect(claims: StateClaims, grant: TokenGrant) -> str:
    """Google calls first, then one transaction, then retire the old mailbox, tell the CRM, sync the gap."""
    ids = {"accountId": claims.account_id, "userId": claims.user_id}
    service = build_gmail(grant.credentials())
    profile: Profile | None = None
    watching = False
    try:
        profile = read_profile(service)
        watch_expiration = start_watch(service, read_excluded_labels(paths.mailbox_id(profile.address),
                                                                     [claims.account_id]))
        watching = True
        profile = replace(profile, aliases=tuple(read_send_as(service, profile.address) or ()))  # R28
    except Exception as exc:
        log.warning("Gmail refused getProfile/watch", error=type(exc).__name__, **ids)
        _abandon(grant, profile, watching, service)
        return "gmail_unavailable"

    mailbox_id = paths.mailbox_id(profile.address)
    route, token = user_route(claims.account_id, claims.user_id)
    try:
        outcome = connections.commit_connection(
            claims.account_id, claims.user_id, profile, watch_expiration,
            sealed_token(mailbox_id, grant.refresh_token or "", sorted(grant.scopes)), route, token,
        )
    except UserNotFound:
        _abandon(grant, profile, watching, service)
        return "user_not_found"
    except Exception:
        _abandon(grant, profile, watching, service)
        raise
    forget_access_token(mailbox_id)  # a cached access token of the previous grant must not outlive it
    log.info("gmail connected", mailboxId=mailbox_id, newCursor=outcome.new_cursor,
             restored=len(outcome.restored), replaced=outcome.retired is not None, **ids)
    if outcome.retired is not None:
        connections.retire_at_google(outcome.retired)
    announce([(claims.account_id, claims.user_id)] + [(ln.accountId, ln.userId) for ln in outcome.restored],
             "connected", profile.address)
    _index_contacts(claims.account_id)
    if not outcome.new_cursor:
        _sync_the_gap(profile.address, mailbox_id)
    return "connected"


def _index_contacts(account_id: str) -> None:
    """R11b: the account's contacts from before the sync-owned index are indexed now, once per account, so that
    the account's first sync pass is a steady one (SPEC §5: at most 6 round trips). Best effort: a pass still
    scans what this left undone before it looks contacts up."""
    try:
        state = paths.contact_index_state_ref(account_id).get()
        if not contact_index.is_complete(state):
            contact_index.backfill(account_id, state)
    except Exception as exc:
        log.warning("could not index the account's contacts at connect", accountId=account_id,
                    error=type(exc).__name__)


def _sync_the_gap(address: str, mailbox_id: str) -> None:
    """R5b. Best effort: the connection is made; if the request is lost, the sweep still finds the mailbox."""
    try:
        request_sync([address])
        log.info("sync requested after reconnect", mailboxId=mailbox_id)
    except Exception as exc:
        log.warning("could not request the sync after reconnect", mailboxId=mailbox_id, error=type(exc).__name__)


def _abandon(grant: TokenGrant, profile: Profile | None, watching: bool, service: Any) -> None:
    """Undo the Google side of a connection that will not be stored.

    If another CRM user still uses this mailbox, its watch and grant are theirs too: leave them.
    """
    if profile is not None and connections.mailbox_has_links(paths.mailbox_id(profile.address)):
        return
    if watching:
        try:
            service.users().stop(userId="me").execute()
        except Exception as exc:
            log.warning("could not stop the abandoned watch", error=type(exc).__name__)
    if grant.refresh_token:
        revoke_token(grant.refresh_token)
