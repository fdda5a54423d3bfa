"""`python -m devstack up` (what `make up` runs): up within 60 s, a complete endpoints file,
and nothing left behind after Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devstack.functions import FUNCTION_NAMES, REPO_ROOT
from devstack.procs import group_members, http_ready, tcp_ready

UP_DEADLINE_SECONDS = 60


def _children_of(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rfind(")") + 2:].split()[1]) == pid:
                kids.append(int(entry))
    return kids


def _accepts(hostport: str) -> bool:
    host, port = hostport.rsplit(":", 1)
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, int(port))) == 0


def _up(run_dir: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "devstack", "up", "--run-dir", str(run_dir), "--firestore-port", "0",
         "--pubsub-port", "0", "--storage-port", "0", "--simulator-port", "0", "--functions-port", "0",
         "--console-port", "0", *extra],
        cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=open(run_dir / "up.out", "wb"),
        stderr=subprocess.STDOUT, start_new_session=True,
    )


@pytest.mark.e2e
def test_up_is_ready_within_60s_writes_endpoints_and_ctrl_c_leaves_no_process(tmp_path):
    proc = _up(tmp_path)
    endpoints_file = tmp_path / "endpoints.json"
    groups: set[int] = set()
    try:
        started = time.monotonic()
        while not endpoints_file.exists():
            assert proc.poll() is None, (tmp_path / "up.out").read_text()
            assert time.monotonic() - started < UP_DEADLINE_SECONDS, "stack not up within 60 s"
            time.sleep(0.1)
        elapsed = time.monotonic() - started
        endpoints = json.loads(endpoints_file.read_text())
        groups = {os.getpgid(pid) for pid in _children_of(proc.pid)}

        assert set(endpoints) == {"firestore", "pubsub", "google", "storage", "functions", "projectId", "crmApiKey",
                                  "inboundKey", "oauthClient", "console"}
        assert set(endpoints["functions"]) == set(FUNCTION_NAMES)
        assert endpoints["projectId"] and endpoints["crmApiKey"] and endpoints["inboundKey"]
        assert endpoints["oauthClient"]["clientId"] and endpoints["oauthClient"]["clientSecret"]
        assert http_ready(f"http://{endpoints['firestore']}/", 200)()
        assert http_ready(f"http://{endpoints['pubsub']}/", 200)()
        assert http_ready(f"{endpoints['google']}/sim/health", 200)()
        assert http_ready(f"{endpoints['storage']}/storage/v1/b", 200)()
        for url in endpoints["functions"].values():
            host, port = url.removeprefix("http://").rsplit(":", 1)
            assert tcp_ready(host, int(port))()
        assert http_ready(f"{endpoints['console']}/health", 200)()
        console_line = f"Developer console   {endpoints['console']}"
        deadline = time.monotonic() + 10  # printed right after endpoints.json is written
        while console_line not in (tmp_path / "up.out").read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert console_line in (tmp_path / "up.out").read_text()
        assert len(groups) == 6 + len(FUNCTION_NAMES)  # 3 emulators, simulator, triggers, console, functions
        print(f"stack up in {elapsed:.1f} s")

        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0

        assert [pgid for pgid in groups if group_members(pgid)] == []
        hostports = [endpoints["firestore"], endpoints["pubsub"], endpoints["google"].removeprefix("http://"),
                     endpoints["storage"].removeprefix("http://")]
        hostports += [u.removeprefix("http://") for u in [*endpoints["functions"].values(), endpoints["console"]]]
        assert [hp for hp in hostports if _accepts(hp)] == []
        assert not endpoints_file.exists(), "a stale endpoints file would point at dead ports"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
        for pgid in groups:
            if group_members(pgid):
                os.killpg(pgid, signal.SIGKILL)


def test_up_refuses_a_taken_port_and_names_the_part(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]

        proc = _up(tmp_path, "--pubsub-port", str(port))
        code = proc.wait(timeout=60)

    output = (tmp_path / "up.out").read_text()
    assert code == 1
    assert f"Pub/Sub emulator: port {port} is already in use" in output

