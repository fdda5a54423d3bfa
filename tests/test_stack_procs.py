"""Process handling of the local stack: parts start in their own group, stop for good, fail clearly."""

from __future__ import annotations

import base64
import json
import os
import socket
import sys
import time

import pytest

from devstack.prereqs import parse_java_major
from devstack.procs import ManagedProcess, StartupError, group_members, tcp_ready
from devstack.simconfig import StackSecrets, simulator_config, write_private_json
from devstack.stack import Stack, StackSettings

# A parent that starts a long-lived child and then exits, as `gcloud` leaves its Java server behind.
ORPHANING_PARENT = (
    "import subprocess, sys, time;"
    "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
    "print('child started', flush=True); time.sleep(0.2)"
)
# A child that ignores SIGTERM, so only SIGKILL ends it.
STUBBORN_PARENT = (
    "import subprocess, sys, time;"
    "subprocess.Popen([sys.executable, '-c', "
    "'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print(1, flush=True); time.sleep(60)']);"
    "time.sleep(60)"
)


def _wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_stop_ends_children_that_outlive_their_parent(tmp_path):
    proc = ManagedProcess("orphaner", [sys.executable, "-c", ORPHANING_PARENT], tmp_path / "o.log").start()
    assert _wait_for(lambda: proc.exited() is not None)
    assert group_members(proc.pgid), "the orphaned child should still be running in the group"

    proc.stop(grace=2.0)

    assert group_members(proc.pgid) == []


def test_stop_kills_a_group_that_ignores_sigterm_after_the_grace_period(tmp_path):
    proc = ManagedProcess("stubborn", [sys.executable, "-c", STUBBORN_PARENT], tmp_path / "s.log").start()
    assert _wait_for(lambda: len(group_members(proc.pgid)) == 2)
    time.sleep(0.3)  # let the child install its SIGTERM handler

    started = time.monotonic()
    proc.stop(grace=0.5)

    assert group_members(proc.pgid) == []
    assert time.monotonic() - started < 5


def test_a_part_that_exits_early_is_reported_with_its_log_tail(tmp_path):
    proc = ManagedProcess(
        "Widget server", [sys.executable, "-c", "print('boom: no widget'); raise SystemExit(3)"], tmp_path / "w.log"
    ).start()

    with pytest.raises(StartupError) as info:
        proc.wait_ready(lambda: False, timeout=10)

    assert info.value.part == "Widget server"
    assert "exited early with code 3" in str(info.value)
    assert "boom: no widget" in str(info.value)


def test_a_missing_executable_is_reported_by_name(tmp_path):
    with pytest.raises(StartupError) as info:
        ManagedProcess("Gizmo", ["no-such-binary-xyz"], tmp_path / "g.log").start()

    assert info.value.part == "Gizmo"
    assert "no-such-binary-xyz" in str(info.value)


def test_a_part_not_ready_before_its_deadline_is_named(tmp_path):
    proc = ManagedProcess("Sleeper", [sys.executable, "-c", "import time; time.sleep(30)"], tmp_path / "z.log")
    proc.start()
    try:
        with pytest.raises(StartupError, match=r"Sleeper: not ready after 0.5 s \(port 9\)"):
            proc.wait_ready(tcp_ready("127.0.0.1", 9), timeout=0.5, what="port 9")
    finally:
        proc.stop()


def test_a_fixed_port_already_taken_is_refused_before_anything_starts(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        stack = Stack(StackSettings(run_dir=tmp_path, firestore_port=port))

        with pytest.raises(StartupError) as info:
            stack.start()

    assert info.value.part == "Firestore emulator"
    assert f"port {port} is already in use" in str(info.value)
    assert stack.processes == {}


@pytest.mark.parametrize(
    ("banner", "major"),
    [('openjdk version "17.0.15" 2025-04-15', 17), ('java version "1.8.0_392"', 8), ('openjdk version "21" x', 21)],
)
def test_java_major_version_is_read_from_the_version_banner(banner, major):
    assert parse_java_major(banner) == major


def test_every_stack_gets_fresh_secrets_of_the_documented_shape():
    a, b = StackSecrets.generate(), StackSecrets.generate()

    assert a != b
    assert len(base64.b64decode(a.token_encryption_key)) == 32
    assert len(base64.b64decode(a.oauth_state_key)) == 32
    config = simulator_config("p", "127.0.0.1:1", "http://127.0.0.1:2/callback", a)
    assert json.loads(config["secrets"]["oauth-client"][-1]) == {
        "clientId": a.client_id, "clientSecret": a.client_secret
    }
    assert config["oauthClients"][0]["redirectUris"] == ["http://127.0.0.1:2/callback"]
    assert set(config["secrets"]) == {
        "oauth-client", "token-encryption-key", "oauth-state-key", "crm-api-key", "inbound-api-key"
    }


def test_files_holding_secrets_are_readable_by_the_owner_only(tmp_path):
    path = tmp_path / "sim.json"

    write_private_json(path, {"k": "v"})

    assert os.stat(path).st_mode & 0o077 == 0


def test_r24_a_stack_with_oauth_serves_oauth_browser_too() -> None:
    assert StackSettings(functions=("oauth",)).functions == ("oauth", "oauth_browser")


def test_r11b_a_stack_with_gmail_push_keeps_the_contact_index_too() -> None:
    assert StackSettings(functions=("gmail_push",)).functions == ("gmail_push", "contacts_index")


def test_a_stack_without_those_functions_gets_no_companions() -> None:
    assert StackSettings(functions=("send_email",)).functions == ("send_email",)
