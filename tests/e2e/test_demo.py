"""`make demo` works: the narrated end-to-end demo runs in a subprocess with its own stack and succeeds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from devstack.demo import STEPS

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


def test_make_demo_runs_every_step_and_ends_with_success() -> None:
    proc = subprocess.run([sys.executable, "-m", "devstack.demo"], cwd=REPO, capture_output=True, text=True,
                          timeout=180)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
    assert f"[{STEPS}/{STEPS}]" in proc.stdout and f"[{STEPS + 1}/" not in proc.stdout
    assert "DEMO SUCCEEDED" in proc.stdout.splitlines()[-1]
    # R25: Carl's reply reached Rita (To) and her colleague Cora (Cc): one message listing both mailboxes
    replies = [line for line in proc.stdout.splitlines() if "← from contact" in line]
    assert replies and all("mailboxes Rita + Cora" in r or "mailboxes Cora + Rita" in r for r in replies), replies
    assert "Carl's reply once, in both mailboxes" in proc.stdout


def test_make_demo_fails_loudly_with_the_reason_and_a_non_zero_exit() -> None:
    """Without the Google Cloud SDK on PATH the stack cannot start: the demo says so and exits 1."""
    proc = subprocess.run([sys.executable, "-m", "devstack.demo"], cwd=REPO, capture_output=True, text=True,
                          timeout=60, env={"PATH": "/nonexistent", "HOME": str(REPO)})
    assert proc.returncode == 1
    assert "DEMO FAILED at step 1" in proc.stderr
    assert "gcloud" in proc.stderr
    assert "DEMO SUCCEEDED" not in proc.stdout
