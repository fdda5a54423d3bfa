"""The simulator serves at least 500 messages.get per second (the benchmark script, shortened)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_serves_at_least_500_messages_get_per_second() -> None:
    out = subprocess.run(
        [sys.executable, "scripts/bench_simulator.py", "--threads", "4", "--seconds", "2", "--messages", "50",
         "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["errors"] == 0
    assert result["messagesGetPerSecond"] >= 500, result
