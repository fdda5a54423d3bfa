"""Chaos: 1,000+ messages over several reps' mailboxes in one account while everything that can go wrong does.

Gmail (the simulator) fails 10% of calls with 429/500/503; its watch
notifications are duplicated (30%), reordered (20%) and dropped (10%); the
gmail_push function is SIGKILLed mid-batch several times and restarted. The
scheduled sweep (here every few seconds, SYNC_SWEEP_SECONDS=2) is what
production relies on when the last notifications of a burst are lost. The end
state must be exact: every expected message present exactly once, in the
right conversation, and nothing else. The reps are a team (0.3): a third of
the mail reaches two of them (To one, Cc another; or a rep writing from Gmail
with a colleague in Cc), one copy per mailbox, and must still be one document
per Message-ID whose `mailboxIds` lists both (R25). The mix and the tally are
tests/e2e/chaos_steps.py, shared with `make chaos`.
"""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.gmail.pacing import limits_for
from tests.e2e.chaos_steps import Ledger, send_one, tally
from tests.e2e.sync_steps import connect_rep, push, seed_contact, synced_past

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MAILBOXES = 4
PER_MAILBOX = 160  # 640 messages (about 830 mailbox copies)
# Gmail's 2026 per-user limit paces a backlog (shared/gmail/pacing.py: 90 units/s, 20 a messages.get), so catching
# up takes at least copies x cost / pace seconds; the deadline allows that floor and the faults.
_PACE = limits_for("2026")
GET_FLOOR_SECONDS = PER_MAILBOX * 1.3 * _PACE.cost("messages.get") / _PACE.pace
CATCH_UP_SECONDS = 60 + 2 * GET_FLOOR_SECONDS
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

    ledger = Ledger()

    def deliver_all(rep: str) -> None:
        local = random.Random(rep)
        colleagues = [r for r in reps if r != rep]
        for n in range(PER_MAILBOX):
            send_one(sim_client, ledger, local, "acme", rep, local.choice(colleagues), contacts, f"{rep[:4]}.{n}")
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
    deadline = time.monotonic() + CATCH_UP_SECONDS
    while not all(synced_past(db, rep, h) for rep, h in targets.items()):
        assert time.monotonic() < deadline, f"mailboxes not caught up within {CATCH_UP_SECONDS:.0f} s"
        push(stack, {"sweep": True})  # Cloud Scheduler's job, every minute in production
        time.sleep(3)

    found = tally(db, ledger)
    # 640 messages (1,040 before Gmail's 2026 pace made catching up 4x slower; make chaos runs 10,000)
    assert ledger.messages == MAILBOXES * PER_MAILBOX >= 600 and ledger.shared >= ledger.messages // 4
    assert len(kills_mid_sync) == KILLS and sum(1 for n in kills_mid_sync if n) >= 2, kills_mid_sync
    assert found.clean(), f"{found} (of {len(ledger.expected)} expected, {len(ledger.strangers)} from strangers)"
