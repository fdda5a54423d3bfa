"""Benchmark of the Gmail → CRM sync through the whole local stack (`make bench`).

N mailboxes x M messages are delivered into the Google simulator, whose watch
notifications go through the Pub/Sub emulator to the real `gmail_push` under
functions-framework, which writes to the Firestore emulator. Measured:

- throughput: synced messages / (last document written - first delivery);
- latency: per message, from the moment the simulator accepted it to the
  message document's `createdAt` (same machine clock), p50 / p99;
- Gmail quota units per synced message (GET /sim/stats, connect excluded), with the rep's read, star
  and trash traffic on the synced mail added (R19: label changes cost no messages.get);
- Firestore writes per message (the function's own count, from its log);
- peak RSS of the gmail_push process (VmHWM of the worker);
- cold start: a fresh interpreter importing `main` and serving a first
  gmail_push request, as a ratio to importing the client libraries alone.

Prints a Markdown table and writes it to docs/BENCHMARKS_SYNC.md.
Usage: .venv/bin/python scripts/bench_sync.py [--mailboxes 4] [--messages 250]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from devstack.procs import group_members  # noqa: E402
from devstack.stack import Stack, StackSettings  # noqa: E402
from simulator.client import SimClient  # noqa: E402

RETURN_URL = "http://localhost:5173/settings"
CLIENT_LIBS = ("import google.cloud.firestore, google.cloud.pubsub, googleapiclient.discovery, "
               "google.oauth2.credentials, google_auth_httplib2, httplib2, google.cloud.secretmanager")


def raw_mail(frm: str, to: str, subject: str) -> bytes:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"], m["Message-ID"] = frm, to, subject, make_msgid(domain="bench.test")
    m.set_content(f"Benchmark message {subject}.\nSecond line of a short business email.\n")
    return m.as_bytes()


def connect(stack: Stack, sim: SimClient, account: str, user: str, gmail: str) -> None:
    import requests

    auth = {"Authorization": f"Bearer {stack.secrets.crm_api_key}"}
    url = stack.function_url("oauth")
    r = requests.post(f"{url}/connect", json={"accountId": account, "userId": user, "returnUrl": RETURN_URL},
                      headers=auth, timeout=30)
    r.raise_for_status()
    from devstack.rep_browser import connect_in_browser

    back = connect_in_browser(sim, r.json()["authorizationUrl"], gmail)
    status = parse_qs(urlsplit(back.headers["Location"]).query).get("status")
    if status != ["connected"]:
        raise SystemExit(f"connect failed for {gmail}: {back.headers['Location']}")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def peak_rss_mb(stack: Stack, name: str) -> float:
    proc = stack.processes[f"function:{name}"]
    best = 0
    for pid in group_members(proc.pgid):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    best = max(best, int(line.split()[1]))
        except OSError:
            continue
    return best / 1024


def cold_start(env: dict[str, str], address: str) -> tuple[float, float]:
    """(import main + first gmail_push request, import of the client libraries alone), seconds, median of 5.

    The first request is a forced sync of a connected, up-to-date mailbox: it reads secrets, refreshes the
    token, calls history.list and writes the cursor, i.e. every client library the function uses."""
    event = {"message": {"data": base64.b64encode(json.dumps(
        {"emailAddress": address, "force": True}).encode()).decode()}}
    prog = f"""
