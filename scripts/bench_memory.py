"""Memory of gmail_push and auto_bcc under 8 concurrent 25 MB messages (issue 21, R32).

Starts its own local stack, connects 8 reps of one account (one contact),
then:

- gmail_push: delivers one 25 MB message (an 18 MB attachment, base64 in the
  raw message, and a short body) into each of the 8 mailboxes at once; Gmail's
  8 notifications reach gmail_push together, and each pass keeps the message
  whole in Cloud Storage (the emulator): bodies, and the attachment cut out of
  one raw fetch;
- auto_bcc: posts 8 Auto BCC copies of 25 MB at once.

For each function it reports the resident set size of its process group
before and its peak (VmHWM, reset before each phase through
/proc/PID/clear_refs) and the deploy setting it must stay under.

    .venv/bin/python scripts/bench_memory.py [--messages 8] [--mb 25]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from devstack.procs import group_members  # noqa: E402
from devstack.stack import Stack, StackSettings  # noqa: E402
from simulator.client import SimClient  # noqa: E402

sys.path.insert(0, str(REPO / "scripts"))
from bench_sync import connect  # noqa: E402

CONTACT = "client@client.test"
DEPLOY_MEMORY_MB = {"gmail_push": 512, "auto_bcc": 1024}  # deploy.sh's function table


def _pids(stack: Stack, name: str) -> list[int]:
    return list(group_members(stack.processes[f"function:{name}"].pgid))


def _status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_mb(stack: Stack, name: str, field: str = "VmRSS") -> float:
    """The largest process of the function's group (gunicorn's worker serves the requests)."""
    return max((_status_kb(pid, field) for pid in _pids(stack, name)), default=0) / 1024


def reset_peak(stack: Stack, name: str) -> None:
    for pid in _pids(stack, name):
        try:
            Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        except OSError:
            pass


def big_mail(frm: str, to: str, size_mb: float, bcc: str | None = None) -> bytes:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"], m["Message-ID"] = frm, to, "Big files", make_msgid(domain="bench.test")
    if bcc:
        m["Bcc"] = bcc
    m.set_content("The files you asked for.\n")
    payload = os.urandom(int(size_mb * 1024 * 1024 * 3 / 4) - 4096)  # base64 makes it size_mb in the raw mail
    m.add_attachment(payload, maintype="application", subtype="octet-stream", filename="files.bin")
    return m.as_bytes()


def wait_messages(db: Any, count: int, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if len(list(db.collection_group("messages").select([]).stream())) >= count:
            return time.monotonic() - started
        time.sleep(0.5)
    raise SystemExit(f"{count} messages not logged within {timeout} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=8, help="concurrent messages (and reps)")
    ap.add_argument("--mb", type=float, default=25.0, help="size of each raw message")
    ap.add_argument("--no-storage", action="store_true",
                    help="functions without a mail bucket (0.2's behaviour), for comparison")
    args = ap.parse_args()

    run_dir = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    stack = Stack(StackSettings(run_dir=run_dir, functions=("oauth", "gmail_push", "auto_bcc"),
                                function_env={"STORAGE_BUCKET": ""} if args.no_storage else {}))
    print(f"starting the local stack in {run_dir} …", file=sys.stderr)
    stack.start()
    rows: list[tuple[str, float, float, float, float]] = []
    try:
        os.environ.update(stack.env_for_clients())
        import requests
        from google.cloud import firestore

        db = firestore.Client(project=stack.project_id)
        sim = SimClient(stack.simulator_url)
        db.document("accounts/mem/contacts/client").set({"email": CONTACT, "name": "Client",
                                                          "createdAt": datetime.now(UTC)})
        reps = [f"rep{i}@gmail.test" for i in range(args.messages)]
        for i, rep in enumerate(reps):
            db.document(f"accounts/mem/users/u{i}").set({"email": f"u{i}@mem.test", "name": f"U{i}"})
            connect(stack, sim, "mem", f"u{i}", rep)
        mails = [big_mail(f"Client <{CONTACT}>", rep, args.mb) for rep in reps]
        print(f"raw message size {len(mails[0]) / 1e6:.1f} MB", file=sys.stderr)

        reset_peak(stack, "gmail_push")
        before = rss_mb(stack, "gmail_push")
        with ThreadPoolExecutor(len(reps)) as pool:
            list(pool.map(lambda pair: sim.deliver(pair[0], pair[1]), zip(reps, mails, strict=True)))
        seconds = wait_messages(db, len(reps), 600)
        rows.append(("gmail_push", before, rss_mb(stack, "gmail_push", "VmHWM"), seconds, len(mails[0]) / 1e6))
        print(f"gmail_push: peak {rows[-1][2]:.0f} MiB", file=sys.stderr)

        auth = {"Authorization": f"Bearer {stack.secrets.crm_api_key}"}
        bccs = [requests.get(f"{stack.function_url('oauth')}/status", params={"accountId": "mem", "userId": f"u{i}"},
                             headers=auth, timeout=30).json()["autoBccAddress"] for i in range(len(reps))]
        copies = [big_mail(rep, CONTACT, args.mb, bcc=bcc) for rep, bcc in zip(reps, bccs, strict=True)]
        del mails
        reset_peak(stack, "auto_bcc")
        before = rss_mb(stack, "auto_bcc")
        t = time.monotonic()

        def post(pair: tuple[str, bytes]) -> int:
            resp = requests.post(stack.function_url("auto_bcc"), params={"to": pair[0]}, data=pair[1], timeout=300,
                                 headers={"Authorization": f"Bearer {stack.secrets.inbound_api_key}",
                                          "Content-Type": "message/rfc822"})
            return resp.status_code

        with ThreadPoolExecutor(len(copies)) as pool:
            codes = list(pool.map(post, zip(bccs, copies, strict=True)))
        if any(c not in (200, 201) for c in codes):
            print(f"auto_bcc answered {codes}", file=sys.stderr)
        rows.append(("auto_bcc", before, rss_mb(stack, "auto_bcc", "VmHWM"), time.monotonic() - t,
                     len(copies[0]) / 1e6))
    finally:
        stack.stop()
    kept = "not kept: no mail bucket" if args.no_storage else "kept whole in Cloud Storage"
    print(f"\n{args.messages} concurrent messages of {args.mb:.0f} MB ({kept}):")
    print("| function | RSS before | peak RSS | deploy memory | seconds for all | raw MB each |")
    print("|---|---|---|---|---|---|")
    for name, before, peak, seconds, size in rows:
        print(f"| {name} | {before:.0f} MiB | {peak:.0f} MiB | {DEPLOY_MEMORY_MB[name]} MiB | {seconds:.1f} "
              f"| {size:.1f} |")


if __name__ == "__main__":
    main()
