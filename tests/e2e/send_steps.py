"""Steps of the send tests: a CRM world with a connected rep, and the CRM's send call.

Everything goes through real HTTP and the emulators: the rep connects through
the oauth function and the simulator's consent, sends are POSTs to the
send_email function, and results are read from the Firestore emulator and the
simulator's admin API.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from devstack.polling import wait_until
from tests.e2e.oauth_steps import connect, crm_for, seed_contact, seed_user

ACCOUNT = "acme"
USER = "alice"
REP = "alice.rep@gmail.test"
CONTACT = "carl"
CONTACT_EMAIL = "carl@client.test"


@dataclass
class World:
    stack: Any
    db: Any
    sim: Any
    url: str
    api_key: str

    def send(self, key: str | None = None, *, timeout: float = 120, **fields: Any) -> requests.Response:
        body: dict[str, Any] = {"accountId": ACCOUNT, "userId": USER, "contactId": CONTACT,
                                "subject": "Our offer", "text": "Hello Carl,\nhere is our offer.",
                                "idempotencyKey": key or f"k-{time.monotonic_ns()}"}
        body.update(fields)
        body = {k: v for k, v in body.items() if v is not None}
        return requests.post(self.url, json=body, timeout=timeout,
                             headers={"Authorization": f"Bearer {self.api_key}"})

    def sent(self, address: str = REP) -> list[dict[str, Any]]:
        msgs: list[dict[str, Any]] = self.sim.messages(address, label="SENT")
        return msgs

    def raw(self, gmail_id: str, address: str = REP) -> bytes:
        raw: bytes = self.sim.raw_message(address, gmail_id)
        return raw

    def messages(self, account: str = ACCOUNT, conversation: str = CONTACT) -> dict[str, dict[str, Any]]:
        col = self.db.collection(f"accounts/{account}/conversations/{conversation}/messages")
        return {s.id: s.to_dict() for s in col.stream()}

    def collection(self, name: str) -> dict[str, dict[str, Any]]:
        return {s.id: s.to_dict() for s in self.db.collection(name).stream()}

    def send_calls(self, address: str = REP) -> int:
        return int(self.sim.stats().get("calls", {}).get(address, {}).get("messages.send", 0))


def make_world(stack: Any, db: Any, sim: Any, *, connect_rep: bool = True) -> World:
    seed_user(db, ACCOUNT, USER)
    db.document(f"accounts/{ACCOUNT}/users/{USER}").update({"name": "Alice Rep"})
    seed_contact(db, ACCOUNT, CONTACT, CONTACT_EMAIL, "Carl Client")
    if connect_rep:
        result = connect(crm_for(stack), sim, ACCOUNT, USER, REP)
        assert result.get("status") == "connected", result
    return World(stack=stack, db=db, sim=sim, url=stack.function_url("send_email"),
                 api_key=stack.secrets.crm_api_key)


def drain_sync(world: World, address: str = REP, timeout: float = 10.0) -> None:
    """Wait until gmail_push has synced everything the mailbox has (best effort).

    Called after each test, so a sync pass still running for this test's mail
    cannot write into the next test's freshly reset Firestore.
    """
    from shared.crm import paths

    ref = world.db.document(f"{paths.MAILBOXES}/{paths.mailbox_id(address)}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            mb = ref.get().to_dict() or {}
            if mb.get("status") != "connected":
                return
            if int(mb.get("historyId") or 0) >= int(world.sim.mailbox(address)["historyId"]):
                return
        except Exception:
            return
        time.sleep(0.1)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def wait_for(check: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    return wait_until(check, timeout, what)