import time, types
t = time.perf_counter()
import main
from functions.gmail_push import handle
handle(types.SimpleNamespace(data={event!r}))
print(time.perf_counter() - t)
"""
    base = f"import time\nt = time.perf_counter()\n{CLIENT_LIBS}\nprint(time.perf_counter() - t)\n"
    full_env = {**os.environ, **env}

    def run(code: str) -> float:
        out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=full_env, capture_output=True,
                             text=True, check=True, timeout=120)
        return float(out.stdout.strip().splitlines()[-1])

    fn = statistics.median(run(prog) for _ in range(5))
    libs = statistics.median(run(base) for _ in range(5))
    return fn, libs


def steady_latencies(db: Any, sim: SimClient, reps: list[str], contacts: list[str], seconds: float,
                     rate: float) -> list[float]:
    """Latency at a steady arrival rate (the burst above measures a backlog instead)."""
    delivered: dict[str, float] = {}
    lock = threading.Lock()

    def deliver(rep: str) -> None:
        n = 0
        end = time.time() + seconds
        while time.time() < end:
            got = sim.deliver(rep, raw_mail(contacts[n % len(contacts)], rep, f"steady {rep} #{n}"))
            with lock:
                delivered[got["id"]] = time.time()
            n += 1
            time.sleep(1 / rate)

    with ThreadPoolExecutor(len(reps)) as pool:
        list(pool.map(deliver, reps))
    written: dict[str, float] = {}
    deadline = time.monotonic() + 120
    while len(written) < len(delivered) and time.monotonic() < deadline:
        for snap in db.collection_group("messages").stream():
            d = snap.to_dict() or {}
            if d.get("gmailMessageId") in delivered:
                written[d["gmailMessageId"]] = d["createdAt"].timestamp()
        time.sleep(0.5)
    return [written[g] - delivered[g] for g in delivered if g in written]


def label_traffic(db: Any, sim: SimClient, by_rep: dict[str, list[str]]) -> tuple[int, float]:
    """The rep reads every synced message, stars every third and trashes every tenth, in Gmail (R19);
    returns the changes made and the seconds until every message document shows them."""
    want: dict[str, tuple[bool, bool]] = {}  # gmail id -> (starred, trashed)
    changes = 0

    def work(rep: str) -> int:
        n = 0
        for i, gid in enumerate(by_rep[rep]):
            sim.modify(rep, gid, remove=["UNREAD"])
            n += 1
            if i % 3 == 0:
                sim.modify(rep, gid, add=["STARRED"])
                n += 1
            if i % 10 == 0:
                sim.modify(rep, gid, add=["TRASH"], remove=["INBOX"])
                n += 1
        return n

    for ids in by_rep.values():
        for i, gid in enumerate(ids):
            want[gid] = (i % 3 == 0, i % 10 == 0)
    t0 = time.time()
    with ThreadPoolExecutor(len(by_rep)) as pool:
        changes = sum(pool.map(work, list(by_rep)))
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        pending = 0
        for snap in db.collection_group("messages").stream():
            d = snap.to_dict() or {}
            gid = d.get("gmailMessageId")
            if gid in want and (d.get("read"), d.get("starred"), d.get("trashed")) != (True, *want[gid]):
                pending += 1
        if not pending:
            return changes, time.time() - t0
        time.sleep(0.5)
    raise SystemExit(f"label changes not reflected within 300 s ({pending} messages behind)")


def function_writes(stack: Stack) -> int:
    total = 0
    log_path = stack.processes["function:gmail_push"].log_path
    for line in log_path.read_text(errors="replace").splitlines():
        if '"mailbox synced"' in line:
            try:
                total += int(json.loads(line).get("writes", 0))
            except ValueError:
                continue
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mailboxes", type=int, default=4)
    ap.add_argument("--messages", type=int, default=250, help="per mailbox")
    ap.add_argument("--contacts", type=int, default=50)
    ap.add_argument("--steady-seconds", type=float, default=10.0)
    ap.add_argument("--steady-rate", type=float, default=2.0, help="messages per second per mailbox")
    ap.add_argument("--out", default=str(REPO / "docs" / "BENCHMARKS_SYNC.md"))
    args = ap.parse_args()

    run_dir = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    stack = Stack(StackSettings(run_dir=run_dir))
    print(f"starting the local stack in {run_dir} …", file=sys.stderr)
    stack.start()
    try:
        os.environ.update(stack.env_for_clients())
        from google.cloud import firestore

        db = firestore.Client(project=stack.project_id)
        sim = SimClient(stack.simulator_url)
        contacts = [f"client{i}@client.test" for i in range(args.contacts)]
        for i, c in enumerate(contacts):
            db.document(f"accounts/bench/contacts/c{i}").set({"email": c, "name": f"C{i}",
                                                               "createdAt": datetime.now(UTC)})
        deadline = time.monotonic() + 60  # the contacts_index trigger (R11b) has indexed every contact
        while len(list(db.collection("sync_contact_index").select([]).stream())) < len(contacts):
            if time.monotonic() > deadline:
                raise SystemExit("contacts not indexed within 60 s (is the Firestore trigger feeder running?)")
            time.sleep(0.2)
        reps = [f"rep{i}@gmail.test" for i in range(args.mailboxes)]
        for i, rep in enumerate(reps):
            db.document(f"accounts/bench/users/u{i}").set({"email": f"u{i}@bench.test", "name": f"U{i}"})
            connect(stack, sim, "bench", f"u{i}", rep)
        base_units = {rep: sum(sim.stats()["quotaUnits"].get(rep, {}).values()) for rep in reps}
        base_writes = function_writes(stack)

        delivered: dict[str, float] = {}  # gmail id -> epoch seconds when Gmail accepted it
        by_rep: dict[str, list[str]] = {rep: [] for rep in reps}
        lock = threading.Lock()

        def deliver(rep: str) -> None:
            for n in range(args.messages):
                k = (n * 7 + reps.index(rep)) % len(contacts)
                got = sim.deliver(rep, raw_mail(contacts[k], rep, f"{rep} #{n}"))
                with lock:
                    delivered[got["id"]] = time.time()
                    by_rep[rep].append(got["id"])

        print(f"delivering {args.mailboxes} x {args.messages} messages …", file=sys.stderr)
        t0 = time.time()
        with ThreadPoolExecutor(args.mailboxes) as pool:
            list(pool.map(deliver, reps))
        t_delivered = time.time()
        written: dict[str, float] = {}
        deadline = time.monotonic() + 600
        while len(written) < len(delivered) and time.monotonic() < deadline:
            for snap in db.collection_group("messages").stream():
                data = snap.to_dict() or {}
                gid = data.get("gmailMessageId")
                if gid and gid not in written:
                    written[gid] = data["createdAt"].timestamp()
            time.sleep(0.5)
        if len(written) < len(delivered):
            raise SystemExit(f"only {len(written)} of {len(delivered)} messages synced in time")
        time.sleep(1.5)  # let the last pass finish its cursor write and log line
        mail_units = sum(sum(sim.stats()["quotaUnits"].get(rep, {}).values()) - base_units[rep] for rep in reps)
        writes = function_writes(stack) - base_writes  # new mail only (label changes write their own)
        changes, change_seconds = label_traffic(db, sim, by_rep)
        time.sleep(1.5)
        units = sum(sum(sim.stats()["quotaUnits"].get(rep, {}).values()) - base_units[rep] for rep in reps)
        per_method: dict[str, int] = {}
        for rep in reps:
            for m, u in sim.stats()["quotaUnits"].get(rep, {}).items():
                per_method[m] = per_method.get(m, 0) + u
        latencies = [written[g] - delivered[g] for g in delivered]
        n = len(delivered)
        elapsed = max(written.values()) - t0
        steady = steady_latencies(db, sim, reps, contacts, args.steady_seconds, args.steady_rate)
        rss = peak_rss_mb(stack, "gmail_push")
        fn_cold, libs = cold_start(stack.base_function_env(), reps[0])

        rows = [
            ("messages synced", f"{n} ({args.mailboxes} mailboxes x {args.messages})"),
            ("delivery duration (simulator accepting all messages)", f"{t_delivered - t0:.1f} s"),
            ("throughput (first delivery → last document)", f"{n / elapsed:.1f} messages/s"),
            ("burst: latency delivery → Firestore, p50", f"{pct(latencies, 0.5) * 1000:.0f} ms"),
            ("burst: latency delivery → Firestore, p99", f"{pct(latencies, 0.99) * 1000:.0f} ms"),
            (f"steady load ({args.steady_rate}/s per mailbox, {len(steady)} messages): latency p50",
             f"{pct(steady, 0.5) * 1000:.0f} ms"),
            ("steady load: latency p99", f"{pct(steady, 0.99) * 1000:.0f} ms"),
            ("Gmail quota units per synced message, new mail only", f"{mail_units / n:.2f}"),
            (f"Gmail quota units per synced message, with {changes} read/star/trash changes",
             f"{units / n:.2f}"),
            ("read/star/trash changes: all reflected in the CRM after", f"{change_seconds:.1f} s"),
            ("Firestore writes per synced message", f"{writes / n:.2f}"),
            ("peak RSS of the gmail_push process", f"{rss:.0f} MB"),
            ("cold start: import + first request", f"{fn_cold * 1000:.0f} ms"),
            ("cold start: client libraries imported alone", f"{libs * 1000:.0f} ms"),
            ("cold start ratio", f"{fn_cold / libs:.2f}"),
        ]
        table = "| measure | value |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows)
        methods = ", ".join(f"{m} {u}" for m, u in sorted(per_method.items()))
        doc = (
            "# Sync benchmark\n\n"
            f"Produced by `make bench` (`.venv/bin/python scripts/bench_sync.py --mailboxes {args.mailboxes} "
            f"--messages {args.messages}`) on {datetime.now(UTC):%Y-%m-%d}, {os.cpu_count()} cores, "
            "everything local (emulators, simulator, functions-framework) on one machine, under Gmail's "
            f"`{sim.stats()['limits']['model']}` quota model (the simulator's `quotaModel`).\n\n"
            f"{table}\n\nQuota units by method (connect included): {methods}.\n\n"
            "Units per message: the floor is one messages.get (20 units under the 2026 model, 5 under legacy) plus "
            "a share of history.list (2 per call); "
            "connect's getProfile and watch are excluded. After the burst the rep reads every message in Gmail, "
            "stars every third and trashes every tenth (R19): those changes arrive as history records with the "
            "labels and cost only history.list calls, no messages.get. Writes per message count message "
            "documents, thread "
            "maps, conversation updates, cursor moves and lease writes. Latency includes the simulator's "
            "notification pacing (at most one per mailbox per second, as Gmail).\n"
        )
        print(table)
        Path(args.out).write_text(doc)
        print(f"\nwritten to {args.out}", file=sys.stderr)
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
