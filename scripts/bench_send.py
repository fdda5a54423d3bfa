"""Benchmark of the send path (issue 12): what send_email adds to Gmail's own messages.send.

Starts its own local stack, connects 8 reps through the real OAuth flow (one
contact each), and measures:

- Firestore round trips per send, counted by the function itself (its
  `X-Firestore-Round-Trips` header, local stack only): median and max per phase;
- added latency: send_email p50 minus a bare `users.messages.send` p50 through
  the same Gmail client library and credentials, sequential, 8 concurrent to
  8 contacts (8 reps), and 8 concurrent to one contact (one rep);
- the same with the simulator giving messages.send a Gmail-like latency
  (log-normal, median 300 ms, p90 600 ms; see docs/BENCHMARKS_SEND.md for where
  the figure comes from) and the ratio send_email p50 / bare p50 there. Both
  sides draw the same latency sequence (the fault seed is set again before each);
- cold start (scripts/cold_start.py): a functions-framework process from its
  spawn to its first answer, send_email serving a first send against a
  function that only imports the client libraries send_email imports on its
  path (checked: each one is loaded after the first send).

Writes docs/BENCHMARKS_SEND.md.

    .venv/bin/python scripts/bench_send.py [--sequential 60] [--concurrent 160] [--gmail-like 60] [--cold 5]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

import cold_start  # noqa: E402

from devstack.demo import http  # noqa: E402
from devstack.rep_browser import connect_in_browser  # noqa: E402
from devstack.stack import Stack, StackSettings  # noqa: E402

ACCOUNT = "bench"
REPS = 8
GMAIL_LIKE = {"latencyMs": 300, "latencyP90Ms": 600}
SEED = 12


def rep(i: int) -> str:
    return f"bench.rep{i}@gmail.test"


def contact_email(i: int) -> str:
    return f"contact{i}@client.test"


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


@dataclass
class Phase:
    n: int = 0
    wall: float = 0.0
    latencies: list[float] = field(default_factory=list)
    trips: list[int] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return self.n / self.wall if self.wall else 0.0

    @property
    def p50(self) -> float:
        return pct(self.latencies, 50) * 1000

    @property
    def p99(self) -> float:
        return pct(self.latencies, 99) * 1000


class Runner:
    """A fixed set of worker threads, each keeping its index (its rep) and its connections across blocks."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.pool = ThreadPoolExecutor(max_workers=workers) if workers > 1 else None
        self._ids = iter(range(workers))
        self._lock = threading.Lock()
        self._local = threading.local()

    def block(self, fn: Callable[[int, int], int | None], start: int, size: int, into: Phase) -> None:
        def one(i: int) -> None:
            if not hasattr(self._local, "worker"):
                with self._lock:
                    self._local.worker = next(self._ids)
            t = time.perf_counter()
            rt = fn(i, self._local.worker)
            elapsed = time.perf_counter() - t
            with self._lock:
                into.latencies.append(elapsed)
                if rt is not None:
                    into.trips.append(rt)

        t0 = time.perf_counter()
        if self.pool is None:
            for i in range(start, start + size):
                one(i)
        else:
            list(self.pool.map(one, range(start, start + size)))
        into.wall += time.perf_counter() - t0
        into.n += size

    def warm(self, fn: Callable[[int, int], int | None], start: int) -> None:
        """One untimed call on every worker thread (a thread's first bare call builds its Gmail client)."""
        if self.pool is None:
            self.block(fn, start, 1, Phase())
            return
        barrier = threading.Barrier(self.workers)

        def one(i: int) -> None:
            if not hasattr(self._local, "worker"):
                with self._lock:
                    self._local.worker = next(self._ids)
            fn(i, self._local.worker)
            barrier.wait(timeout=120)  # each thread takes exactly one

        list(self.pool.map(one, range(start, start + self.workers)))

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()


def compare(bare: Callable[[int, int], None], function: Callable[[int, int], int], n: int, workers: int,
            block: int, same_latencies: Callable[[int], None] | None = None) -> tuple[Phase, Phase]:
    """Bare and function in alternating blocks, so both see the same machine load as it drifts.

    `same_latencies(block_start)` is called before each block of either side (the Gmail-like phases set
    the simulator's fault seed with it, so both sides draw the same latencies)."""
    runner = Runner(workers)
    b, f = Phase(), Phase()
    try:
        runner.warm(bare, 5_000_000)
        runner.warm(function, 5_000_000)
        for start in range(0, n, block):
            size = min(block, n - start)
            for fn, into in ((bare, b), (function, f)):
                if same_latencies is not None:
                    same_latencies(start)
                runner.block(fn, start, size, into)
    finally:
        runner.close()
    return b, f


