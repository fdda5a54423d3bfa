"""Gmail thread → CRM conversation map per mailbox (R10, R14).

One Gmail thread is one conversation per account: the first message of a
thread decides the conversation and every later message of the thread follows
it, even when its primary contact would differ. A reply sent from one
account's CRM claims the thread (`ownerAccountId`), after which only that
account receives the thread's mail (R14).
"""

from __future__ import annotations

from typing import Any

from shared.core.clients import firestore_client
from shared.core.models import ThreadMap
from shared.crm.paths import thread_ref


def get_thread(mailbox_id: str, gmail_thread_id: str) -> ThreadMap | None:
    snap = thread_ref(mailbox_id, gmail_thread_id).get()
    return ThreadMap.from_doc(snap.to_dict()) if snap.exists else None


def get_threads(mailbox_id: str, gmail_thread_ids: list[str]) -> dict[str, ThreadMap]:
    """Many thread maps in one round trip (the sync reads a whole batch's threads at once)."""
    ids = list(dict.fromkeys(gmail_thread_ids))
    if not ids:
        return {}
    refs = [thread_ref(mailbox_id, t) for t in ids]
    out: dict[str, ThreadMap] = {}
    for snap in firestore_client().get_all(refs):
        if snap.exists:
            tm = ThreadMap.from_doc(snap.to_dict())
            out[tm.gmailThreadId] = tm
    return out


def map_conversation(mailbox_id: str, gmail_thread_id: str, account_id: str, conversation_id: str,
                     *, claim: bool = False) -> ThreadMap:
    """Record account → conversation for the thread if absent; `claim` makes the account its owner.

    Returns the map as stored: when the account already had a conversation for
    this thread, that one is kept (the caller should use it).
    """
    from google.cloud import firestore  # lazy: Firestore library (cold start)

    ref = thread_ref(mailbox_id, gmail_thread_id)

    @firestore.transactional
    def run(tx: Any) -> ThreadMap:
        snap = ref.get(transaction=tx)
        tm = (ThreadMap.from_doc(snap.to_dict()) if snap.exists
              else ThreadMap(mailboxId=mailbox_id, gmailThreadId=gmail_thread_id))
        changed = not snap.exists
        if account_id not in tm.conversations:
            tm.conversations = {**tm.conversations, account_id: conversation_id}
            changed = True
        if claim and tm.ownerAccountId is None:
            tm.ownerAccountId = account_id
            changed = True
        if changed:
            tx.set(ref, tm.to_doc())
        return tm

    result: ThreadMap = run(firestore_client().transaction())
    return result
