"""Chaos at scale (`make chaos`): 10,000 messages over 100 mailboxes while everything goes wrong.

The fault mix of tests/e2e/test_chaos_sync.py (which stays in `make test` at
1,040 messages): Gmail (the simulator) fails 10% of calls with 429/500/503;
its watch notifications are duplicated (30%), reordered (20%) and dropped
(10%); gmail_push is SIGKILLed while passes are in flight, several times,
and restarted. The sweep (here every few seconds) is what production relies
on when the last notifications of a burst are lost. The end state must be
exact: every expected message exactly once, in the right conversation, and
nothing from strangers.

Prints one line: `chaos: M messages over N mailboxes, K kills (P mid-sync),
lost L, duplicated D, unexpected U, wrong conversation W, caught up in S s`;
exit status 0 only when L = D = U = W = 0.

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

CONTACTS = 30
PER_ACCOUNT = 20
FAULTS = {
    "seed": 20261123,
    "methods": {"*": {"errorRate": 0.1, "codes": [429, 500, 503]}},
    "notifications": {"dropRate": 0.1, "duplicateRate": 0.3, "reorderRate": 0.2},
}
PUSH_ENV = {"SYNC_STALE_SECONDS": "5", "SYNC_SWEEP_SECONDS": "5"}  # every mailbox due soon after its sync
SWEEP_EVERY = 3.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mailboxes", type=int, default=100)
    ap.add_argument("--messages", type=int, default=10000)
    ap.add_argument("--kills", type=int, default=6)
    ap.add_argument("--senders", type=int, default=8, help="threads delivering mail")
    ap.add_argument("--catch-up-seconds", type=float, default=900)
    args = ap.parse_args()
    stack = Stack(StackSettings(functions=("oauth", "gmail_push"), function_env=dict(PUSH_ENV)))
    with stack:
        os.environ.update(stack.env_for_clients())
        return run(stack, args)


def run(stack: Stack, args: Any) -> int:
    from google.cloud import firestore

    from simulator.client import SimClient
    from tests.e2e.oauth_steps import connect, crm_for, seed_user
    from tests.e2e.sync_steps import doc_id_of, mail, seed_contact, synced_past

    db = firestore.Client(project=stack.project_id)
    sim = SimClient(stack.simulator_url)
    reps = [f"rep{i:04d}@gmail.test" for i in range(args.mailboxes)]
    accounts = [f"acct{i // PER_ACCOUNT:03d}" for i in range(args.mailboxes)]
    contacts = {a: [f"client{k}.{a}@client.test" for k in range(CONTACTS)] for a in set(accounts)}
    for a, addresses in contacts.items():
        for k, address in enumerate(addresses):
            seed_contact(db, a, f"c{k}", address)
    crm = crm_for(stack)

    def connect_one(i: int) -> None:
        seed_user(db, accounts[i], f"u{i}", f"u{i}@{accounts[i]}.example")
        assert connect(crm, sim, accounts[i], f"u{i}", reps[i]) == {"status": "connected"}

    t0 = time.monotonic()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(connect_one, range(args.mailboxes)))
    print(f"chaos: connected {args.mailboxes} mailboxes in {time.monotonic() - t0:.0f} s", flush=True)
    sim.set_faults(FAULTS)

    expected: dict[str, tuple[str, str]] = {}  # message document id -> (account, conversation)
    strangers: set[str] = set()
    lock = threading.Lock()
    per_sender = args.messages // args.senders

    def deliver_all(sender: int) -> None:
        rng = random.Random(sender)
        for n in range(per_sender):
            i = rng.randrange(args.mailboxes)
            rep, acct = reps[i], accounts[i]
            k = rng.randrange(CONTACTS)
            kind = rng.random()
            if kind < 0.1:
                raw = mail(f"spam{sender}.{n}@nowhere.test", rep, f"offer {n}")
                got = sim.deliver(rep, raw)
                with lock:
                    strangers.add(doc_id_of(raw, got["id"]))
                continue
            if kind < 0.25:
                raw = mail(rep, contacts[acct][k], f"{rep} to c{k} #{sender}.{n}")
                got = sim.send_as_user(rep, raw)
            else:
                raw = mail(contacts[acct][k], rep, f"c{k} to {rep} #{sender}.{n}")
                got = sim.deliver(rep, raw)
            with lock:
                expected[doc_id_of(raw, got["id"])] = (acct, f"c{k}")

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
    print(f"chaos: delivered {len(expected) + len(strangers)} messages in {time.monotonic() - t1:.0f} s", flush=True)
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

    seen: dict[str, list[tuple[str, str]]] = {}
    for snap in db.collection_group("messages").select(["gmailMessageId"]).stream():
        parts = snap.reference.path.split("/")  # accounts/<a>/conversations/<c>/messages/<id>
        seen.setdefault(parts[5], []).append((parts[1], parts[3]))
    duplicated = sum(1 for v in seen.values() if len(v) > 1)
    lost = len(set(expected) - set(seen))
    unexpected = len(set(seen) - set(expected))
    wrong = sum(1 for m, where in expected.items() if m in seen and seen[m] != [where])
    total = len(expected) + len(strangers)
    print(f"chaos: {total} messages over {args.mailboxes} mailboxes, {len(kills)} kills "
          f"({sum(1 for k in kills if k)} mid-sync), lost {lost}, duplicated {duplicated}, unexpected {unexpected}, "
          f"wrong conversation {wrong}, caught up {'in' if caught else 'NOT within'} {seconds:.0f} s")
    return 0 if caught and not (lost or duplicated or unexpected or wrong) else 1


if __name__ == "__main__":
    sys.exit(main())