PHASES = ("read", "check", "reserve", "gmail", "log", "event")


def phases_from_log(lines: list[str]) -> dict[str, float]:
    """Median milliseconds of each phase of the sends in these function log lines (`ms` of "email sent")."""
    per: dict[str, list[float]] = {p: [] for p in PHASES}
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        ms = entry.get("ms") if entry.get("message") == "email sent" else None
        if not isinstance(ms, dict) or not all(p in ms for p in PHASES):
            continue
        previous = 0
        for p in PHASES:
            per[p].append(ms[p] - previous)
            previous = ms[p]
    return {p: statistics.median(v) for p, v in per.items() if v}


def connect_all(stack: Stack, db: Any, sim: Any, auth: dict[str, str]) -> None:
    for i in range(REPS):
        user = f"rep{i}"
        db.document(f"accounts/{ACCOUNT}/users/{user}").set({"email": f"rep{i}@bench.test", "name": f"Rep {i}"})
        db.document(f"accounts/{ACCOUNT}/contacts/c{i}").set(
            {"email": contact_email(i), "name": f"Contact {i}", "createdAt": datetime.now(UTC)})
        _, _, body = http("POST", f"{stack.function_url('oauth')}/connect",
                          {"accountId": ACCOUNT, "userId": user, "returnUrl": "http://localhost:5173/x"}, auth)
        back = connect_in_browser(sim, json.loads(body)["authorizationUrl"], rep(i))  # one cookie jar (R24)
        assert back.status_code == 302 and "status=connected" in back.headers.get("Location", ""), back.headers


