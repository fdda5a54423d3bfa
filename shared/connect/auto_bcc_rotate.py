"""Rotate a user's Auto BCC address (issue 23): the old address stops working, a new one is handed out.

Why: an Auto BCC address sits in every recipient's copy of the headers a
client leaks and in relays' logs; whoever holds it can post copies under the
rep (the From check and the relay's verdict stop forgeries, not replays of
the rep's own mail). The CRM calls `POST /auto-bcc/rotate {accountId, userId}`
on `oauth` when a rep's address leaked or the rep asks for a new one.

One transaction: read the user (404 if absent) and their owner document
(generation n), then write generation n+1 to the owner document, create the
route of the new address, delete the route of the old one (copies to it now
answer 404 unknown address), and, when the user document carries the address
(`emailSync.autoBccAddress`, written at connection), update it there. Each
call rotates again: a retried call hands out a newer address, and only the
newest works.
"""

from __future__ import annotations

from typing import Any

from shared.connect.auto_bcc_route import generation_of, route_for
from shared.connect.errors import UserNotFound
from shared.core import log
from shared.core.clients import firestore_client
from shared.crm.paths import auto_bcc_owner_ref, auto_bcc_route_ref, user_ref


def rotate_address(account_id: str, user_id: str) -> str:
    """The user's new Auto BCC address; the previous one no longer resolves."""
    from google.cloud import firestore  # lazy: Firestore library (cold start)

    db = firestore_client()
    owner, user = auto_bcc_owner_ref(account_id, user_id), user_ref(account_id, user_id)

    @firestore.transactional
    def run(tx: Any) -> tuple[str, int]:
        user_snap = user.get(transaction=tx)
        if not user_snap.exists:
            raise UserNotFound("no such user in this account")
        generation = generation_of(owner.get(transaction=tx))
        _, old_token = route_for(account_id, user_id, generation)
        new_route, new_token = route_for(account_id, user_id, generation + 1)
        tx.set(owner, {"accountId": account_id, "userId": user_id, "generation": generation + 1,
                       "address": new_route.address, "rotatedAt": firestore.SERVER_TIMESTAMP})
        tx.set(auto_bcc_route_ref(new_token), new_route.to_doc())
        tx.delete(auto_bcc_route_ref(old_token))
        if ((user_snap.to_dict() or {}).get("emailSync") or {}).get("autoBccAddress"):
            tx.update(user, {"emailSync.autoBccAddress": new_route.address})
        return new_route.address, generation + 1

    address, generation = run(db.transaction())
    log.info("auto bcc address rotated", accountId=account_id, userId=user_id, generation=generation)
    return address
