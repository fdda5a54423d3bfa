"""Benchmark of the send path: send_email against the Google simulator vs a bare messages.send.

Starts its own local stack, connects one rep through the real OAuth flow, then
measures (1) sequential latency and (2) concurrent throughput of POST
send_email, and the same two for a bare `users.messages.send` of an equally
small message through the same Gmail client (shared.gmail.service, same
credentials). The overhead ratio is what the function adds on top of Gmail:
validation, Firestore (idempotency record, daily slot, thread map, message,
conversation), the CRM event. Writes a Markdown table (default
docs/BENCHMARKS_SEND.md).

    .venv/bin/python scripts/bench_send.py [--sequential 40] [--concurrent 120] [--workers 8]
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from devstack.demo import http  # noqa: E402
from devstack.stack import Stack, StackSettings  # noqa: E402

ACCOUNT, USER, CONTACT = "bench", "rep", "carl"
REP_GMAIL, CONTACT_EMAIL = "bench.rep@gmail.test", "carl@client.test"


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def measure(fn: Callable[[int], None], n: int, workers: int) -> dict[str, float]:
    latencies: list[float] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        t = time.perf_counter()
        fn(i)
        with lock:
            latencies.append(time.perf_counter() - t)

    t0 = time.perf_counter()
    if workers == 1:
        for i in range(n):
            one(i)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(one, range(n)))
    wall = time.perf_counter() - t0
    return {"n": n, "rps": n / wall, "p50": pct(latencies, 50) * 1000, "p99": pct(latencies, 99) * 1000,
            "mean": statistics.fmean(latencies) * 1000}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sequential", type=int, default=40)
    ap.add_argument("--concurrent", type=int, default=120)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "BENCHMARKS_SEND.md")
    args = ap.parse_args()

    load_before = os.getloadavg()[0]
    stack = Stack(StackSettings(function_env={"DAILY_SEND_LIMIT": "1000000"}))
    print("starting the local stack …", flush=True)
    stack.start()
    try:
        results = run(stack, args)
    finally:
        stack.stop()
    write_table(args, results, load_before)
    return 0


def run(stack: Stack, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    os.environ.update(stack.base_function_env())
    from google.cloud import firestore

    from shared.core.paths import mailbox_id
    from shared.gmail.credentials import credentials_for
    from shared.gmail.mime_build import OutgoingEmail, build_bytes
    from shared.gmail.service import build_gmail
    from simulator.client import SimClient

    db = firestore.Client(project=stack.project_id)
    sim = SimClient(stack.simulator_url)
    auth = {"Authorization": f"Bearer {stack.secrets.crm_api_key}"}
    db.document(f"accounts/{ACCOUNT}/users/{USER}").set({"email": "rep@bench.test", "name": "Bench Rep"})
    db.document(f"accounts/{ACCOUNT}/contacts/{CONTACT}").set(
        {"email": CONTACT_EMAIL, "name": "Carl", "createdAt": datetime.now(UTC)})
    _, _, body = http("POST", f"{stack.function_url('oauth')}/connect",
                      {"accountId": ACCOUNT, "userId": USER, "returnUrl": "http://localhost:5173/x"}, auth)
    import json

    from devstack.rep_browser import connect_in_browser

    back = connect_in_browser(sim, json.loads(body)["authorizationUrl"], REP_GMAIL)
    assert back.status_code == 302 and "status=connected" in back.headers.get("Location", ""), back.headers
    sim.settings(dailySendLimit=10_000_000, rateLimitUnitsPerSecond=10_000_000)

    url = stack.function_url("send_email")
    run_id = time.monotonic_ns()

    def via_function(i: int) -> None:
        status, _, body = http("POST", url, {"accountId": ACCOUNT, "userId": USER, "contactId": CONTACT,
                                             "subject": "Benchmark", "text": f"message {i}",
                                             "idempotencyKey": f"bench-{run_id}-{i}-{threading.get_ident()}"}, auth)
        if status != 200:
            raise RuntimeError(f"send_email answered {status}: {body[:200]!r}")

    mb = mailbox_id(REP_GMAIL)
    local = threading.local()

    def bare(i: int) -> None:
        if not hasattr(local, "service"):  # httplib2 is not thread-safe: one client per thread
            local.service = build_gmail(credentials_for(mb, REP_GMAIL))
        raw = build_bytes(OutgoingEmail(from_address=REP_GMAIL, to_address=CONTACT_EMAIL, subject="Benchmark",
                                        message_id=f"<bare-{run_id}-{i}-{threading.get_ident()}@bench>",
                                        text=f"message {i}"))
        local.service.users().messages().send(
            userId="me", body={"raw": base64.urlsafe_b64encode(raw).decode()}).execute()

    for fn in (via_function, bare):  # warm-up: imports, token cache, connections
        for i in range(3):
            fn(10_000_000 + i)
    results = {}
    print("measuring …", flush=True)
    results["bare messages.send, sequential"] = measure(bare, args.sequential, 1)
    results["send_email, sequential"] = measure(via_function, args.sequential, 1)
    results[f"bare messages.send, {args.workers} concurrent"] = measure(bare, args.concurrent, args.workers)
    results[f"send_email, {args.workers} concurrent"] = measure(via_function, args.concurrent, args.workers)
    for name, r in results.items():
        print(f"{name:40s} {r['rps']:7.1f} req/s  p50 {r['p50']:7.1f} ms  p99 {r['p99']:7.1f} ms", flush=True)
    return results


def write_table(args: argparse.Namespace, results: dict[str, dict[str, float]], load_before: float) -> None:
    names = list(results)
    seq_ratio = results[names[1]]["p50"] / results[names[0]]["p50"]
    conc_ratio = results[names[2]]["rps"] / results[names[3]]["rps"]
    lines = [
        "# Send path benchmark",
        "",
        f"`scripts/bench_send.py` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, "
        f"load average {load_before:.1f} when it started (other work on the machine inflates every figure).",
        "Local stack: Firestore and Pub/Sub emulators, Google simulator, functions-framework (gunicorn, "
        "1 worker, 4 threads per CPU). One rep, one contact, text-only messages of ~200 bytes; gmail_push "
        "syncs the Sent messages in the background, as it would in production.",
        "",
        "| path | requests | req/s | p50 ms | p99 ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        lines.append(f"| {name} | {r['n']:.0f} | {r['rps']:.1f} | {r['p50']:.1f} | {r['p99']:.1f} |")
    lines += [
        "",
        f"Overhead of send_email over a bare messages.send through the same client: **{seq_ratio:.1f}x** the "
        f"sequential p50 latency, **{conc_ratio:.1f}x** fewer requests per second under concurrency.",
        "",
        "Where the time goes (the function logs `ms` per phase with every `email sent`): request parsing and "
        "three document reads (user, contact and link in one `get_all`, then the mailbox), the idempotency "
        "record (one create), the daily slot (one create), Gmail, the thread map (one create), the message "
        "(one create), the conversation summary (read + guarded update), the CRM event, and the idempotency "
        "record's completion (one update): about ten Firestore round trips of 10-15 ms each on the shared, loaded "
        "emulator. The ratio is against the simulator, which answers messages.send in a few ms; Gmail itself "
        "takes hundreds of ms per send and Firestore in-region a few ms per write, so in production the "
        "function's share of a send is small. Concurrency is bounded here by one functions-framework process "
        "on 2 CPUs; Cloud Functions scales out by instances.",
        "",
    ]
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
