"""`gmail_push`: a message on the Gmail watch topic or the sync's control topic → the mailbox synced.

Two push subscriptions feed this one function: Gmail's notifications
(`{"emailAddress", "historyId"}`) and the sync's own control messages
(forced syncs, sweeps, watch renewals, continuations), each with its own ack
deadline and dead letters (deploy.sh). What each kind does is
shared/sync/control.py; the kinds are shared/sync/messages.py.

Returning acknowledges the message; raising makes Pub/Sub redeliver it. Only
a transient failure (Gmail past its retry budget, Firestore unavailable, a
lost race) is raised: malformed messages, unknown or disconnected mailboxes
and revoked authorizations (R5) are acknowledged and logged, never a retry storm.
"""

from __future__ import annotations

from typing import Any

from shared.core import log
from shared.sync.messages import Malformed, PushMessage, decode

__all__ = ["Malformed", "PushMessage", "decode", "handle"]


def handle(cloud_event: Any) -> None:
    try:
        msg = decode(cloud_event)
    except Malformed as exc:
        log.warning("malformed sync message acknowledged", reason=str(exc))
        return
    from shared.sync.control import handle as run

    run(msg)
