"""Fixtures for the simulator's own tests: the simulator served in-process.

  sim_server   session   BackgroundServer (.url, .ctx) without Pub/Sub
  sim          function  sim_server reset to empty (POST /sim/reset); its base URL (per-user rate lifted:
                         PROTOCOL_TEST_RATE)
  token_for    function  token_for(address, scopes=READ_SEND) -> access token (mailbox created)
  pubsub_host  session   a real Pub/Sub emulator (started on first use) as "host:port"
  sim_pubsub   session   a second simulator that publishes watch notifications to that emulator
  watched      function  sim_pubsub reset; (url, topic, pull) with a fresh topic and subscription
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from simulator.app import BackgroundServer
from simulator.config import SimConfig
from simulator.tokens import Grant, TokenSet

PROJECT = "sim-test"
READ = "https://www.googleapis.com/auth/gmail.readonly"
SEND = "https://www.googleapis.com/auth/gmail.send"
MODIFY = "https://www.googleapis.com/auth/gmail.modify"
CLIENT_ID = "sim-test-client.apps.googleusercontent.com"
CLIENT_SECRET = "GOCSPX-sim-test"
REDIRECT = "http://127.0.0.1:9/oauth/callback"


# The protocol tests make calls back to back; the per-user rate (6,000 units a minute in the 2026 model) is
# lifted for them, and the quota tests put the model's own rate back (`rateLimitUnitsPerSecond: null`).
PROTOCOL_TEST_RATE = 100_000


def sim_config(**overrides: Any) -> SimConfig:
    return SimConfig.from_dict(
        {
            "projectId": PROJECT,
            "rateLimitUnitsPerSecond": PROTOCOL_TEST_RATE,
            "oauthClients": [{"clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET, "redirectUris": [REDIRECT]}],
            "secrets": {"oauth-client": [json.dumps({"clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET})]},
            "seed": 1,
            **overrides,
        }
    )


@pytest.fixture(scope="session")
def sim_server() -> Iterator[BackgroundServer]:
    with BackgroundServer(sim_config()) as server:
        yield server


@pytest.fixture
def sim(sim_server: BackgroundServer) -> str:
    requests.post(f"{sim_server.url}/sim/reset", timeout=10).raise_for_status()
    return sim_server.url


def mint_tokens(server: BackgroundServer, address: str, scopes: tuple[str, ...] = (READ, SEND)) -> TokenSet:
    """Access and refresh token for `address` through the token store's own code path (no browser)."""
    server.ctx.state.create_mailbox(address)
    tokens = server.ctx.tokens
    code = tokens.issue_code(Grant(address.lower(), frozenset(scopes), CLIENT_ID), REDIRECT, offline=True)
    return tokens.redeem_code(code, CLIENT_ID, REDIRECT, None)


def mint_token(server: BackgroundServer, address: str, scopes: tuple[str, ...] = (READ, SEND)) -> str:
    return mint_tokens(server, address, scopes).access_token


def credentials(server: BackgroundServer, address: str, scopes: tuple[str, ...] = (READ, SEND)) -> Any:
    """google-auth Credentials that refresh against the simulator's /token, as the project's are."""
    from google.oauth2.credentials import Credentials

    ts = mint_tokens(server, address, scopes)
    return Credentials(
        token=ts.access_token, refresh_token=ts.refresh_token, token_uri=f"{server.url}/token",
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, scopes=list(scopes),
    )


@pytest.fixture
def token_for(sim: str, sim_server: BackgroundServer) -> Callable[..., str]:
    def make(address: str, scopes: tuple[str, ...] = (READ, SEND)) -> str:
        return mint_token(sim_server, address, scopes)

    return make


# -- the real Pub/Sub emulator -----------------------------------------------------------


@pytest.fixture(scope="session")
def pubsub_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from devstack.procs import ManagedProcess, free_port, http_ready

    port = free_port()
    host = f"127.0.0.1:{port}"
    run = tmp_path_factory.mktemp("pubsub")
    proc = ManagedProcess(
        "pubsub emulator",
        ["gcloud", "beta", "emulators", "pubsub", "start", f"--host-port={host}", f"--project={PROJECT}",
         f"--data-dir={run}"],
        Path(run) / "pubsub.log",
    ).start()
    try:
        proc.wait_ready(http_ready(f"http://{host}/", 200), 90, "pubsub emulator")
        yield host
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def sim_pubsub(pubsub_host: str) -> Iterator[BackgroundServer]:
    with BackgroundServer(sim_config(pubsubEmulatorHost=pubsub_host)) as server:
        yield server


