"""Fixtures shared by every test: the local stack and clients bound to it.

The stack (Firestore and Pub/Sub emulators, Google simulator, every function
under functions-framework) starts once per test session, and only when a test
asks for it: unit tests start nothing. `clean` gives each end-to-end test an
empty world (no documents, no mailboxes, no pending Pub/Sub messages).

Fixtures (see docs/LOCAL_STACK.md, "Tests"):
  stack              session   devstack.Stack, started lazily
  clean              function  resets Firestore, the simulator and pending messages; returns the stack
  shared_env         function  os.environ set for the shared package (monkeypatch), its caches cleared
  firestore_db       session   google.cloud.firestore.Client on the emulator
  sim_client         session   simulator.client.SimClient on the stack's simulator
  crm_events         function  pull(count, timeout=15.0) -> list[dict]: CRM events from crm-events-tap
  function_env       function  set(name, **env): restart a function with extra env, restored afterwards
  function_server    function  serve(target, source, **env) -> url: a test-only function target
  event_audit        function  tests.event_audit.EventAudit: what the session published on crm-events
  console            function  the developer console's URL (started on first use, devstack/console/)

Every CRM event published during the session is checked against
schemas/events/*.json (tests/event_audit.py); an invalid one fails the test
during whose run it arrived (at teardown).

Every answer a test that uses the stack gets from an HTTP function (through
`requests`) is checked against openapi.yaml when the test ends
(`answers_follow_openapi`, autouse): an answer that breaks the document fails the test.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack.stack import CONFIG_VARS, Stack, StackSettings
from tests.event_audit import EventAudit

# Every function of the test stack gets these (small limits make the rules testable fast).
STACK_FUNCTION_ENV = {
    "DAILY_SEND_LIMIT": "20",
    "SYNC_LEASE_SECONDS": "5",
}


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    run_dir = tmp_path_factory.mktemp("devstack")
    s = Stack(StackSettings(run_dir=run_dir, function_env=dict(STACK_FUNCTION_ENV)))
    atexit.register(s.stop)  # even if pytest dies without running finalizers
    _stop_on_sigterm(s)
    _STARTED.append(s)
    s.start()
    audit = EventAudit(s.pubsub_host, s.project_id)
    _AUDITS.append(audit)
    try:
        yield s
        audit.drain()
        invalid = audit.take_invalid()
        assert not invalid, "events on crm-events that break schemas/events:\n" + "\n".join(map(str, invalid))
    finally:
        audit.stop()
        s.stop()


_STARTED: list[Stack] = []
_AUDITS: list[EventAudit] = []


@pytest.fixture
def console(stack: Stack) -> str:
    """The developer console's URL (started once, on first use; `make up` always starts it)."""
    return stack.start_console()


@pytest.fixture
def event_audit(stack: Stack) -> EventAudit:
    return _AUDITS[-1]


@pytest.fixture(autouse=True)
def _crm_events_match_their_schemas() -> Iterator[None]:
    """Fail the test during which an event that breaks its schema arrived (SPEC §6: a schema per type)."""
    yield
    for audit in _AUDITS:
        invalid = audit.take_invalid()
        if invalid:
            pytest.fail("events on crm-events that break schemas/events:\n" + "\n".join(map(str, invalid)),
                        pytrace=False)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say how long the local stack took to start (a number the 10-minute budget depends on)."""
    for s in _STARTED:
        if s.started_in is not None:
            parts = ", ".join(f"{part} {t:.1f} s" for part, t in s.ready_after.items())
            terminalreporter.write_line(f"local stack started in {s.started_in:.1f} s ({parts}); logs: {s.log_dir}")
    for audit in _AUDITS:
        terminalreporter.write_line(audit.summary())


def _stop_on_sigterm(s: Stack) -> None:
    """A SIGTERM'd pytest (a CI timeout) skips finalizers and atexit; the stack's
    parts run in their own sessions and would outlive it. Stop them first."""
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return

    def handler(signum: int, _frame: Any) -> None:
        s.stop()
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    signal.signal(signal.SIGTERM, handler)


@pytest.fixture
def clean(stack: Stack) -> Stack:
    stack.reset()
    return stack


@pytest.fixture
def shared_env(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The functions' own environment (env_for_clients() plus the functions' settings)."""
    env = stack.base_function_env()
    for key in CONFIG_VARS:
        if key not in env:
            monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    _clear_shared_caches()
    yield env
    _clear_shared_caches()


