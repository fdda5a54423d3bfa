"""Child processes of the local stack: start, wait until ready, stop for good.

Every part runs in its own process group (`start_new_session=True`) because
the parts fork: `gcloud emulators … start` launches a Java server that
outlives the `gcloud` wrapper, and functions-framework runs a gunicorn worker.
Stopping a part therefore signals the whole group, SIGTERM first and SIGKILL
after a grace period, and then checks that no member of the group is left.

Readiness is polled (TCP connect or HTTP GET) against a deadline; when a part
does not come up, `StartupError` names the part and the cause, with the tail
of its log, so `make up` and a failing test say what went wrong in plain words.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

POLL_INTERVAL = 0.1


class StartupError(RuntimeError):
    """A part of the stack did not come up; the message says which and why."""

    def __init__(self, part: str, cause: str, log_tail: str = "") -> None:
        self.part = part
        self.cause = cause
        self.log_tail = log_tail
        text = f"{part}: {cause}"
        if log_tail:
            text += f"\n--- last lines of the {part} log ---\n{log_tail}"
        super().__init__(text)


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel just handed out (bind to 0); tests never use fixed ports."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            return exc.errno in (errno.EADDRINUSE, errno.EACCES)
    return False


def tcp_ready(host: str, port: int) -> Callable[[], bool]:
    def probe() -> bool:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            return False

    return probe


def http_ready(url: str, expect_status: int | None = None) -> Callable[[], bool]:
    """Ready when `url` answers (with `expect_status` if given, else any status below 500)."""

    def probe() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1.0) as resp:
                status = int(resp.status)
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (OSError, ValueError):
            return False
        return status == expect_status if expect_status is not None else status < 500

    return probe


@dataclass
class ManagedProcess:
    """One part of the stack: a command in its own process group, logging to a file."""

    name: str
    argv: Sequence[str]
    log_path: Path
    env: Mapping[str, str] | None = None
    cwd: Path | None = None
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _log: IO[bytes] | None = field(default=None, repr=False)

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # closed in stop()
        try:
            self.popen = subprocess.Popen(
                list(self.argv),
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                env=dict(self.env) if self.env is not None else None,
                cwd=str(self.cwd) if self.cwd else None,
                start_new_session=True,
            )
        except FileNotFoundError as exc:
            self._log.close()
            raise StartupError(self.name, f"cannot run {self.argv[0]!r}: {exc.strerror}") from None
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None, f"{self.name} was never started"
        return self.popen.pid

    @property
    def pgid(self) -> int:
        # start_new_session makes the child a session and group leader: pgid == pid.
        return self.pid

    def exited(self) -> int | None:
        return None if self.popen is None else self.popen.poll()

    def log_tail(self, lines: int = 25) -> str:
        try:
            data = self.log_path.read_bytes()[-16384:]
        except OSError:
            return ""
        return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])

    def wait_ready(self, probe: Callable[[], bool], timeout: float, what: str = "") -> None:
        """Poll `probe` until it succeeds; fail early if the process dies."""
        deadline = time.monotonic() + timeout
        while True:
            code = self.exited()
            if code is not None:
                raise StartupError(self.name, f"process exited early with code {code}", self.log_tail())
            if probe():
                return
            if time.monotonic() >= deadline:
                raise StartupError(
                    self.name, f"not ready after {timeout:g} s{' (' + what + ')' if what else ''}",
                    self.log_tail(),
                )
            time.sleep(POLL_INTERVAL)

    def terminate(self) -> None:
        """Send SIGTERM to the group without waiting (stop() several parts in parallel)."""
        if self._owns_group():
            _signal_group(self.pgid, signal.SIGTERM)

    def _owns_group(self) -> bool:
        """Whether the group id still names our processes, so signalling it is safe.

        An unreaped leader keeps its pid reserved, and the kernel never hands out a
        pid that is still a live group's id; once both are gone the number may be
        reused by someone else's process, which must never be signalled.
        """
        if self.popen is None:
            return False
        return self.popen.returncode is None or bool(group_members(self.pgid))

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM to the whole group, SIGKILL after `grace` seconds; idempotent."""
        if self.popen is None:
            return
        pgid = self.pgid
        if self._owns_group():
            _signal_group(pgid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while group_alive(pgid, reap=self.popen) and time.monotonic() < deadline:
            time.sleep(0.05)
        if group_alive(pgid, reap=self.popen):  # members left: the id is still ours
            _signal_group(pgid, signal.SIGKILL)
            deadline = time.monotonic() + 5.0
            while group_alive(pgid, reap=self.popen) and time.monotonic() < deadline:
                time.sleep(0.05)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=1.0)
        if self._log is not None:
            self._log.close()
            self._log = None

    def kill(self) -> None:
        """SIGKILL the group at once (chaos tests: a function dies mid-work)."""
        if self._owns_group():
            _signal_group(self.pgid, signal.SIGKILL)
        self.stop(grace=0.0)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a process group, read from /proc."""
    if not sys.platform.startswith("linux"):
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return []
        return [pgid]
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp ..." — comm may contain spaces and parentheses.
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) >= 3 and fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry))
    return members


def group_alive(pgid: int, reap: subprocess.Popen[bytes] | None = None) -> bool:
    if reap is not None:
        reap.poll()  # a dead but unreaped leader would otherwise count as alive
    return bool(group_members(pgid))
