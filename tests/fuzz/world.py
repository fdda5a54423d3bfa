"""A CRM world on the local stack for fuzzing: ids that exist, so generated requests reach deep code.

Two accounts (tenant isolation), a connected rep with an Auto BCC address and
one sent message to reply to, a user who never connected, a contact without a
valid address. Everything is created the way the CRM and the rep would: the
CRM's documents written into the Firestore emulator, the rep's Gmail
connected through the oauth function and the simulator's consent, the first
message sent through send_email.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests

from tests.e2e.oauth_steps import connect, crm_for, seed_contact, seed_user

ACCOUNT, USER, OFFLINE_USER = "acme", "alice", "bob"
CONTACT, NO_MAIL_CONTACT = "carl", "nomail"
OTHER_ACCOUNT, OTHER_USER, OTHER_CONTACT = "globex", "olga", "otto"
REP = "alice.rep@gmail.test"
CONTACT_EMAIL = "carl@client.test"
RETURN_URL = "http://localhost:5173/settings/email"

_env_lock = threading.Lock()


def firestore_for(stack: Any) -> Any:
    """A Firestore client on the stack's emulator (the client reads the host once, when built)."""
    from google.cloud import firestore

    with _env_lock:
        old = os.environ.get("FIRESTORE_EMULATOR_HOST")
        os.environ["FIRESTORE_EMULATOR_HOST"] = stack.firestore_host
        try:
            return firestore.Client(project=stack.project_id)
        finally:
            if old is None:
                os.environ.pop("FIRESTORE_EMULATOR_HOST", None)
            else:
                os.environ["FIRESTORE_EMULATOR_HOST"] = old


@dataclass
class World:
    stack: Any
    db: Any
    auto_bcc: str
    reply_to: str
    keys: dict[str, str]
    states: list[str] = field(default_factory=list)  # signed OAuth states issued by /connect, unspent
    spent_states: list[str] = field(default_factory=list)  # … and those a fuzz case already took to /callback

    @property
    def ids(self) -> tuple[str, ...]:
        """Ids a generated request may use instead of random ones (existing, foreign and unknown ones)."""
        return (ACCOUNT, USER, OFFLINE_USER, CONTACT, NO_MAIL_CONTACT, OTHER_ACCOUNT, OTHER_USER, OTHER_CONTACT,
                self.reply_to)

    @property
    def addresses(self) -> tuple[str, ...]:
        return (REP, CONTACT_EMAIL, "alice@acme.example", "bob@acme.example", "new.person@client.test",
                "olga@globex.example", self.auto_bcc)


def build_world(stack: Any, states: int = 0) -> World:
    """Reset the stack and seed the world (a few seconds: one OAuth connect, one send)."""
    from simulator.client import SimClient

    stack.reset()
    db = firestore_for(stack)
    sim = SimClient(stack.simulator_url)
    seed_user(db, ACCOUNT, USER, email="alice@acme.example")
    seed_user(db, ACCOUNT, OFFLINE_USER, email="bob@acme.example")
    seed_contact(db, ACCOUNT, CONTACT, CONTACT_EMAIL, "Carl Client")
    db.document(f"accounts/{ACCOUNT}/contacts/{NO_MAIL_CONTACT}").set(
        {"email": "not an address", "name": "No Mail", "createdAt": datetime.now(UTC)})
    seed_user(db, OTHER_ACCOUNT, OTHER_USER, email="olga@globex.example")
    seed_contact(db, OTHER_ACCOUNT, OTHER_CONTACT, "otto@client.test", "Otto")
    crm = crm_for(stack)
    result = connect(crm, sim, ACCOUNT, USER, REP)
    assert result.get("status") == "connected", result
    auto_bcc = crm.status(ACCOUNT, USER)["autoBccAddress"]
    keys = {"crm": stack.secrets.crm_api_key, "inbound": stack.secrets.inbound_api_key}
    sent = requests.post(stack.function_url("send_email"), timeout=60,
                         headers={"Authorization": f"Bearer {keys['crm']}"},
                         json={"accountId": ACCOUNT, "userId": USER, "contactId": CONTACT, "subject": "Offer",
                               "text": "Hello Carl", "idempotencyKey": "fuzz-world-1"})
    assert sent.status_code == 200, sent.text
    world = World(stack=stack, db=db, auto_bcc=auto_bcc, reply_to=sent.json()["messageId"], keys=keys)
    for _ in range(states):
        state = issue_state(world)
        if state is not None:
            world.states.append(state)
    settle(world)
    return world


def issue_state(world: World) -> str | None:
    """A signed, unspent OAuth state, as the rep's browser would carry it to /callback (None: not in the URL)."""
    from urllib.parse import parse_qs, urlsplit

    url = crm_for(world.stack).start(ACCOUNT, USER, RETURN_URL)
    return (parse_qs(urlsplit(url).query).get("state") or [None])[0]


def settle(world: World, forced_since: str | None = None, timeout: float = 10.0) -> None:
    """Wait until the rep's mailbox sync is idle, so its background writes are not blamed on a later request.

    Idle: no lease held and the cursor at the simulator's historyId; after a resync (`forced_since`: the
    mailbox document's update time before it), also a pass that started after it. Then 0.2 s without any
    write anywhere.
    """
    from shared.crm import paths
    from simulator.client import SimClient
    from tests.fuzz.stray import snapshot

    sim = SimClient(world.stack.simulator_url)
    mailbox = f"{paths.MAILBOXES}/{paths.mailbox_id(REP)}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        snap = world.db.document(mailbox).get()
        mb = snap.to_dict() or {}
        if mb.get("status") != "connected":
            break
        caught_up = int(mb.get("historyId") or 0) >= int(sim.mailbox(REP)["historyId"])
        passed = forced_since is None or snap.update_time != _parse_time(forced_since)
        if caught_up and passed and not mb.get("leaseOwner"):
            break
        time.sleep(0.05)
    last = snapshot(world.stack)
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = snapshot(world.stack)
        if now == last:
            return
        last = now


def _parse_time(rfc3339: str) -> datetime:
    """An update time as the REST API spells it (what tests/fuzz/stray.py snapshots hold)."""
    return datetime.fromisoformat(rfc3339)
