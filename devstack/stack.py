"""The whole local stack as one object: emulators, Google simulator, functions.

`make up` (devstack/__main__.py) and the pytest fixtures (tests/conftest.py)
both use this class, so what the tests exercise is what a CRM developer runs.

Start-up launches every process at once (the two Java emulators dominate the
time, so nothing waits for them needlessly) and then waits for each part to
answer; a part that does not come up stops everything already started and
raises `StartupError` naming it.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack import prereqs, storage_emulator
from devstack.functions import (
    FUNCTION_NAMES,
    LOCAL_AUTO_BCC_DOMAIN,
    LOCAL_AUTO_BCC_RATE_PER_MINUTE,
    LOCAL_RETURN_URL_ALLOWLIST,
    REPO_ROOT,
    serve_function,
)
from devstack.procs import ManagedProcess, StartupError, free_port, http_ready, port_in_use, tcp_ready
from devstack.simconfig import StackSecrets, simulator_config, write_private_json
from devstack.topology import CRM_EVENTS_TAP, DEAD_LETTERS_TAP, PUSH_ROUTES, PubSubAdmin

DEFAULT_PROJECT = "demo-crm-sync"
SIMULATOR_MODULE = "simulator"  # `python -m simulator --config … --host … --port …`
TRIGGERS_MODULE = "devstack.firestore_triggers"  # Firestore document triggers, fed from the emulator's listen API
# Firestore-triggered functions: the document pattern each one is deployed on (deploy.sh does the same).
FIRESTORE_TRIGGERS = {"contacts_index": "accounts/{accountId}/contacts/{contactId}"}
CONSOLE_MODULE = "devstack.console"  # `python -m devstack.console --endpoints … --host … --port …`

# Settings the functions read (ARCHITECTURE.md, "Configuration"). Inherited values
# are dropped so that, say, a GMAIL_API_ROOT exported in a developer's shell can
# never point the local stack at Google.
CONFIG_VARS = (
    "GOOGLE_CLOUD_PROJECT", "GCP_PROJECT", "FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST",
    "GOOGLE_SIMULATOR_URL", "GMAIL_API_ROOT", "OAUTH_AUTH_URI", "OAUTH_TOKEN_URI", "OAUTH_REVOKE_URI",
    "SECRET_MANAGER_ENDPOINT", "OAUTH_REDIRECT_URI", "RETURN_URL_ALLOWLIST", "GMAIL_WATCH_TOPIC",
    "CRM_EVENTS_TOPIC", "DAILY_TICK_TOPIC", "DAILY_SEND_LIMIT", "SEND_LIMIT_TIMEZONE", "AUTO_BCC_DOMAIN",
    "SYNC_LEASE_SECONDS", "SYNC_STALE_SECONDS", "GMAIL_RETRY_BUDGET_SECONDS", "OAUTHLIB_INSECURE_TRANSPORT",
    "SYNC_CONTROL_TOPIC", "SYNC_DEADLINE_SECONDS", "SYNC_SWEEP_SECONDS", "SYNC_SWEEP_SHARDS", "SYNC_MAX_PASS_SECONDS",
    "WATCH_RENEW_WITHIN_SECONDS", "GMAIL_USER_UNITS_PER_SECOND", "GMAIL_QUOTA_MODEL", "SYNC_USERS_CACHE_SECONDS",
    "EMULATE_TTL", "SECRET_TTL_SECONDS", "AUTO_BCC_RATE_PER_MINUTE", "AUTO_BCC_AUTHSERV_ID",
    "QUOTA_RESET_BUDGET_SECONDS",
    "OAUTHLIB_RELAX_TOKEN_SCOPE", "GOOGLE_APPLICATION_CREDENTIALS", "STORAGE_EMULATOR_HOST", "STORAGE_BUCKET",
    "KEEP_BUDGET_BYTES",
)


COMPANIONS = (("oauth", "oauth_browser"), ("gmail_push", "contacts_index"))


@dataclass
class StackSettings:
    """What to start and where. A port of 0 means: any free port."""

    project_id: str = DEFAULT_PROJECT
    host: str = "127.0.0.1"
    firestore_port: int = 0
    pubsub_port: int = 0
    simulator_port: int = 0
    storage_port: int = 0  # the Cloud Storage emulator (R32)
    function_ports: dict[str, int] = field(default_factory=dict)
    functions: tuple[str, ...] = FUNCTION_NAMES
    run_dir: Path | None = None  # None: a fresh temporary directory
    function_env: dict[str, str] = field(default_factory=dict)  # extra env for every function
    simulator_overrides: dict[str, Any] = field(default_factory=dict)  # extra SimConfig keys
    console: bool = False  # the developer console (devstack/console/); `make up` starts it, tests on demand
    console_port: int = 0
    ready_timeout: float = 50.0

    def __post_init__(self) -> None:
        # Functions that only work beside another, as they are deployed: oauth's authorizationUrl points at
        # oauth_browser's /start and Google returns to its /callback (R24); the sync looks contacts up in
        # the index that contacts_index keeps (R11b). A stack serving the first alone would hand out URLs
        # that lead nowhere, or never match a contact created after an account's first pass.
        for needs, companion in COMPANIONS:
            if needs in self.functions and companion not in self.functions:
                self.functions = (*self.functions, companion)


class Stack:
    def _simulator_overrides(self) -> dict[str, Any]:
        """The simulator's extra keys; its Gmail quota model follows the functions' GMAIL_QUOTA_MODEL."""
        model = self.settings.function_env.get("GMAIL_QUOTA_MODEL") or os.environ.get("GMAIL_QUOTA_MODEL")
        return {**({"quotaModel": model} if model else {}), **self.settings.simulator_overrides}

    def __init__(self, settings: StackSettings | None = None) -> None:
        self.settings = settings or StackSettings()
        s = self.settings
        self.run_dir = Path(s.run_dir) if s.run_dir else Path(tempfile.mkdtemp(prefix="devstack-"))
        self.log_dir = self.run_dir / "logs"
        self.secrets = StackSecrets.generate()
        self.ports: dict[str, int] = {}
        self.processes: dict[str, ManagedProcess] = {}
        self.extra_functions: dict[str, ManagedProcess] = {}
        self._function_extra_env: dict[str, dict[str, str]] = {}
        self._pubsub: PubSubAdmin | None = None
        self.started_in: float | None = None
        self.ready_after: dict[str, float] = {}  # part -> seconds from start() until it answered

    # ---- addresses -------------------------------------------------------------------

    @property
    def project_id(self) -> str:
        return self.settings.project_id

    @property
    def host(self) -> str:
        return self.settings.host

    def _hostport(self, part: str) -> str:
        return f"{self.host}:{self.ports[part]}"

    @property
    def firestore_host(self) -> str:
        return self._hostport("firestore")

    @property
    def pubsub_host(self) -> str:
        return self._hostport("pubsub")

    @property
    def storage_url(self) -> str:
        return f"http://{self._hostport('storage')}"

    @property
    def simulator_url(self) -> str:
        return f"http://{self._hostport('simulator')}"

    def function_url(self, name: str) -> str:
        return f"http://{self._hostport('function:' + name)}"

    @property
    def console_url(self) -> str:
        return f"http://{self._hostport('console')}"

    @property
    def endpoints(self) -> dict[str, Any]:
        """The endpoints document of SPEC §6 (also written to endpoints.json)."""
        return {
            "firestore": self.firestore_host,
            "pubsub": self.pubsub_host,
            "google": self.simulator_url,
            "storage": self.storage_url,
            "functions": {name: self.function_url(name) for name in self.settings.functions},
            "projectId": self.project_id,
            "crmApiKey": self.secrets.crm_api_key,
            "inboundKey": self.secrets.inbound_api_key,
            "oauthClient": {"clientId": self.secrets.client_id, "clientSecret": self.secrets.client_secret},
            **({"console": self.console_url} if "console" in self.ports else {}),
        }

    def write_endpoints(self, path: Path) -> Path:
        write_private_json(path, self.endpoints)
        return path

    def env_for_clients(self) -> dict[str, str]:
        """What a test or tool process needs to use the shared package in-process."""
        return {
            "GOOGLE_CLOUD_PROJECT": self.project_id,
            "FIRESTORE_EMULATOR_HOST": self.firestore_host,
            "PUBSUB_EMULATOR_HOST": self.pubsub_host,
            "GOOGLE_SIMULATOR_URL": self.simulator_url,
            "STORAGE_EMULATOR_HOST": self.storage_url,  # read by google-cloud-storage itself
            "STORAGE_BUCKET": storage_emulator.LOCAL_BUCKET,
        }

    def base_function_env(self) -> dict[str, str]:
        """The environment every function of the stack gets (before per-function extras)."""
        browser_url = self.function_url("oauth_browser") if "function:oauth_browser" in self.ports else ""
        env = {
            **self.env_for_clients(),
            "OAUTH_REDIRECT_URI": f"{browser_url}/callback",  # /start sits next to it (R24)
            "RETURN_URL_ALLOWLIST": LOCAL_RETURN_URL_ALLOWLIST,
            "OAUTHLIB_INSECURE_TRANSPORT": "1",  # plain-http simulator; local stack only, never production
            "AUTO_BCC_DOMAIN": LOCAL_AUTO_BCC_DOMAIN,
            # the fuzzer and the benchmarks post far more than a rep's copies a minute to one address
            "AUTO_BCC_RATE_PER_MINUTE": LOCAL_AUTO_BCC_RATE_PER_MINUTE,
        }
        env.update(self.settings.function_env)
        return env

    def process_env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The whole environment of a function process of this stack (its inherited Google endpoints
        dropped), with `extra` on top: what the stack's own functions get, for processes started beside it."""
        env = {k: v for k, v in os.environ.items() if k not in CONFIG_VARS}
        env.update(self.base_function_env())
        env.update(extra or {})
        return env

    # ---- start / stop ------------------------------------------------------------------

    def _allocate_ports(self) -> None:
        s = self.settings
        wanted = {"firestore": s.firestore_port, "pubsub": s.pubsub_port, "simulator": s.simulator_port,
                  "storage": s.storage_port}
        if any(name in s.functions for name in FIRESTORE_TRIGGERS):
            wanted["triggers"] = 0
        for name in s.functions:
            wanted[f"function:{name}"] = s.function_ports.get(name, 0)
        if s.console:
            wanted["console"] = s.console_port
        taken = set()
        for part, port in wanted.items():
            if port:
                if port in taken or port_in_use(port, self.host):
                    raise StartupError(
                        _part_label(part),
                        f"port {port} is already in use (another `make up` still running? "
                        "choose other ports, see docs/LOCAL_STACK.md)",
                    )
            else:
                port = free_port(self.host)
                while port in taken:
                    port = free_port(self.host)
            taken.add(port)
            self.ports[part] = port

    def start(self) -> Stack:
        t0 = time.monotonic()
        prereqs.check_all()
        self._allocate_ports()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._launch_all()
            self._wait_all(t0)
        except BaseException:
            self.stop()
            raise
        self.started_in = time.monotonic() - t0
        return self

    def _launch_all(self) -> None:
        s = self.settings
        gcloud_env = {**os.environ, "CLOUDSDK_CORE_DISABLE_PROMPTS": "1"}
        pubsub_data = self.run_dir / "pubsub-data"
        pubsub_data.mkdir(parents=True, exist_ok=True)
        self.processes["firestore"] = ManagedProcess(
            "Firestore emulator",
            ["gcloud", "emulators", "firestore", "start", f"--host-port={self.firestore_host}"],
            self.log_dir / "firestore.log", env=gcloud_env,
        ).start()
        self.processes["pubsub"] = ManagedProcess(
            "Pub/Sub emulator",
            ["gcloud", "beta", "emulators", "pubsub", "start", f"--host-port={self.pubsub_host}",
             f"--project={self.project_id}", f"--data-dir={pubsub_data}"],
            self.log_dir / "pubsub.log", env=gcloud_env,
        ).start()
        self._launch_storage()
        sim_config_path = self.run_dir / "simulator.json"
        redirect = (f"{self.function_url('oauth_browser')}/callback" if "oauth_browser" in s.functions
                    else "http://localhost/callback")
        write_private_json(
            sim_config_path,
            simulator_config(self.project_id, self.pubsub_host, redirect, self.secrets, self._simulator_overrides()),
        )
        self.processes["simulator"] = ManagedProcess(
            "Google simulator",
            [sys.executable, "-m", SIMULATOR_MODULE, "--config", str(sim_config_path),
             "--host", self.host, "--port", str(self.ports["simulator"])],
            self.log_dir / "simulator.log", env={**self.process_env(), "PYTHONUNBUFFERED": "1"}, cwd=REPO_ROOT,
        ).start()
        for name in s.functions:
            self.processes[f"function:{name}"] = self._serve(name, wait=False)
        if s.console:
            self._launch_console()

    def _launch_storage(self) -> None:
        root = self.run_dir / "storage-data"
        root.mkdir(parents=True, exist_ok=True)
        self.processes["storage"] = ManagedProcess(
            "Cloud Storage emulator", storage_emulator.command(self.host, self.ports["storage"], root),
            self.log_dir / "storage.log",
        ).start()

    def _launch_console(self) -> None:
        config = self.run_dir / "console-endpoints.json"
        self.write_endpoints(config)
        self.processes["console"] = ManagedProcess(
            "developer console",
            [sys.executable, "-m", CONSOLE_MODULE, "--endpoints", str(config),
             "--host", self.host, "--port", str(self.ports["console"])],
            self.log_dir / "console.log", env={**self.process_env(), "PYTHONUNBUFFERED": "1"}, cwd=REPO_ROOT,
        ).start()

    def _wait_console(self, timeout: float) -> None:
        self.processes["console"].wait_ready(
            http_ready(f"{self.console_url}/health", 200), timeout, "GET /health (subscribed to crm-events)"
        )

    def start_console(self) -> str:
        """Start the developer console on a running stack (tests); returns its URL. Idempotent."""
        if "console" not in self.processes:
            self.ports["console"] = free_port(self.host)
            self._launch_console()
            self._wait_console(self.settings.ready_timeout)
        return self.console_url

    def _trigger_routes(self) -> list[str]:
        """`pattern=url` of every Firestore-triggered function the stack serves."""
        return [f"{pattern}={self.function_url(name)}/" for name, pattern in FIRESTORE_TRIGGERS.items()
                if name in self.settings.functions]

    def _launch_triggers(self) -> None:
        """The Firestore trigger feeder; started once the emulator answers (it opens listen streams at once)."""
        argv = [sys.executable, "-m", TRIGGERS_MODULE, "--project", self.project_id,
                "--health-port", str(self.ports["triggers"]), "--host", self.host]
        for route in self._trigger_routes():
            argv += ["--route", route]
        self.processes["triggers"] = ManagedProcess(
            "Firestore triggers", argv, self.log_dir / "firestore-triggers.log",
            env={**self.process_env(), "PYTHONUNBUFFERED": "1"}, cwd=REPO_ROOT,
        ).start()

    def _serve(self, name: str, wait: bool) -> ManagedProcess:
        return serve_function(
            name, name, self.ports[f"function:{name}"], self.log_dir,
            self.process_env(self._function_extra_env.get(name)),
            host=self.host, ready_timeout=self.settings.ready_timeout, wait=wait,
        )

    def _wait_all(self, t0: float) -> None:
        def remaining() -> float:
            return max(1.0, self.settings.ready_timeout - (time.monotonic() - t0))

        def mark(part: str) -> None:
            self.ready_after[part] = time.monotonic() - t0

        self.processes["pubsub"].wait_ready(
            http_ready(f"http://{self.pubsub_host}/", 200), remaining(), f"port {self.ports['pubsub']}"
        )
        mark("pubsub")
        self.pubsub.create_all({name: self.function_url(name) for name in self.settings.functions})
        mark("topics")
        self.processes["firestore"].wait_ready(
            http_ready(f"http://{self.firestore_host}/", 200), remaining(), f"port {self.ports['firestore']}"
        )
        mark("firestore")
        self.processes["storage"].wait_ready(
            http_ready(f"{self.storage_url}/storage/v1/b", 200), remaining(), "GET /storage/v1/b"
        )
        storage_emulator.create_bucket(self.storage_url, self.project_id)
        mark("storage")
        # The emulator's first real request takes seconds (it initialises the database
        # lazily); pay that now, while the other parts come up, not in the first test.
        warmup = threading.Thread(target=self._warm_up_firestore, name="firestore-warmup", daemon=True)
        warmup.start()
        if "triggers" in self.ports:
            self._launch_triggers()
        self.processes["simulator"].wait_ready(
            http_ready(f"{self.simulator_url}/sim/health", 200), remaining(), "GET /sim/health"
        )
        mark("simulator")
        for name in self.settings.functions:
            port = self.ports[f"function:{name}"]
            self.processes[f"function:{name}"].wait_ready(tcp_ready(self.host, port), remaining(), f"port {port}")
        mark("functions")
        if "console" in self.processes:
            self._wait_console(remaining())
            mark("console")
        warmup.join(remaining())
        mark("firestore warm-up")
        if "triggers" in self.processes:
            self.processes["triggers"].wait_ready(
                http_ready(f"http://{self.host}:{self.ports['triggers']}/health", 200), remaining(), "GET /health")
            mark("firestore triggers")

    def _warm_up_firestore(self) -> None:
        with contextlib.suppress(OSError):
            self.reset_firestore()

    def stop(self) -> None:
        """Stop every part (functions first, emulators last); safe to call twice."""
        if self._pubsub is not None:
            self._pubsub.close()
            self._pubsub = None
        procs = list(self.extra_functions.values()) + list(reversed(self.processes.values()))
        for proc in procs:  # all at once: stopping takes as long as the slowest part, not the sum
            with contextlib.suppress(Exception):
                proc.terminate()
        for proc in procs:
            with contextlib.suppress(Exception):
                proc.stop()
        self.extra_functions.clear()

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def dead_parts(self) -> list[str]:
        """Parts whose process has exited (for `make up`'s watch loop)."""
        return [p.name for p in self.processes.values() if p.exited() is not None]

    # ---- functions: restart, kill, extra test targets -----------------------------------

    def restart_function(self, name: str, extra_env: Mapping[str, str] | None = None) -> None:
        """Restart one function; `extra_env` replaces that function's previous extras (None: none)."""
        key = f"function:{name}"
        self.processes[key].stop()
        self._function_extra_env[name] = dict(extra_env or {})
        self.processes[key] = self._serve(name, wait=True)

    def kill_function(self, name: str) -> None:
        """SIGKILL one function's process group at once (it stays down until restart_function)."""
        self.processes[f"function:{name}"].kill()

    def serve_extra(
        self, name: str, target: str, source: Path, extra_env: Mapping[str, str] | None = None
    ) -> str:
        """Serve a test-only function target with the stack's environment; returns its URL."""
        port = free_port(self.host)
        proc = serve_function(
            f"extra-{name}", target, port, self.log_dir, self.process_env(extra_env),
            source=source, host=self.host, ready_timeout=self.settings.ready_timeout,
        )
        self.extra_functions[name] = proc
        return f"http://{self.host}:{port}"

    def stop_extra(self, name: str) -> None:
        proc = self.extra_functions.pop(name, None)
        if proc is not None:
            proc.stop()

    # ---- state between tests -----------------------------------------------------------

    @property
    def pubsub(self) -> PubSubAdmin:
        if self._pubsub is None:
            self._pubsub = PubSubAdmin(self.pubsub_host, self.project_id)
        return self._pubsub

    def reset_firestore(self) -> None:
        url = (
            f"http://{self.firestore_host}/emulator/v1/projects/{self.project_id}"
            "/databases/(default)/documents"
        )
        urllib.request.urlopen(urllib.request.Request(url, method="DELETE"), timeout=10).close()

    def reset_storage(self) -> None:
        storage_emulator.empty_bucket(self.storage_url)

    def reset_simulator(self) -> None:
        req = urllib.request.Request(f"{self.simulator_url}/sim/reset", data=b"{}", method="POST",
                                     headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=10).close()

    def purge_subscriptions(self) -> None:
        """Drop undelivered messages (pending pushes and CRM events) left by an earlier test."""
        routes = [r.subscription for r in PUSH_ROUTES if r.function in self.settings.functions]
        for sub in [*routes, CRM_EVENTS_TAP, DEAD_LETTERS_TAP]:
            self.pubsub.purge(sub)

    def reset(self) -> None:
        self.purge_subscriptions()
        self.reset_firestore()
        self.reset_storage()
        self.reset_simulator()

    def crm_events(self, count: int, timeout: float = 15.0) -> list[dict[str, Any]]:
        """Pull at least `count` CRM events from crm-events-tap: their JSON bodies, in arrival order.

        Returns fewer than `count` if the timeout passes first (the caller asserts).
        Raw messages with attributes: `self.pubsub.pull_until(CRM_EVENTS_TAP, …)`.
        """
        messages = self.pubsub.pull_until(CRM_EVENTS_TAP, count, timeout)
        return [_decode_event(m) for m in messages]


    def dead_letters(self, count: int = 1, timeout: float = 1.0) -> list[Any]:
        """Messages that exhausted their delivery attempts (raw PubsubMessage objects;
        attribute CloudPubSubDeadLetterSourceSubscription says from where)."""
        return self.pubsub.pull_until(DEAD_LETTERS_TAP, count, timeout)


def _decode_event(message: Any) -> dict[str, Any]:
    body = json.loads(bytes(message.data).decode("utf-8"))
    return body if isinstance(body, dict) else {"value": body}


def _part_label(part: str) -> str:
    if part.startswith("function:"):
        return f"function {part.split(':', 1)[1]}"
    return {"firestore": "Firestore emulator", "pubsub": "Pub/Sub emulator", "simulator": "Google simulator",
            "storage": "Cloud Storage emulator",
            "triggers": "Firestore triggers", "console": "developer console"}[part]