def _clear_shared_caches() -> None:
    from shared.core import clients, config, secrets

    config.get_config.cache_clear()
    clients.reset_clients()
    secrets.clear_cache()


@pytest.fixture(scope="session")
def firestore_db(stack: Stack) -> Any:
    from google.cloud import firestore

    with pytest.MonkeyPatch.context() as mp:
        # The client reads the emulator host once, when it is built.
        mp.setenv("FIRESTORE_EMULATOR_HOST", stack.firestore_host)
        return firestore.Client(project=stack.project_id)


@pytest.fixture(scope="session")
def sim_client(stack: Stack) -> Any:
    from simulator.client import SimClient

    return SimClient(stack.simulator_url)


@pytest.fixture
def crm_events(stack: Stack) -> Callable[..., list[dict[str, Any]]]:
    def pull(count: int, timeout: float = 15.0) -> list[dict[str, Any]]:
        return stack.crm_events(count, timeout)

    return pull


@pytest.fixture
def function_env(stack: Stack) -> Iterator[Callable[..., None]]:
    changed: list[str] = []

    def set_env(name: str, **env: str) -> None:
        stack.restart_function(name, env)
        changed.append(name)

    yield set_env
    for name in dict.fromkeys(changed):
        stack.restart_function(name, None)


@pytest.fixture
def function_server(stack: Stack) -> Iterator[Callable[..., str]]:
    names: list[str] = []

    def serve(target: str, source: Path, **env: str) -> str:
        name = f"{target}-{len(names)}"
        names.append(name)
        return stack.serve_extra(name, target, source, env)

    yield serve
    for name in names:
        stack.stop_extra(name)


@pytest.fixture(autouse=True)
def answers_follow_openapi(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """SPEC §6 (0.2): tests check live answers against openapi.yaml — every answer, of every e2e test."""
    if "stack" not in request.fixturenames:
        yield
        return
    import requests

    from tests.fuzz.contract import contract_for

    contract = contract_for(request.getfixturevalue("stack"))
    answers: list[Any] = []
    original = requests.Session.send

    def send(self: requests.Session, prepared: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        response = original(self, prepared, **kwargs)
        if contract.is_function_url(prepared.url or ""):
            answers.append(response)
        return response

    monkeypatch.setattr(requests.Session, "send", send)
    yield
    monkeypatch.undo()
    broken = [f"{r.request.method} {r.request.url} -> {r.status_code}: {'; '.join(problems)}"
              for r in answers for problems in [contract.check_response(r)] if problems]
    if broken:
        pytest.fail("answers that break openapi.yaml:\n" + "\n".join(broken[:10]), pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    """On an end-to-end failure, attach the tail of every stack log to the report."""
    report = yield
    if report.failed and "stack" in getattr(item, "fixturenames", ()):
        s = _started_stack(item)
        if s is not None:
            for proc in [*s.processes.values(), *s.extra_functions.values()]:
                tail = proc.log_tail(15)
                if tail:
                    report.sections.append((f"log: {proc.name} ({proc.log_path})", tail))
    return report


def _started_stack(item: pytest.Item) -> Stack | None:
    with contextlib.suppress(Exception):
        value = item.funcargs.get("stack") or item.funcargs.get("clean")  # type: ignore[attr-defined]
        if isinstance(value, Stack):
            return value
    return None

