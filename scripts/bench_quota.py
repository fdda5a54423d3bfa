"""Gmail quota units per rep-day on the local stack (`make bench`; issue 22, SPEC §5 0.3).

One rep's day, as the issue states it, goes through the whole stack under the
simulator's quota model (Gmail's 2026 model by default): 25 messages from
contacts (20 Primary, 5 Updates), 10 sent by the rep from Gmail to contacts,
20 CRM sends (send_email), 30 Promotions/Social/Forums, 15 strangers in
Primary, 100 read/star/trash changes, one sweep per quiet half hour (48 forced
passes that find nothing new). Events are spaced past Gmail's one
notification per second, so each is its own pass as in a real day. A watch
renewal every 5 days is added from the model (users.watch / 5), as it cannot
be made due without moving the clock.

Counted: the units the simulator charged the rep's mailbox after connecting,
except messages.send (the CRM's own sends cost 100 units each whatever the
sync does; shown apart). The legacy figure prices the same admitted calls at
the legacy table. The last line is
`quota: N units per rep-day (...)`.
Usage: .venv/bin/python scripts/bench_quota.py [--spacing 1.1]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from devstack.stack import Stack, StackSettings  # noqa: E402
from scripts.bench_sync import connect  # noqa: E402
from simulator.client import SimClient  # noqa: E402
from simulator.quota import LEGACY_UNITS, MODELS  # noqa: E402

REP = "rep@gmail.test"
ACCOUNT, USER = "bench", "u0"
GOAL = 1_500
WATCH_RENEWAL_DAYS = 5


def raw_mail(frm: str, to: str, subject: str) -> bytes:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"], m["Message-ID"] = frm, to, subject, make_msgid(domain="quota.test")
    m.set_content(f"{subject}.\nA short business email.\n")
    return m.as_bytes()


def rep_day(stack: Stack, sim: SimClient, contacts: list[str], spacing: float) -> tuple[list[str], list[str]]:
    """Play the day's mix; returns (ids of the contacts' mail, ids of every received message)."""
    import requests

    from shared.sync.messages import force_data

    send_url = stack.function_url("send_email")
    auth = {"Authorization": f"Bearer {stack.secrets.crm_api_key}"}
    from_contacts: list[str] = []
    received: list[str] = []

    def deliver(frm: str, subject: str, labels: list[str] | None = None) -> str:
        got = sim.deliver(REP, raw_mail(frm, REP, subject), label_ids=labels)
        received.append(got["id"])
        time.sleep(spacing)
        return str(got["id"])

    for i in range(20):
        from_contacts.append(deliver(contacts[i], f"Primary from a contact {i}"))
    for i in range(5):
        from_contacts.append(deliver(contacts[20 + i], f"Invoice {i}", ["CATEGORY_UPDATES"]))
    for i in range(10):
        sim.send_as_user(REP, raw_mail(REP, contacts[i], f"From the rep's Gmail {i}"))
        time.sleep(spacing)
    for i in range(20):
        r = requests.post(send_url, headers=auth, timeout=60, json={
            "accountId": ACCOUNT, "userId": USER, "contactId": f"c{i}", "subject": f"CRM send {i}",
            "text": "Hello,\nfrom the CRM.", "idempotencyKey": f"quota-{i}"})
        r.raise_for_status()
        time.sleep(spacing)
    for i, category in enumerate(["CATEGORY_PROMOTIONS", "CATEGORY_SOCIAL", "CATEGORY_FORUMS"] * 10):
        deliver(f"news{i}@shop.test", f"{category} {i}", [category])
    for i in range(15):
        deliver(f"stranger{i}@elsewhere.test", f"Hello from a stranger {i}")
    for n in range(100):  # read 60, star 25, trash 15
        gid = received[n % len(received)]
        if n < 60:
            sim.modify(REP, gid, remove=["UNREAD"])
        elif n < 85:
            sim.modify(REP, gid, add=["STARRED"])
        else:
            sim.modify(REP, gid, add=["TRASH"], remove=["INBOX"])
        time.sleep(spacing)
    for _ in range(48):  # the sweep of a quiet mailbox: a forced pass that finds nothing new
        stack.pubsub.publish("sync-control", force_data(REP, int(time.time() * 1000), "sweep"))
        time.sleep(spacing)
    return from_contacts, received


def wait_quiet(db: Any, sim: SimClient, timeout: float = 120) -> None:
    from shared.crm import paths

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        target = int(sim.mailbox(REP)["historyId"])
        doc = db.collection("sync_mailboxes").document(paths.mailbox_id(REP)).get().to_dict() or {}
        if int(doc.get("historyId") or 0) >= target and not doc.get("leaseOwner"):
            return
        time.sleep(0.5)
    raise SystemExit("the mailbox did not catch up within the timeout")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--spacing", type=float, default=1.1, help="seconds between events (Gmail notifies once a s)")
    args = ap.parse_args()
    run_dir = Path(tempfile.mkdtemp(prefix="bench-quota-"))
    stack = Stack(StackSettings(run_dir=run_dir))
    print(f"starting the local stack in {run_dir} …", file=sys.stderr)
    stack.start()
    try:
        os.environ.update(stack.env_for_clients())
        from google.cloud import firestore

        db = firestore.Client(project=stack.project_id)
        sim = SimClient(stack.simulator_url)
        model = sim.stats()["limits"]["model"]
        contacts = [f"client{i}@client.test" for i in range(25)]
        for i, c in enumerate(contacts):
            db.document(f"accounts/{ACCOUNT}/contacts/c{i}").set(
                {"email": c, "name": f"C{i}", "createdAt": datetime.now(UTC)})
        db.document(f"accounts/{ACCOUNT}/users/{USER}").set({"email": "u0@bench.test", "name": "U0"})
        deadline = time.monotonic() + 60
        while len(list(db.collection("sync_contact_index").select([]).stream())) < len(contacts):
            if time.monotonic() > deadline:
                raise SystemExit("contacts not indexed within 60 s")
            time.sleep(0.2)
        connect(stack, sim, ACCOUNT, USER, REP)
        wait_quiet(db, sim)
        base = dict(sim.stats()["quotaUnits"].get(REP, {}))
        from_contacts, _ = rep_day(stack, sim, contacts, args.spacing)
        wait_quiet(db, sim)
        time.sleep(3)  # the last notifications' passes
        wait_quiet(db, sim)
        stats = sim.stats()
        spent = {m: u - base.get(m, 0) for m, u in stats["quotaUnits"].get(REP, {}).items() if u - base.get(m, 0)}
        prices = MODELS[model].units
        sends = spent.pop("messages.send", 0)
        watch = prices["watch"] / WATCH_RENEWAL_DAYS
        units = sum(spent.values()) + watch
        legacy = sum(u // prices.get(m, 1) * LEGACY_UNITS.get(m, 1) for m, u in spent.items()) \
            + LEGACY_UNITS["watch"] / WATCH_RENEWAL_DAYS
        docs = (snap.to_dict() or {} for snap in db.collection_group("messages").stream())
        logged = {d.get("gmailMessageId") for d in docs}
        contacts_logged = sum(1 for g in from_contacts if g in logged)
        refused = stats["refused"].get(REP, {})
        gets = spent.get("messages.get", 0) // prices["messages.get"]
        print("| method | units |\n|---|---|")
        for m, u in sorted(spent.items()):
            print(f"| {m} | {u} |")
        print(f"| watch renewal (every {WATCH_RENEWAL_DAYS} days, from the model) | {watch:.0f} |")
        print(f"| messages.send (CRM sends and the rep's, not counted) | {sends} |")
        print(f"refused: {refused or 0}; reps under the 80,000,000-unit daily threshold: {80_000_000 / units:,.0f}")
        verdict = "within" if units <= GOAL else "above"
        print(f"quota: {units:,.0f} units per rep-day ({model} model, {verdict} the goal of {GOAL:,}; legacy prices "
              f"{legacy:,.0f}; {gets} messages.get; contacts' mail logged {contacts_logged}/{len(from_contacts)})")
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
