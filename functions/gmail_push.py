"""`gmail_push`: a message on the gmail-watch topic → the mailbox's CRM conversations up to date.

Three kinds of message arrive, all through this one path:
- Gmail's watch notification `{"emailAddress", "historyId"}`;
- `{"emailAddress", "force": true}`: sync now (CRM resync, the sweep's fan-out);
- `{"sweep": true}`: Cloud Scheduler; publish a force message for every
  connected mailbox whose last sync is older than SYNC_STALE_SECONDS, so a
  mailbox whose notifications were all lost still syncs within minutes.

Returning acknowledges the message; raising makes Pub/Sub redeliver it. Only
a transient failure (Gmail past its retry budget, Firestore unavailable) is
raised: malformed messages, unknown or disconnected mailboxes and revoked
authorizations (R5) are acknowledged and logged, never a retry storm.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from shared.core import log, paths
from shared.core.config import get_config
from shared.sync.requests import request_sync


@dataclass(frozen=True)
class PushMessage:
    address: str | None = None
    history_id: int | None = None
    force: bool = False
    sweep: bool = False


class Malformed(ValueError):
    """The Pub/Sub message is not one of the three kinds."""


def decode(cloud_event: Any) -> PushMessage:
    """CloudEvent (Pub/Sub `messagePublished`) → PushMessage, or Malformed."""
    data = getattr(cloud_event, "data", None)
    if not isinstance(data, dict):
        raise Malformed("event has no data")
    message = data.get("message")
    if not isinstance(message, dict) or not isinstance(message.get("data"), str):
        raise Malformed("event has no message.data")
    try:
        body = json.loads(base64.b64decode(message["data"], validate=False))
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError) as exc:  # RecursionError: deep JSON
        raise Malformed(f"message.data is not base64 JSON: {type(exc).__name__}") from None
    if not isinstance(body, dict):
        raise Malformed("message body is not an object")
    if body.get("sweep") is True:
        return PushMessage(sweep=True)
    address = body.get("emailAddress")
    if not isinstance(address, str) or "@" not in address or len(address) > 320 or not _is_unicode(address):
        raise Malformed("emailAddress missing or invalid")
    raw_hid = body.get("historyId")
    history_id: int | None = None
    if raw_hid is not None:
        history_id = _history_id(raw_hid)
    force = body.get("force") is True
    if history_id is None and not force:
        raise Malformed("neither historyId nor force")
    return PushMessage(address=address.strip().lower(), history_id=history_id, force=force)


MAX_HISTORY_ID = 2**63 - 1  # Gmail's uint64 as Firestore stores integers (int64)


def _history_id(raw: Any) -> int:
    """Gmail sends a decimal string (or a JSON number): 1e400, 1.5, true, -1 or 20 digits are malformed."""
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise Malformed("historyId is not an integer")
    if isinstance(raw, str) and not (raw.isascii() and raw.isdigit() and len(raw) <= 19):
        raise Malformed("historyId is not a decimal integer")
    value = int(raw)
    if not 0 <= value <= MAX_HISTORY_ID:
        raise Malformed("historyId is out of range")
    return value


def _is_unicode(text: str) -> bool:
    """False for a lone surrogate (JSON's "\\ud800"), which no id or log line can encode."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def handle(cloud_event: Any) -> None:
    try:
        msg = decode(cloud_event)
    except Malformed as exc:
        log.warning("malformed gmail-watch message acknowledged", reason=str(exc))
        return
    if msg.sweep:
        sweep()
        return
    assert msg.address is not None
    sync_mailbox(paths.mailbox_id(msg.address), msg.history_id, msg.force)


def sync_mailbox(mailbox_id: str, notified_history_id: int | None, force: bool) -> None:
    """Take the mailbox's lease and sync until no notification is pending (see shared/sync/lease.py)."""
    from shared.connect.mailboxes import get_mailbox
    from shared.gmail.credentials import NotConnected, ReauthRequired, open_gmail, reauth_guard
    from shared.gmail.fetch import GmailUnavailable
    from shared.sync import lease
    from shared.sync.engine import mirror_status, record_error, sync_pass

    cfg = get_config()
    mb = get_mailbox(mailbox_id)
    if mb is None or mb.status != "connected":
        log.info("notification for a mailbox that is not connected; acknowledged", mailboxId=mailbox_id,
                 status=mb.status if mb else None)
        return
    cursor = int(mb.historyId) if mb.historyId and str(mb.historyId).isdigit() else None
    if not force and notified_history_id is not None and cursor is not None and notified_history_id <= cursor:
        return  # already covered by the cursor: no Gmail call, no transaction
    owner = lease.new_owner()
    while True:
        state = lease.try_acquire(mailbox_id, owner, cfg.sync_lease_seconds, notified_history_id, force)
        if state.outcome == "acquired":
            break
        if state.outcome != "busy":
            return
        if not lease.wait_for_holder(mailbox_id, state.lease_until, cfg.sync_lease_seconds):
            return  # a live holder will sync again for us (it saw `dirty`)
        force = True
    heartbeat = lease.Heartbeat(mailbox_id, owner, cfg.sync_lease_seconds)
    try:
        while True:
            current = get_mailbox(mailbox_id)
            if current is None or current.status != "connected":
                return
            session = open_gmail(mailbox_id)
            with reauth_guard(mailbox_id, current.address):
                stats = sync_pass(session, current, heartbeat)
            if stats.unfinished:  # a long backlog: continue in a fresh invocation, inside its timeout
                request_sync([current.address])
                log.info("sync pass stopped at its time limit; continuing in a new invocation",
                         mailboxId=mailbox_id, stored=stats.stored)
                return
            mirrored = mirror_status(mailbox_id, current.lastSyncAt, current.lastError)
            # lease acquire + release (renewals are rare) and the users' status mirror
            log.info("mailbox synced", mailboxId=mailbox_id, fetched=stats.fetched, stored=stats.stored,
                     skipped=stats.skipped, recovered=stats.recovered, skipReasons=dict(stats.skip_reasons),
                     writes=stats.writes + 2 + mirrored,
                     seconds={k: round(v, 3) for k, v in stats.seconds.items()})
            if not lease.release(mailbox_id, owner, cfg.sync_lease_seconds):
                owner = ""
                return
    except (ReauthRequired, NotConnected) as exc:
        log.warning("mailbox cannot be read; notification acknowledged", mailboxId=mailbox_id,
                    reason=type(exc).__name__)
    except lease.LeaseLost:
        owner = ""
        log.warning("sync lease lost to another instance; it continues from the cursor", mailboxId=mailbox_id)
    except GmailUnavailable as exc:
        record_error(mailbox_id, f"Gmail is not answering (HTTP {exc.status}); the sync will retry")
        raise
    except Exception as exc:
        record_error(mailbox_id, "The sync failed unexpectedly; it will retry")
        log.error("sync failed", mailboxId=mailbox_id, error=type(exc).__name__)
        raise
    finally:
        if owner:
            _release_quietly(mailbox_id, owner)


def _release_quietly(mailbox_id: str, owner: str) -> None:
    """Free the lease after a failure so the redelivery need not wait for it to expire."""
    from shared.connect.mailboxes import mailbox_ref

    try:
        from google.cloud import firestore

        from shared.core.clients import firestore_client

        ref = mailbox_ref(mailbox_id)

        @firestore.transactional
        def run(tx: Any) -> None:
            data = ref.get(transaction=tx).to_dict() or {}
            if data.get("leaseOwner") == owner:
                tx.update(ref, {"leaseOwner": None, "leaseUntil": None})

        run(firestore_client().transaction())
    except Exception as exc:  # the lease expires by itself
        log.warning("could not release sync lease", mailboxId=mailbox_id, error=type(exc).__name__)


def sweep() -> None:
    """Publish a force message for each connected mailbox not synced for SYNC_STALE_SECONDS."""
    from shared.sync.engine import stale_connected_mailboxes

    stale = stale_connected_mailboxes(get_config().sync_stale_seconds)
    published = request_sync(mb.address for mb in stale)
    log.info("sweep published force syncs", mailboxes=published)