class Topic:
    """A fresh topic with one pull subscription, over the emulator's REST API."""

    def __init__(self, host: str) -> None:
        self.host = host
        name = "gmail-watch-" + secrets.token_hex(4)
        self.path = f"projects/{PROJECT}/topics/{name}"
        self.subscription = f"projects/{PROJECT}/subscriptions/{name}-sub"
        self._call("PUT", self.path, {})
        self._call("PUT", self.subscription, {"topic": self.path, "ackDeadlineSeconds": 10})

    def _call(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        req = urllib.request.Request(
            f"http://{self.host}/v1/{path}", data=json.dumps(body).encode(), method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            data: dict[str, Any] = json.loads(resp.read() or b"{}")
            return data

    def pull(self, count: int, timeout: float = 10.0, settle: float = 0.0) -> list[dict[str, Any]]:
        """Decoded notifications until `count` arrived (or timeout), then `settle` seconds more for stragglers."""
        out: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        settle_until: float | None = None
        while True:
            now = time.monotonic()
            if len(out) >= count and settle_until is None:
                settle_until = now + settle
            if now >= deadline or (settle_until is not None and now >= settle_until):
                return out
            got = self._call("POST", f"{self.subscription}:pull", {"maxMessages": 100, "returnImmediately": True})
            msgs = got.get("receivedMessages", [])
            if msgs:
                self._call("POST", f"{self.subscription}:acknowledge", {"ackIds": [m["ackId"] for m in msgs]})
                out.extend(json.loads(base64.b64decode(m["message"]["data"])) for m in msgs)
            else:
                time.sleep(0.05)


@pytest.fixture
def watched(sim_pubsub: BackgroundServer, pubsub_host: str) -> Iterator[tuple[BackgroundServer, Topic]]:
    requests.post(f"{sim_pubsub.url}/sim/reset", timeout=10).raise_for_status()
    yield sim_pubsub, Topic(pubsub_host)
    with contextlib.suppress(requests.RequestException):
        requests.post(f"{sim_pubsub.url}/sim/reset", timeout=10)


# -- the project's own Gmail client, pointed at a simulator ----------------------------------


def gmail_service(base_url: str, token: str | Any) -> Any:
    """The Gmail Resource as the project builds it (shared.gmail.service: discovery document, rootUrl moved)."""
    import google_auth_httplib2
    import httplib2
    from google.oauth2.credentials import Credentials
    from googleapiclient.discovery import build_from_document

    from shared.gmail.service import discovery_document

    creds = Credentials(token=token) if isinstance(token, str) else token
    raw_http = httplib2.Http(timeout=30)
    # As googleapiclient.http.build_http does: a 308 is "resume incomplete" of a resumable upload.
    raw_http.redirect_codes = raw_http.redirect_codes - {308}
    http = google_auth_httplib2.AuthorizedHttp(creds, http=raw_http)
    return build_from_document(discovery_document(base_url + "/"), http=http)


def deliver(base_url: str, address: str, raw: bytes | str, internal_date: int | None = None,
            label_ids: str | None = None) -> dict[str, Any]:
    data = raw.encode() if isinstance(raw, str) else raw
    params = {"internalDate": str(internal_date)} if internal_date is not None else {}
    if label_ids is not None:
        params["labelIds"] = label_ids
    resp = requests.post(
        f"{base_url}/sim/mailboxes/{address}/deliver", data=data, params=params,
        headers={"Content-Type": "message/rfc822"}, timeout=10,
    )
    resp.raise_for_status()
    out: dict[str, Any] = resp.json()
    return out


def rfc822(frm: str, to: str, subject: str, body: str = "hello", **headers: str) -> bytes:
    lines = [f"From: {frm}", f"To: {to}", f"Subject: {subject}"]
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    lines += ["MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8", "", body]
    return "\r\n".join(lines).encode()


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()
