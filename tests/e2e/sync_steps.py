"""Steps of the sync end-to-end tests: mail written as people write it, and what the CRM sees.

Mail enters the simulated Gmail through its admin API (delivery from outside,
or the rep sending from Gmail's UI); the simulator publishes the watch
notification to the Pub/Sub emulator, which pushes it to the real
`gmail_push` under functions-framework. The tests then read Firestore as the
CRM would.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any, TypeVar

from devstack.polling import wait_until
from tests.e2e.oauth_steps import connect, crm_for, seed_user, wait_contact_indexed

T = TypeVar("T")


def mail(frm: str, to: str | list[str], subject: str, body: str = "Hello", *, cc: list[str] | None = None,
         bcc: list[str] | None = None, html: str | None = None, in_reply_to: str | None = None,
         attachments: list[tuple[str, str, bytes]] | None = None, charset: str = "utf-8",
         message_id: str | None = None, cte: str | None = None) -> bytes:
    m = EmailMessage()
    m["From"] = frm
    m["To"] = ", ".join(to) if isinstance(to, list) else to
    if cc:
        m["Cc"] = ", ".join(cc)
    if bcc:
        m["Bcc"] = ", ".join(bcc)
    m["Subject"] = subject
    m["Message-ID"] = message_id or make_msgid(domain="mail.test")
    if in_reply_to:
        m["In-Reply-To"] = in_reply_to
        m["References"] = in_reply_to
    m.set_content(body, charset=charset, cte=cte)
    if html is not None:
        m.add_alternative(html, subtype="html", charset=charset, cte=cte)
    for filename, mime, data in attachments or []:
        maintype, subtype = mime.split("/", 1)
        m.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return m.as_bytes()


def doc_id_of(raw: bytes, gmail_id: str) -> str:
    """The id of the message document of mail `raw` (`gmail_id`: its id in one mailbox): the account's one
    record of its Message-ID (R25), or `gm_<gmailId>` for mail without one."""
    from email import message_from_bytes, policy

    from shared.crm import paths

    header = message_from_bytes(raw, policy=policy.default).get("Message-ID")
    return paths.message_doc_id(str(header) if header else None, gmail_id)


def logged_id(sim: Any, address: str, got: dict[str, Any]) -> str:
    """`doc_id_of` a mail Gmail holds (`got`: its id in mailbox `address`)."""
    return doc_id_of(sim.raw_message(address, got["id"]), got["id"])


def wait_for(probe: Callable[[], T | None], timeout: float = 20.0, what: str = "condition") -> T:
    return wait_until(probe, timeout, what)


def seed_contact(db: Any, account: str, contact: str, email: str, *, created: datetime | None = None,
                 assigned: list[str] | None = None) -> None:
    doc: dict[str, Any] = {"email": email, "name": contact.title(), "createdAt": created or datetime.now(UTC)}
    if assigned is not None:
        doc["assignedUserIds"] = assigned
    db.document(f"accounts/{account}/contacts/{contact}").set(doc)
    wait_contact_indexed(db, account, contact, email)


def connect_rep(stack: Any, sim: Any, db: Any, account: str, user: str, gmail: str,
                user_email: str | None = None) -> None:
    """The rep connects Gmail through the real oauth flow (R1)."""
    seed_user(db, account, user, user_email)
    assert connect(crm_for(stack), sim, account, user, gmail) == {"status": "connected"}


def alice_with_carla(stack: Any, sim: Any, db: Any, rep: str, carla: str) -> Any:
    """acme's contact carla (at `carla`) and acme's rep alice connected as `rep`: the world of most sync rules."""
    seed_contact(db, "acme", "carla", carla)
    connect_rep(stack, sim, db, "acme", "alice", rep, user_email="alice@acme.test")
    return db


def messages_of(db: Any, account: str) -> dict[str, dict[str, Any]]:
    """Every message document of an account: 'conversationId/messageId' -> data."""
    out: dict[str, dict[str, Any]] = {}
    for conv in db.collection(f"accounts/{account}/conversations").list_documents():
        for snap in conv.collection("messages").stream():
            out[f"{conv.id}/{snap.id}"] = snap.to_dict()
    return out


def all_message_docs(db: Any) -> list[tuple[str, dict[str, Any]]]:
    """Every message document in the database (collection group), path -> data."""
    return [(s.reference.path, s.to_dict()) for s in db.collection_group("messages").stream()]


def mailbox_doc(db: Any, address: str) -> dict[str, Any]:
    from shared.crm import paths

    snap = db.collection("sync_mailboxes").document(paths.mailbox_id(address)).get()
    return snap.to_dict() or {}


def synced_past(db: Any, address: str, history_id: int | str) -> bool:
    """The mailbox cursor covers `history_id` (everything up to it is stored)."""
    cursor = mailbox_doc(db, address).get("historyId")
    return cursor is not None and int(cursor) >= int(history_id)


def wait_synced(db: Any, sim: Any, address: str, timeout: float = 20.0) -> None:
    """Wait until the cursor reaches the mailbox's current historyId at Google."""
    target = int(sim.mailbox(address)["historyId"])
    wait_for(lambda: synced_past(db, address, target), timeout, f"{address} synced to {target}")


def push(stack: Any, body: dict[str, Any]) -> None:
    """Publish a message as Gmail (a notification with a historyId, on gmail-watch), or as the CRM's
    resync or Cloud Scheduler would (anything else, on the sync's own control topic)."""
    import json

    topic = "gmail-watch" if "historyId" in body else "sync-control"
    stack.pubsub.publish(topic, json.dumps(body).encode("utf-8"))


def old_enough(minutes: int) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes)
