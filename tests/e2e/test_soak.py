"""A small time-compressed soak in `make test` (the big one is `make soak MAILBOXES=N LIFETIMES=K`).

Ten mailboxes, watches that last ten seconds, two lifetimes of mail and
ticks (scripts/soak.py, run against this session's stack with its oauth,
gmail_push and quota_reset restarted on the soak's short ticks): no watch
lapses, nothing lost, nothing twice, and the sweep reads only what is due.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SOAK = Path(__file__).resolve().parents[2] / "scripts" / "soak.py"


def load_soak() -> Any:
    spec = importlib.util.spec_from_file_location("soak", SOAK)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["soak"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_a_small_soak_keeps_every_watch_and_every_message(clean: Any, stack: Any, shared_env: Any,
                                                          function_env: Any) -> None:
    soak = load_soak()
    # a wider renewal window than production's 2/7 keeps this short run clear of a loaded machine's stalls
    settings = soak.Settings(mailboxes=10, lifetimes=2, lifetime_seconds=10, mail_per_second=2, shards=2,
                             renew_fraction=0.5, drain_seconds=60)
    for fn in soak.SOAK_FUNCTIONS:
        function_env(fn, **settings.function_env())
    out = soak.run_soak(stack, settings, log=lambda *_: None)
    line = out.last_line()
    assert line.startswith("soak: 10 mailboxes, 2 watch lifetimes, expired 0, lost 0, duplicated 0, reads per sweep ")
    assert out.caught_up and out.unexpected == 0 and out.expected > 10
    assert out.watch_renewals >= 10  # each watch was renewed at least once (two lifetimes)
    assert out.rounds_to_message_written_max <= 6
    # the sweep's reads follow the due mailboxes (plus one per empty shard), never all ten
    assert out.sweep_reads <= out.sweep_due + settings.shards
    # `make soak`'s cost page prices the run with docs/SCALE.md's model
    page = soak.cost_page(asdict(out))
    assert page[0].startswith(f"cost: this run ({out.quota_model} model): Gmail ") and "| **total** |" in page[-3]
