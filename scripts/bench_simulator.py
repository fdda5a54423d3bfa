"""How many Gmail messages.get per second the Google simulator serves on this machine.

Starts `python -m simulator` on a free loopback port (its own process, as in the
local stack), creates a mailbox with --messages messages (a multipart message
with an attachment, as real mail is), gets a token through the simulator's own
headless OAuth consent and token exchange, then runs --threads clients, each on
its own keep-alive connection (http.client), calling messages.get (format=full) for --seconds
seconds. The per-user rate limit is lifted for the run (it would cap one user at
50 messages.get/s, which is Gmail's limit, not the simulator's speed).

    .venv/bin/python scripts/bench_simulator.py [--threads 4] [--seconds 5] [--json]

Prints the rate, latency percentiles, the simulator process's CPU time per call (steadier than
the rate on a shared machine) and errors; --json prints one JSON object.
The run is bounded (--seconds) and only talks to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
CLIENT_ID = "bench.apps.googleusercontent.com"
CLIENT_SECRET = "GOCSPX-bench"
REDIRECT = "http://127.0.0.1:9/callback"
USER = "bench@example.com"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_simulator(port: int, workdir: Path) -> subprocess.Popen[bytes]:
    config = {
        "projectId": "bench",
        "oauthClients": [{"clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET, "redirectUris": [REDIRECT]}],
        "rateLimitUnitsPerSecond": 10_000_000,
        "projectRateLimitUnitsPerSecond": 10_000_000,  # the server is measured, not Gmail's limits
    }
    path = workdir / "sim.json"
    path.write_text(json.dumps(config))
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulator", "--config", str(path), "--port", str(port)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/sim/health", timeout=1).ok:
                return proc
        except requests.RequestException:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("simulator did not start")


def sample_message(i: int) -> bytes:
    m = EmailMessage()
    m["From"] = f"customer{i}@example.org"
    m["To"] = USER
    m["Subject"] = f"Order {i}"
    m["Message-ID"] = f"<bench-{i}@example.org>"
    m.set_content(f"Hello, this is message {i}.\n" * 20)
    m.add_alternative(f"<p>Hello, this is message {i}.</p>" * 20, subtype="html")
    m.add_attachment(b"x" * 20_000, maintype="application", subtype="pdf", filename=f"order-{i}.pdf")
    return m.as_bytes()


def access_token(base: str) -> str:
    auth = f"{base}/o/oauth2/v2/auth?" + urllib.parse.urlencode({
        "client_id": CLIENT_ID, "redirect_uri": REDIRECT, "response_type": "code", "access_type": "offline",
        "scope": "https://www.googleapis.com/auth/gmail.readonly", "sim_user": USER, "sim_scopes": "all",
    })
    resp = requests.get(auth, allow_redirects=False, timeout=10)
    code = urllib.parse.parse_qs(urllib.parse.urlsplit(resp.headers["Location"]).query)["code"][0]
    tok = requests.post(f"{base}/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
    }, timeout=10)
    tok.raise_for_status()
    token: str = tok.json()["access_token"]
    return token


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used (Linux /proc; 0.0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(base: str, token: str, ids: list[str], threads: int, seconds: float) -> dict[str, Any]:
    latencies: list[list[float]] = [[] for _ in range(threads)]
    errors = [0] * threads
    stop_at = time.monotonic() + seconds

    host = urllib.parse.urlsplit(base).netloc
    headers = {"Authorization": f"Bearer {token}"}

    def worker(n: int) -> None:
        # http.client on one keep-alive connection per thread: the lightest client, so that on a
        # small machine the figure is the simulator's, not the load generator's.
        conn = http.client.HTTPConnection(host, timeout=30)
        i = n
        while time.monotonic() < stop_at:
            t0 = time.perf_counter()
            conn.request("GET", f"/gmail/v1/users/me/messages/{ids[i % len(ids)]}?format=full", headers=headers)
            resp = conn.getresponse()
            body = resp.read()
            latencies[n].append(time.perf_counter() - t0)
            if resp.status != 200 or not body.startswith(b'{"id"'):
                errors[n] += 1
            i += threads
        conn.close()

    workers = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    t0 = time.monotonic()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.monotonic() - t0
    flat = sorted(x for per in latencies for x in per)
    return {
        "requests": len(flat),
        "seconds": round(elapsed, 2),
        "messagesGetPerSecond": round(len(flat) / elapsed, 1),
        "p50ms": round(statistics.median(flat) * 1000, 2),
        "p99ms": round(flat[int(len(flat) * 0.99) - 1] * 1000, 2),
        "errors": sum(errors),
        "threads": threads,
        "cpus": os.cpu_count(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        proc = start_simulator(port, Path(tmp))
        try:
            token = access_token(base)  # the consent creates the mailbox
            ids = [
                requests.post(f"{base}/sim/mailboxes/{USER}/deliver", data=sample_message(i),
                              headers={"Content-Type": "message/rfc822"}, timeout=10).json()["id"]
                for i in range(args.messages)
            ]
            run(base, token, ids, args.threads, 0.5)  # warm-up
            cpu0 = cpu_seconds(proc.pid)
            result = run(base, token, ids, args.threads, args.seconds)
            cpu = cpu_seconds(proc.pid) - cpu0
            # Less noisy than the rate on a shared machine: what one call costs the simulator.
            result["serverCpuMsPerCall"] = round(cpu * 1000 / max(result["requests"], 1), 3)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"messages.get: {result['messagesGetPerSecond']}/s over {result['seconds']} s "
            f"({result['requests']} requests, {result['threads']} client threads, {result['cpus']} CPUs); "
            f"p50 {result['p50ms']} ms, p99 {result['p99ms']} ms; "
            f"simulator CPU {result['serverCpuMsPerCall']} ms per call; errors {result['errors']}"
        )
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
