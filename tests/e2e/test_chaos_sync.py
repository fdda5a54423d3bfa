"""Chaos: 1,000+ messages over several mailboxes while everything that can go wrong does.

Gmail (the simulator) fails 10% of calls with 429/500/503; its watch
notifications are duplicated (30%), reordered (20%) and dropped (10%); the
gmail_push function is SIGKILLed mid-batch several times and restarted. The
scheduled sweep (here every few seconds, SYNC_SWEEP_SECONDS=2) is what
production relies on when the last notifications of a burst are lost. The end
state must be exact: every expected message present exactly once, in the
right conversation, and nothing else.
"""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.e2e.sync_steps import all_message_docs, connect_rep, doc_id_of, mail, push, seed_contact, synced_past

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MAILBOXES = 4
PER_MAILBOX = 260  # 1,040 messages
CONTACTS = 30
KILLS = 3
FAULTS = {
    "seed": 20261123,
    "methods": {"*": {"errorRate": 0.1, "codes": [429, 500, 503]}},
    "notifications": {"dropRate": 0.1, "duplicateRate": 0.3, "reorderRate": 0.2},
}
PUSH_ENV = {"SYNC_STALE_SECONDS": "2", "SYNC_SWEEP_SECONDS": "2"}  # every mailbox due two seconds after its sync


def test_chaos_every_message_exactly_once(clean: Any, firestore_db: Any, sim_client: Any, stack: Any,
                                          function_env: Any) -> None:
    db = firestore_db
    rng = random.Random(7)
    function_env("gmail_push", **PUSH_ENV)
    contacts = [f"client{i}@client.test" for i in range(CONTACTS)]
    for i, address in enumerate(contacts):
        seed_contact(db, "acme", f"c{i}", address)
    reps = [f"rep{i}@gmail.test" for i in range(MAILBOXES)]
    for i, rep in enumerate(reps):
        connect_rep(stack, sim_client, db, "acme", f"u{i}", rep, user_email=f"u{i}@acme.test")
    sim_client.set_faults(FAULTS)

    expected: dict[str, str] = {}  # message document id -> conversation (contact id)
    unexpected: set[str] = set()
    lock = threading.Lock()

    def deliver_all(rep: str) -> None:
        local = random.Random(rep)
        for n in range(PER_MAILBOX):
            k = local.randrange(CONTACTS)
            kind = local.random()
            if kind < 0.1:  # unknown sender: must not sync
                raw = mail(f"spam{n}@nowhere.test", rep, f"offer {n}")
                got = sim_client.deliver(rep, raw)
                with lock:
                    unexpected.add(doc_id_of(raw, got["id"]))
                continue
            if kind < 0.25:  # the rep writes from Gmail
                raw = mail(rep, contacts[k], f"{rep} to c{k} #{n}")
                got = sim_client.send_as_user(rep, raw)
            else:
                raw = mail(contacts[k], rep, f"c{k} to {rep} #{n}")
                got = sim_client.deliver(rep, raw)
            with lock:
                expected[doc_id_of(raw, got["id"])] = f"c{k}"
            time.sleep(local.uniform(0, 0.03))

    kills_mid_sync: list[int] = []

    def syncing_now() -> int:
        """Mailboxes whose sync lease is held right now (a pass is running)."""
        now = datetime.now(UTC)
        return sum(1 for s in db.collection("sync_mailboxes").stream()
                   if (s.to_dict() or {}).get("leaseOwner") and s.to_dict()["leaseUntil"] > now)

    def killer(stop: threading.Event) -> None:
        for _ in range(KILLS):
            if stop.wait(rng.uniform(2.0, 3.5)):
                return
            # aim at a pass in flight (passes are short now: a few conditional writes each), for a few seconds
            aim = time.monotonic() + 4
            while not syncing_now() and time.monotonic() < aim:
                time.sleep(0.02)
            kills_mid_sync.append(syncing_now())
            stack.kill_function("gmail_push")
            stack.restart_function("gmail_push", PUSH_ENV)

    stop = threading.Event()
    kill_thread = threading.Thread(target=killer, args=(stop,), daemon=True)
    kill_thread.start()
    with ThreadPoolExecutor(MAILBOXES) as pool:
        list(pool.map(deliver_all, reps))
    kill_thread.join()

    targets = {rep: int(sim_client.mailbox(rep)["historyId"]) for rep in reps}
    deadline = time.monotonic() + 90
    while not all(synced_past(db, rep, h) for rep, h in targets.items()):
        assert time.monotonic() < deadline, "mailboxes not caught up within 90 s"
        push(stack, {"sweep": True})  # Cloud Scheduler's job, every minute in production
        time.sleep(3)

    seen: dict[str, list[str]] = {}
    for path, _doc in all_message_docs(db):
        parts = path.split("/")  # accounts/acme/conversations/<conv>/messages/<id>
        seen.setdefault(parts[5], []).append(parts[3])
    duplicated = {m: convs for m, convs in seen.items() if len(convs) > 1}
    missing = set(expected) - set(seen)
    extra = set(seen) - set(expected)
    wrong = {m: (seen[m], c) for m, c in expected.items() if m in seen and seen[m] != [c]}
    assert len(expected) + len(unexpected) == MAILBOXES * PER_MAILBOX >= 1000
    assert len(kills_mid_sync) == KILLS and sum(1 for n in kills_mid_sync if n) >= 2, kills_mid_sync
    assert not duplicated, f"{len(duplicated)} messages stored twice"
    assert not missing, f"{len(missing)} of {len(expected)} messages missing"
    assert not extra, f"{len(extra)} unexpected messages stored ({len(extra & unexpected)} from unknown senders)"
    assert not wrong, f"{len(wrong)} messages in the wrong conversation"
