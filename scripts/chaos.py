"""Chaos at scale (`make chaos`): 10,000 messages over 100 mailboxes, two reps per account, while everything goes wrong.

The fault mix of tests/e2e/test_chaos_sync.py (which stays in `make test` at
1,040 messages): Gmail (the simulator) fails 10% of calls with 429/500/503;
its watch notifications are duplicated (30%), reordered (20%) and dropped
(10%); gmail_push is SIGKILLed while passes are in flight, several times,
and restarted. The sweep (here every few seconds) is what production relies
on when the last notifications of a burst are lost. The end state must be
exact: every expected message exactly once, in the right conversation, and
nothing from strangers.

Every account is a team of two connected reps, each with their own Gmail
(0.3): a third of the mail reaches both (To one, Cc the other, delivered to
each mailbox; or a rep writing from Gmail with the colleague in Cc, which
Gmail delivers to the colleague). So the check is per account and RFC 822
Message-ID (R25): one document each, whose `mailboxIds` lists every mailbox it
reached. The mix and the tally are tests/e2e/chaos_steps.py, shared with the
e2e test.

Prints one line: `chaos: M messages (C mailbox copies, T to both reps) over N
mailboxes in A accounts of two reps, K kills (P mid-sync), lost L, duplicated
D, unexpected U, wrong conversation W, mailboxes unlisted X, caught up in S
s`; exit status 0 only when L = D = U = W = X = 0.

Usage: .venv/bin/python scripts/chaos.py [--mailboxes 100] [--messages 10000] [--kills 6]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from devstack.stack import Stack, StackSettings  # noqa: E402

CONTACTS = 10  # per account: 50 accounts of two reps, 500 contacts
PER_ACCOUNT = 2  # reps i and i ^ 1 are colleagues
FAULTS = {
    "seed": 20261123,
    "methods": {"*": {"errorRate": 0.1, "codes": [429, 500, 503]}},
    "notifications": {"dropRate": 0.1, "duplicateRate": 0.3, "reorderRate": 0.2},
}
PUSH_ENV = {"SYNC_STALE_SECONDS": "5", "SYNC_SWEEP_SECONDS": "5"}  # every mailbox due soon after its sync
SWEEP_EVERY = 3.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mailboxes", type=int, default=100, help="an even number: two reps per account")
    ap.add_argument("--messages", type=int, default=10000)
    ap.add_argument("--kills", type=int, default=6)
    ap.add_argument("--senders", type=int, default=8, help="threads delivering mail")
    ap.add_argument("--catch-up-seconds", type=float, default=900)
    args = ap.parse_args()
    if args.mailboxes < PER_ACCOUNT or args.mailboxes % PER_ACCOUNT:
        ap.error(f"--mailboxes must be a positive multiple of {PER_ACCOUNT} (the reps of each account)")
    stack = Stack(StackSettings(functions=("oauth", "gmail_push"), function_env=dict(PUSH_ENV)))
    with stack:
        os.environ.update(stack.env_for_clients())
        return run(stack, args)


def run(stack: Stack, args: Any) -> int:
    from google.cloud import firestore

    from simulator.client import SimClient
    from tests.e2e.chaos_steps import Ledger, send_one, tally
    from tests.e2e.oauth_steps import connect, crm_for, seed_user
    from tests.e2e.sync_steps import seed_contact, synced_past

    db = firestore.Client(project=stack.project_id)
    sim = SimClient(stack.simulator_url)
    reps = [f"rep{i:04d}@gmail.test" for i in range(args.mailboxes)]
    accounts = [f"acct{i // PER_ACCOUNT:03d}" for i in range(args.mailboxes)]
    contacts = {a: [f"client{k}.{a}@client.test" for k in range(CONTACTS)] for a in sorted(set(accounts))}
    t0 = time.monotonic()
    with ThreadPoolExecutor(8) as pool:  # each waits for the contacts_index trigger (R11b)
        list(pool.map(lambda ak: seed_contact(db, ak[0], f"c{ak[1]}", contacts[ak[0]][ak[1]]),
                      [(a, k) for a in contacts for k in range(CONTACTS)]))
    print(f"chaos: seeded {len(contacts) * CONTACTS} contacts in {time.monotonic() - t0:.0f} s", flush=True)
    crm = crm_for(stack)

    def connect_one(i: int) -> None:
        seed_user(db, accounts[i], f"u{i}", f"u{i}@{accounts[i]}.example")
        assert connect(crm, sim, accounts[i], f"u{i}", reps[i]) == {"status": "connected"}

    t0 = time.monotonic()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(connect_one, range(args.mailboxes)))
    print(f"chaos: connected {args.mailboxes} mailboxes in {time.monotonic() - t0:.0f} s", flush=True)
    sim.set_faults(FAULTS)

    ledger = Ledger()
    per_sender = args.messages // args.senders

    def deliver_all(sender: int) -> None:
        rng = random.Random(sender)
        for n in range(per_sender):
            i = rng.randrange(args.mailboxes)
            send_one(sim, ledger, rng, accounts[i], reps[i], reps[i ^ 1], contacts[accounts[i]], f"{sender}.{n}")

    def syncing_now() -> int:
        now = datetime.now(UTC)
        return sum(1 for s in db.collection("sync_mailboxes").select(["leaseOwner", "leaseUntil"]).stream()
                   if (s.to_dict() or {}).get("leaseOwner") and s.to_dict()["leaseUntil"] > now)

    kills: list[int] = []

    def killer(stop: threading.Event) -> None:
        rng = random.Random(7)
        for _ in range(args.kills):
            if stop.wait(rng.uniform(5.0, 12.0)):
                return
            aim = time.monotonic() + 5
            while not syncing_now() and time.monotonic() < aim:
                time.sleep(0.05)
            kills.append(syncing_now())
            stack.kill_function("gmail_push")
            stack.restart_function("gmail_push", PUSH_ENV)

    stop = threading.Event()
    kt = threading.Thread(target=killer, args=(stop,), daemon=True)
    t1 = time.monotonic()
    kt.start()
    with ThreadPoolExecutor(args.senders) as pool:
        list(pool.map(deliver_all, range(args.senders)))
    print(f"chaos: delivered {ledger.messages} messages ({ledger.copies} mailbox copies) in "
          f"{time.monotonic() - t1:.0f} s", flush=True)
    kt.join()

    targets = {rep: int(sim.mailbox(rep)["historyId"]) for rep in reps}
    deadline = time.monotonic() + args.catch_up_seconds
    caught = False
    while time.monotonic() < deadline:
        if all(synced_past(db, rep, h) for rep, h in targets.items()):
            caught = True
            break
        stack.pubsub.publish("sync-control", b'{"sweep": true}')  # Cloud Scheduler's job
        time.sleep(SWEEP_EVERY)
    seconds = time.monotonic() - t1

    found = tally(db, ledger)
    print(f"chaos: {ledger.messages} messages ({ledger.copies} mailbox copies, {ledger.shared} to both reps) over "
          f"{args.mailboxes} mailboxes in {len(contacts)} accounts of two reps, {len(kills)} kills "
          f"({sum(1 for k in kills if k)} mid-sync), {found}, caught up {'in' if caught else 'NOT within'} "
          f"{seconds:.0f} s")
    return 0 if caught and found.clean() else 1

if __name__ == "__main__":
    sys.exit(main())