def run(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    os.environ.update(stack.base_function_env())
    from google.cloud import firestore

    from shared.crm.mailboxes import load_refresh_token
    from shared.crm.paths import mailbox_id
    from shared.gmail.credentials import credentials_for
    from shared.gmail.mime_build import OutgoingEmail, build_bytes
    from shared.gmail.service import build_gmail
    from shared.send.flow import ROUND_TRIPS_HEADER
    from simulator.client import SimClient

    db = firestore.Client(project=stack.project_id)
    sim = SimClient(stack.simulator_url)
    auth = {"Authorization": f"Bearer {stack.secrets.crm_api_key}"}
    connect_all(stack, db, sim, auth)
    sim.settings(dailySendLimit=10_000_000, rateLimitUnitsPerSecond=10_000_000,
                 projectRateLimitUnitsPerSecond=10_000_000)
    url = stack.function_url("send_email")
    run_id = time.monotonic_ns()

    phases = iter(range(1_000_000))

    def function(one_contact: bool) -> Callable[[int, int], int]:
        phase = next(phases)  # every phase sends with keys of its own (no replays)

        def call(i: int, worker: int) -> int:
            who = 0 if one_contact else worker
            status, headers, body = http("POST", url, {
                "accountId": ACCOUNT, "userId": f"rep{who}", "contactId": f"c{who}", "subject": "Benchmark",
                "text": f"message {i}", "idempotencyKey": f"bench-{run_id}-{phase}-{i}-{worker}"}, auth)
            if status != 200:
                raise RuntimeError(f"send_email answered {status}: {body[:200]!r}")
            return int(headers.get(ROUND_TRIPS_HEADER, "0"))
        return call

    services: dict[tuple[int, int], Any] = {}

    def bare(one_mailbox: bool) -> Callable[[int, int], None]:
        phase = next(phases)

        def call(i: int, worker: int) -> None:
            who = 0 if one_mailbox else worker
            key = (who, threading.get_ident())  # httplib2 is not thread-safe: one client per thread
            if key not in services:
                services[key] = build_gmail(credentials_for(
                    mailbox_id(rep(who)), rep(who), load_refresh_token(mailbox_id(rep(who)))))
            raw = build_bytes(OutgoingEmail(from_address=rep(who), to_address=contact_email(who), subject="Benchmark",
                                            message_id=f"<bare-{run_id}-{phase}-{i}-{worker}@bench>",
                                            text=f"message {i}"))
            services[key].users().messages().send(
                userId="me", body={"raw": base64.urlsafe_b64encode(raw).decode()}).execute()
        return call

    if args.cold_only:
        return {"cold": measure_cold(stack, auth, args.cold, run_id)}
    # The sync would sync every Sent message meanwhile: on this machine it competes for the same 2 CPUs and the
    # one emulator process; in production it runs on instances of its own. Off unless --with-sync.
    quiet = {} if args.with_sync else {"notifications": {"dropRate": 1}}
    sim.set_faults({"seed": 0, "methods": {}, **quiet})
    print("warming up …", flush=True)
    for w in range(REPS):  # every rep once through the function (its mailbox cached) and the bare client
        function(False)(10_000_000, w)
        bare(False)(10_000_000, w)
    r: dict[str, Any] = {}
    print("measuring at the simulator's own speed …", flush=True)
    log_path = stack.log_dir / "function-send_email.log"
    seen = len(log_path.read_text(errors="replace").splitlines())
    r["bare, sequential"], r["send_email, sequential"] = compare(
        bare(True), function(True), args.sequential, 1, block=1)
    r["phases"] = phases_from_log(log_path.read_text(errors="replace").splitlines()[seen:])
    r["bare, 8 concurrent, 8 mailboxes"], r["send_email, 8 concurrent to 8 contacts"] = compare(
        bare(False), function(False), args.concurrent, 8, block=16)
    r["bare, 8 concurrent, one mailbox"], r["send_email, 8 concurrent to one contact"] = compare(
        bare(True), function(True), args.concurrent, 8, block=16)
    print(f"measuring with a Gmail-like messages.send latency {GMAIL_LIKE} …", flush=True)

    def same_latencies(block_start: int) -> None:
        sim.set_faults({"seed": SEED + block_start, "methods": {"messages.send": GMAIL_LIKE}, **quiet})

    r["bare, sequential, Gmail-like"], r["send_email, sequential, Gmail-like"] = compare(
        bare(True), function(True), args.gmail_like, 1, block=1, same_latencies=same_latencies)
    r["bare, 8 concurrent, 8 mailboxes, Gmail-like"], r["send_email, 8 concurrent to 8 contacts, Gmail-like"] = \
        compare(bare(False), function(False), args.gmail_like, 8, block=16, same_latencies=same_latencies)
    sim.set_faults({"seed": 0, "methods": {}, **quiet})
    print(f"phases of a sequential send (median ms): {r['phases']}", flush=True)
    for name, p in r.items():
        if not isinstance(p, Phase):
            continue
        trips = f"  round trips {statistics.median(p.trips):.0f} (max {max(p.trips)})" if p.trips else ""
        print(f"{name:52s} {p.rps:7.1f} req/s  p50 {p.p50:7.1f} ms  p99 {p.p99:7.1f} ms{trips}", flush=True)
    if args.cold:
        print("cold start …", flush=True)
        r["cold"] = measure_cold(stack, auth, args.cold, run_id)
        print(f"cold start: {r['cold']}", flush=True)
    return r


def measure_cold(stack: Stack, auth: dict[str, str], runs: int, run_id: int) -> dict[str, Any]:
    def body(k: int) -> dict[str, Any]:
        return {"accountId": ACCOUNT, "userId": "rep1", "contactId": "c1", "subject": "Cold", "text": "first",
                "idempotencyKey": f"cold-{run_id}-{k}"}

    env = stack.process_env({"PYTHONUNBUFFERED": "1"})  # with the stack's DAILY_SEND_LIMIT
    return cold_start.measure(env, auth, body, runs, stack.run_dir / "cold-start.log")


def write_table(out: Path, r: dict[str, Any], load_before: float, load_after: float, with_sync: bool) -> None:
    def added(fn: str, bare: str) -> str:
        return f"{r[fn].p50 - r[bare].p50:.1f} ms"

    rows = [(name, p) for name, p in r.items() if isinstance(p, Phase)]
    lines = [
        "# Send path benchmark",
        "",
        f"`scripts/bench_send.py` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, load average "
        f"{load_before:.1f} when it started and {load_after:.1f} when it ended (other work on the machine inflates "
        "every figure). Local stack: Firestore and Pub/Sub emulators, Google simulator, functions-framework. "
        f"{REPS} reps with one contact each, text-only messages of ~200 bytes. "
        + ("gmail_push syncs the Sent messages meanwhile (`--with-sync`)." if with_sync else
           "The simulator drops its watch notifications during the run, so gmail_push does not sync the Sent "
           "messages meanwhile: on this machine it would compete for the same 2 CPUs and the one emulator "
           "process, in production it runs on instances of its own (`--with-sync` measures with it)."),
        "",
        "| path | requests | req/s | p50 ms | p99 ms | Firestore round trips per send (median, max) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, p in rows:
        trips = f"{statistics.median(p.trips):.0f}, {max(p.trips)}" if p.trips else "-"
        lines.append(f"| {name} | {p.n} | {p.rps:.1f} | {p.p50:.1f} | {p.p99:.1f} | {trips} |")
    ratio = r["send_email, sequential, Gmail-like"].p50 / r["bare, sequential, Gmail-like"].p50
    ratio8 = (r["send_email, 8 concurrent to 8 contacts, Gmail-like"].p50
              / r["bare, 8 concurrent, 8 mailboxes, Gmail-like"].p50)
    lines += [
        "",
        "| figure (issue 12 bar) | value |",
        "|---|---:|",
        f"| sequential Firestore round trips, happy path (at most 5) | "
        f"{statistics.median(r['send_email, sequential'].trips):.0f} |",
        f"| added latency p50, sequential (at most 45 ms) | {added('send_email, sequential', 'bare, sequential')} |",
        f"| added latency p50, 8 concurrent to 8 contacts | "
        f"{added('send_email, 8 concurrent to 8 contacts', 'bare, 8 concurrent, 8 mailboxes')} |",
        f"| added latency p50, 8 concurrent to one contact | "
        f"{added('send_email, 8 concurrent to one contact', 'bare, 8 concurrent, one mailbox')} |",
        f"| Gmail-like latency: send_email p50 / bare p50, sequential (at most 1.15) | {ratio:.3f} |",
        f"| Gmail-like latency: send_email p50 / bare p50, 8 concurrent to 8 contacts | {ratio8:.3f} |",
    ]
    if "cold" in r:
        c, ms = r["cold"], r["cold"]["ms"]
        lines += [
            "| cold start as deployed: a functions-framework process, spawn to first answer, send_email / baseline "
            f"(at most 1.15) | {c['ratio']:.2f} (median of {c['runs']} interleaved rounds {c['ratios']}; medians "
            f"{ms['send']:.0f} ms / {ms['baseline']:.0f} ms) |",
            "| the same, like for like: the baseline's collector paused as send_email's is | "
            f"{c['like_for_like']:.2f} ({c['like_for_like_ratios']}; baseline {ms['paused']:.0f} ms) |",
            "| in one interpreter after functions-framework: import main + first send / import the libraries | "
            f"{c['in_interpreter']:.2f} ({c['in_interpreter_ratios']}; {ms['send_in']:.0f} ms / "
            f"{ms['libs_in']:.0f} ms) |",
        ]
    if r.get("phases"):
        lines += ["", "Where a sequential send's time goes inside the function (median ms per phase, from its own log; "
                  "the rest of the added latency is the HTTP hop and functions-framework):", "",
                  "| " + " | ".join(PHASES) + " |", "|" + "---:|" * len(PHASES),
                  "| " + " | ".join(f"{r['phases'].get(p, 0):.0f}" for p in PHASES) + " |"]
    lines += ["", NOTES, ""]
    out.write_text("\n".join(lines))
    print(f"wrote {out}", flush=True)


NOTES = """\
Before (0.1, as issue 12 measured it on this machine): 11 sequential round trips per send; sequential p50
128.8 ms against a bare messages.send p50 of 4.7 ms (about 124 ms added); 8 concurrent (all to one contact)
23.1 req/s against 127.9.

How to read it:

- *Round trips* are counted by the code (shared/core/roundtrips.py): each Firestore call notes itself, a group
  of concurrent calls counts as its longest branch. A warm send makes 3: one batched read (user, contact, link,
  mailbox, token, idempotency record, conversation, parent), one commit for the idempotency record and the
  day's slot, one commit for the thread map, the message and the result (the conversation summary is written
  beside it). An instance's first send for a user adds one (the mailbox and token, whose id it then remembers);
  a slot collision, a concurrent retry or a crashed attempt take the general path, one write at a time.
- *Bare vs send_email* run in alternating blocks (one request each when sequential, 16 when concurrent), so
  both see the same machine load as it drifts (other work on this 2-core machine changes it by the minute).
- *Added latency* is send_email's p50 minus the bare messages.send p50 of the same phase. It includes the HTTP
  hop to functions-framework, request parsing and MIME building, the three round trips and the event's Publish
  request. Concurrency is bounded by one functions-framework process on 2 CPUs; Cloud Functions scales out by
  instances, and each concurrent send costs the function, the emulator and the simulator CPU on the same 2
  cores, so the concurrent figures measure this machine more than the design. "8 to one contact" makes every
  send move the same conversation summary: the sends of one instance take turns on it, each guarding its write
  with the update time the previous one wrote (0.1 let them conflict, sleep and retry).
- *Gmail-like latency*: the simulator draws messages.send's latency from a log-normal distribution, median
  300 ms and 90th percentile 600 ms (`{"latencyMs": 300, "latencyP90Ms": 600}`, docs/SIMULATOR.md). Google
  publishes no latency figures for the Gmail API and no public measurement was found to cite; this is an
  assumption: sending is the Gmail API's slowest call (100 quota units: it stores the message, threads it and
  hands it to SMTP), and client reports put it in the hundreds of milliseconds. A lower median is the harder
  case for the ratio (the same added milliseconds weigh more), so the figure errs low. Both sides draw the same
  latencies: the fault seed is set again before each block of either side.
- *Cold start* (scripts/cold_start.py): as deployed, a functions-framework process (the command the local
  stack runs) from its spawn to its first answer: send_email serving a first send, against a function that
  only imports the client libraries send_email imports on its path (scripts/cold_baseline_main.py; the script
  checks that a first send imports every one of them). Both sides pay the interpreter, functions-framework
  and its server; the rounds interleave (the order alternates) and each figure is the median of the rounds'
  ratios. send_email runs an instance's first request with Python's garbage collector paused
  (shared/core/coldstart.py): the collector otherwise rescans the libraries' objects again and again while
  they load, about 45 ms of their import here. That saving is real for the send, but it is not overhead
  taken out of the project's own code, so the second figure pauses the baseline's collector too: what is
  left is the project's own overhead (its modules, some 40 dataclasses, ~30 ms to import; the first
  request's secrets, channels, access token and Gmail client). The third is the figure first reported for
  0.2: in one interpreter, after functions-framework, `import main` and the first send through a Flask test
  request, against importing the libraries (the test request's own modules are now imported on both sides
  before the clock starts). The send overlaps CPU with network (shared/send/warmup.py): Secret Manager's
  reads go out while Firestore's library loads; Gmail's client, then Pub/Sub's generated client (not the
  batching one, which the send never used: it publishes its one event itself), load in one background
  thread while the request waits for Firestore, Gmail and its log commit. Both sides load bytecode: pip
  compiled the libraries at install, the script byte-compiles the project's modules first (this machine
  sets PYTHONDONTWRITEBYTECODE)."""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sequential", type=int, default=60)
    ap.add_argument("--concurrent", type=int, default=160)
    ap.add_argument("--gmail-like", type=int, default=60)
    ap.add_argument("--cold", type=int, default=7, help="cold start runs (0: skip)")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "BENCHMARKS_SEND.md")
    ap.add_argument("--run-dir", type=Path, default=None, help="keep the stack's logs there")
    ap.add_argument("--cold-only", action="store_true", help="only the cold start; print it, write nothing")
    ap.add_argument("--with-sync", action="store_true", help="let gmail_push sync the Sent messages meanwhile")
    args = ap.parse_args()

    load_before = os.getloadavg()[0]
    stack = Stack(StackSettings(run_dir=args.run_dir, function_env={"DAILY_SEND_LIMIT": "1000000"}))
    print("starting the local stack …", flush=True)
    stack.start()
    try:
        results = run(stack, args)
    finally:
        stack.stop()
    if args.cold_only:
        print(results["cold"])
        return 0
    write_table(args.out, results, load_before, os.getloadavg()[0], args.with_sync)
    return 0


if __name__ == "__main__":
    sys.exit(main())
