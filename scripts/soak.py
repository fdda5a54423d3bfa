"""Time-compressed soak of the sync at scale (`make soak MAILBOXES=N LIFETIMES=K`).

N mailboxes are connected through the real oauth function; the simulator's
Gmail watches last LIFETIME seconds instead of 7 days, and every tick that
depends on that is shortened with it (the renewal window is 2/7 of a
lifetime, the daily tick 1/7, the sweep of a mailbox with a live watch half
a lifetime, the scheduler's sweep tick 1/30 of that, as in production). Mail
flows the whole time (inbound from contacts, the reps writing from Gmail,
strangers that must not sync). The soak plays Cloud Scheduler: it publishes
`{"sweep": true}` and the daily tick. Everything else is the product:
Pub/Sub push subscriptions into gmail_push and quota_reset, the Firestore
emulator, the Google simulator.

At the end it waits until every mailbox has caught up and counts:
- expired: watch lapses the simulator saw (a change while the watch had
  expired, or a renewal after expiry) plus watches expired at the end;
- lost / duplicated: expected messages missing / stored more than once
  (anything stored that should not have been fails the run too);
- reads per sweep against the mailboxes due in it (from gmail_push's own
  per-invocation counts: shared/core/roundtrips.py);
- Gmail units (the simulator's counters), Firestore reads, writes and
  invocations (the functions' own counts) per mailbox-hour of the run.

Its last line: `soak: N mailboxes, K watch lifetimes, expired E, lost L,
duplicated D, reads per sweep R against U due, per mailbox-hour: Gmail units
G, Firestore reads FR, writes FW, invocations I`; exit status 0 only when
E = L = D = 0 and everything caught up. `--json PATH` writes every figure,
including the per-event costs docs/SCALE.md is computed from.

Usage: .venv/bin/python scripts/soak.py [--mailboxes 1000] [--lifetimes 2] [--lifetime-seconds 240]
       [--mail-per-second 2] [--json .devstack/soak.json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import sys
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from devstack.stack import Stack, StackSettings  # noqa: E402

PER_ACCOUNT = 20  # reps per CRM account
CONTACTS_PER_ACCOUNT = 12
STRANGER_SHARE = 0.1
REP_WRITES_SHARE = 0.15
READS_SHARE = 0.3  # the rep opens a message in Gmail: a label change, a notification, nothing to store
SOAK_FUNCTIONS = ("oauth", "gmail_push", "quota_reset")


@dataclass
class Settings:
    mailboxes: int = 1000
    lifetimes: int = 2
    lifetime_seconds: float = 240.0
    mail_per_second: float = 3.0
    connect_workers: int = 2  # the emulator serialises concurrent connect transactions beyond this
    drain_seconds: float = 180.0
    shards: int = 16
    seed: int = 11
    renew_fraction: float = 2 / 7  # production: renew within 48 h of a 7-day watch

    @property
    def renew_within(self) -> int:
        return max(2, int(self.lifetime_seconds * self.renew_fraction))

    @property
    def daily_tick(self) -> float:
        return max(1.0, self.lifetime_seconds / 7)

    @property
    def sweep_seconds(self) -> int:
        return max(2, int(self.lifetime_seconds / 2))

    @property
    def stale_seconds(self) -> int:
        return max(1, int(self.lifetime_seconds / 20))

    @property
    def sweep_tick(self) -> float:
        return max(1.0, self.sweep_seconds / 30)

    def function_env(self) -> dict[str, str]:
        """The functions' ticks, shortened with the watch lifetime."""
        return {
            "WATCH_RENEW_WITHIN_SECONDS": str(self.renew_within),
            "SYNC_SWEEP_SECONDS": str(self.sweep_seconds),
            "SYNC_STALE_SECONDS": str(self.stale_seconds),
            "SYNC_SWEEP_SHARDS": str(self.shards),
            "SYNC_LEASE_SECONDS": "20",
        }


@dataclass
class Outcome:
    settings: dict[str, Any]
    seconds: float = 0.0
    connect_seconds: float = 0.0
    caught_up: bool = False
    expired: int = 0
    lapses: int = 0
    expired_at_end: int = 0
    lost: int = 0
    duplicated: int = 0
    unexpected: int = 0
    expected: int = 0
    sweeps: int = 0
    sweep_reads: float = 0.0
    sweep_due: float = 0.0
    gmail_units: int = 0
    gmail_units_by_method: dict[str, int] = field(default_factory=dict)
    gmail_calls_by_method: dict[str, int] = field(default_factory=dict)  # when the simulator counts calls
    quota_model: str = "legacy"  # the simulator's quota model (scripts/scale_model.py prices under both)
    firestore_reads: int = 0
    firestore_writes: int = 0
    invocations: int = 0
    per_mailbox_hour: dict[str, float] = field(default_factory=dict)
    per_event: dict[str, dict[str, float]] = field(default_factory=dict)
    rounds_to_message_written_max: int = 0  # over steady passes: SPEC §5's bound is 6
    scan_passes: int = 0  # invocations that paid an account's one-time contact-index scan (R11b)
    rounds_to_message_written_scan_max: int = 0  # the same figure over those (not bounded by §5)
    watch_renewals: int = 0
    label_changes: int = 0
    gmail_push_cpu_seconds: float = 0.0  # user + system CPU of the gmail_push process group during the run
    simulated_days: float = 0.0  # watch lifetimes run, as days of production (a lifetime is 7 days)

    def ok(self) -> bool:
        return self.caught_up and self.expired == 0 and self.lost == 0 and self.duplicated == 0 \
            and self.unexpected == 0

    def last_line(self) -> str:
        s = self.settings
        pmh = self.per_mailbox_hour
        return (f"soak: {s['mailboxes']} mailboxes, {s['lifetimes']} watch lifetimes, expired {self.expired}, "
                f"lost {self.lost}, duplicated {self.duplicated}, reads per sweep {self.sweep_reads:.1f} against "
                f"{self.sweep_due:.1f} due, per mailbox-hour: Gmail units {pmh.get('gmailUnits', 0):.1f}, "
                f"Firestore reads {pmh.get('firestoreReads', 0):.1f}, writes {pmh.get('firestoreWrites', 0):.1f}, "
                f"invocations {pmh.get('invocations', 0):.1f}")


def doc_id_of(raw: bytes, gmail_id: str) -> str:
    """The message document's id: the account's one record of the mail's Message-ID (R25)."""
    from email import message_from_bytes, policy

    from shared.crm import paths

    header = message_from_bytes(raw, policy=policy.default).get("Message-ID")
    return paths.message_doc_id(str(header) if header else None, gmail_id)


def _mail(frm: str, to: str, subject: str) -> bytes:
    from email.message import EmailMessage
    from email.utils import make_msgid

    m = EmailMessage()
    m["From"], m["To"], m["Subject"], m["Message-ID"] = frm, to, subject, make_msgid(domain="soak.test")
    m.set_content(f"Soak message {subject}.\nA short business email.\n")
    return m.as_bytes()


class World:
    """The CRM's data and the reps, as the soak seeds them."""

    def __init__(self, stack: Stack, settings: Settings, log: Any = print) -> None:
        from google.cloud import firestore

        from simulator.client import SimClient

        self.log = log
        self.stack = stack
        self.s = settings
        self.sim = SimClient(stack.simulator_url)
        self.db = firestore.Client(project=stack.project_id)
        self.reps = [f"soak{i:05d}@gmail.test" for i in range(settings.mailboxes)]
        self.accounts = [f"acct{i // PER_ACCOUNT:04d}" for i in range(settings.mailboxes)]
        self.contacts: dict[str, list[str]] = {}

    def seed(self) -> None:
        batch, n = self.db.batch(), 0
        now = datetime.now(UTC)
        for acct in sorted(set(self.accounts)):
            batch.set(self.db.document(f"accounts/{acct}"), {"name": acct})
            self.contacts[acct] = [f"client{k}.{acct}@client.test" for k in range(CONTACTS_PER_ACCOUNT)]
            for k, address in enumerate(self.contacts[acct]):
                batch.set(self.db.document(f"accounts/{acct}/contacts/c{k}"),
                          {"email": address, "name": f"Client {k}", "createdAt": now})
                n += 1
            if n > 400:
                batch.commit()
                batch, n = self.db.batch(), 0
        for i, _rep in enumerate(self.reps):
            batch.set(self.db.document(f"accounts/{self.accounts[i]}/users/u{i}"),
                      {"email": f"u{i}@{self.accounts[i]}.example", "name": f"Rep {i}"})
            n += 1
            if n > 400:
                batch.commit()
                batch, n = self.db.batch(), 0
        batch.commit()

    def connect_all(self) -> None:
        from tests.e2e.oauth_steps import connect, crm_for

        crm = crm_for(self.stack)

        def one(i: int) -> None:
            got: Any = None
            for attempt in range(3):
                try:
                    got = connect(crm, self.sim, self.accounts[i], f"u{i}", self.reps[i])
                    if got == {"status": "connected"}:
                        return
                except Exception as exc:
                    got = exc
                    if attempt == 2:
                        raise
                time.sleep(1)
            raise RuntimeError(f"could not connect {self.reps[i]}: {got}")

        done = [0]
        started = time.monotonic()

        def counted(i: int) -> None:
            one(i)
            done[0] += 1
            if done[0] % 100 == 0:
                self.log(f"soak: {done[0]} connected ({time.monotonic() - started:.0f} s)")

        with ThreadPoolExecutor(self.s.connect_workers) as pool:
            list(pool.map(counted, range(len(self.reps))))


class Mail:
    """Mail flowing the whole time; remembers what must end up in the CRM."""

    def __init__(self, world: World, rate: float, rng: random.Random) -> None:
        self.w = world
        self.rate = rate
        self.rng = rng
        self.expected: dict[str, str] = {}  # message document id -> account
        self.strangers: set[str] = set()
        self.inbox: dict[str, list[str]] = defaultdict(list)  # rep -> delivered message ids (to open later)
        self.stop = threading.Event()
        self.errors = 0
        self.label_changes = 0

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            i = self.rng.randrange(len(self.w.reps))
            rep, acct = self.w.reps[i], self.w.accounts[i]
            contact = self.rng.choice(self.w.contacts[acct])
            kind = self.rng.random()
            try:
                if self.rng.random() < READS_SHARE and self.inbox[rep]:
                    self.w.sim.modify(rep, self.rng.choice(self.inbox[rep]), remove=["UNREAD"])
                    self.label_changes += 1
                elif kind < STRANGER_SHARE:
                    raw = _mail(f"stranger{n}@nowhere.test", rep, f"offer {n}")
                    got = self.w.sim.deliver(rep, raw)
                    self.strangers.add(doc_id_of(raw, got["id"]))
                elif kind < STRANGER_SHARE + REP_WRITES_SHARE:
                    raw = _mail(rep, contact, f"{rep} writes #{n}")
                    got = self.w.sim.send_as_user(rep, raw)
                    self.expected[doc_id_of(raw, got["id"])] = acct
                else:
                    raw = _mail(contact, rep, f"{contact} writes #{n}")
                    got = self.w.sim.deliver(rep, raw)
                    self.expected[doc_id_of(raw, got["id"])] = acct
                    self.inbox[rep].append(str(got["id"]))
            except Exception:
                self.errors += 1
            n += 1
            self.stop.wait(self.rng.expovariate(self.rate))


class Ticker:
    """Cloud Scheduler's two jobs, at the soak's compressed periods."""

    def __init__(self, stack: Stack, settings: Settings) -> None:
        self.stack = stack
        self.s = settings
        self.stop = threading.Event()
        self.sweeps = 0
        self.ticks = 0

    def run(self) -> None:
        next_sweep = time.monotonic()
        next_daily = time.monotonic() + self.s.daily_tick
        while not self.stop.is_set():
            now = time.monotonic()
            if now >= next_sweep:
                self.stack.pubsub.publish("sync-control", b'{"sweep": true}')
                self.sweeps += 1
                next_sweep += self.s.sweep_tick
            if now >= next_daily:
                self.stack.pubsub.publish("daily-tick", b'{"tick": "daily"}')
                self.ticks += 1
                next_daily += self.s.daily_tick
            self.stop.wait(max(0.05, min(next_sweep, next_daily) - time.monotonic()))


class LogTail:
    """The functions' log lines written after a point (their own per-invocation counts)."""

    def __init__(self, stack: Stack) -> None:
        self.paths = {fn: stack.log_dir / f"function-{fn}.log" for fn in ("gmail_push", "quota_reset")}
        self.offsets = {fn: (p.stat().st_size if p.exists() else 0) for fn, p in self.paths.items()}

    def lines(self) -> list[tuple[str, dict[str, Any]]]:
        out = []
        for fn, path in self.paths.items():
            if not path.exists():
                continue
            with open(path, "rb") as f:
                f.seek(self.offsets[fn])
                for raw in f:
                    if raw.startswith(b"{"):
                        try:
                            out.append((fn, json.loads(raw)))
                        except ValueError:
                            continue
        return out


def caught_up(world: World) -> bool:
    from shared.crm import paths

    snaps = {s.id: s.to_dict() or {} for s in world.db.collection("sync_mailboxes").select(["historyId"]).stream()}
    for rep in world.reps:
        target = int(world.sim.mailbox(rep)["historyId"])
        cursor = snaps.get(paths.mailbox_id(rep), {}).get("historyId")
        if cursor is None or int(cursor) < target:
            return False
    return True


def count_messages(world: World, mail: Mail, out: Outcome) -> None:
    seen: dict[str, list[str]] = defaultdict(list)
    for snap in world.db.collection_group("messages").select(["gmailMessageId"]).stream():
        seen[snap.id].append(snap.reference.path)
    out.expected = len(mail.expected)
    out.lost = len(set(mail.expected) - set(seen))
    out.duplicated = sum(1 for paths_ in seen.values() if len(paths_) > 1)
    out.unexpected = len(set(seen) - set(mail.expected))


def summarise_logs(lines: list[tuple[str, dict[str, Any]]], out: Outcome) -> None:
    events: dict[str, list[dict[str, Any]]] = defaultdict(list)
    sweep_reads = sweep_due = 0
    for fn, d in lines:
        fs = d.get("firestore")
        if not isinstance(fs, dict) or "reads" not in fs:
            continue
        out.invocations += 1
        out.firestore_reads += int(fs["reads"])
        out.firestore_writes += int(fs["writes"])
        kind = d.get("invocation") or fn
        if kind == "sweep_shard":
            sweep_reads += int(fs["reads"])
            sweep_due += int(d.get("due", 0))
        key = kind if kind in ("sweep", "sweep_shard", "daily_tick") else f"{kind}:{d.get('outcome')}"
        if d.get("outcome") == "synced":
            key += ":stored" if d.get("stored") else ":empty"
        events[key].append({"reads": fs["reads"], "writes": fs["writes"], "rounds": fs["rounds"],
                            "stored": d.get("stored", 0), "renewed": bool(d.get("renewed"))})
        if d.get("renewed"):
            out.watch_renewals += 1
        scanned = "roundsTo_contact_index_scan" in fs
        out.scan_passes += scanned
        if "roundsTo_message_written" in fs:
            if scanned:
                out.rounds_to_message_written_scan_max = max(out.rounds_to_message_written_scan_max,
                                                             int(fs["roundsTo_message_written"]))
            else:
                out.rounds_to_message_written_max = max(out.rounds_to_message_written_max,
                                                        int(fs["roundsTo_message_written"]))
    sweeps = max(1, out.sweeps)
    out.sweep_reads, out.sweep_due = sweep_reads / sweeps, sweep_due / sweeps
    for key, rows in sorted(events.items()):
        n = len(rows)
        out.per_event[key] = {"count": n, **{f: round(sum(float(r[f]) for r in rows) / n, 3)
                                             for f in ("reads", "writes", "rounds", "stored")},
                              "renewedShare": round(sum(1 for r in rows if r["renewed"]) / n, 3)}


def cpu_seconds(stack: Stack, name: str) -> float:
    """User + system CPU seconds of a function's process group so far (Linux /proc)."""
    import os

    from devstack.procs import group_members

    proc = stack.processes.get(f"function:{name}")
    if proc is None:
        return 0.0
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in group_members(proc.pgid):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            continue
    return total / tick


def run_soak(stack: Stack, settings: Settings, log: Any = print) -> Outcome:
    """The soak against a running stack whose oauth, gmail_push and quota_reset have
    `settings.function_env()` (the caller starts or restarts them so)."""
    out = Outcome(settings={**asdict(settings), "renewWithin": settings.renew_within,
                            "dailyTick": settings.daily_tick, "sweepSeconds": settings.sweep_seconds,
                            "staleSeconds": settings.stale_seconds, "sweepTick": settings.sweep_tick})
    rng = random.Random(settings.seed)
    world = World(stack, settings, log)
    world.sim.settings(watchLifetimeSeconds=int(settings.lifetime_seconds))
    world.seed()
    ticker = Ticker(stack, settings)  # the scheduler runs from the first connection on, as in production
    threads = [threading.Thread(target=ticker.run, daemon=True)]
    threads[0].start()
    t = time.monotonic()
    world.connect_all()
    out.connect_seconds = time.monotonic() - t
    log(f"soak: connected {settings.mailboxes} mailboxes in {out.connect_seconds:.0f} s; "
        f"running {settings.lifetimes} x {settings.lifetime_seconds:.0f} s")
    tail = LogTail(stack)
    cpu_before = cpu_seconds(stack, "gmail_push")
    before = world.sim.stats()
    units_before, calls_before = before["quotaUnits"], before.get("calls", {})
    sweeps_before = ticker.sweeps
    mail = Mail(world, settings.mail_per_second, rng)
    threads.append(threading.Thread(target=mail.run, daemon=True))
    started = time.monotonic()
    threads[1].start()
    end = started + settings.lifetimes * settings.lifetime_seconds
    while time.monotonic() < end:
        time.sleep(min(10.0, max(0.1, end - time.monotonic())))
        w = world.sim.stats()["watches"]
        log(f"soak: {time.monotonic() - started:.0f} s, {len(mail.expected)} messages, watches {w}")
    mail.stop.set()
    drain_end = time.monotonic() + settings.drain_seconds
    while time.monotonic() < drain_end:
        time.sleep(2)
        if caught_up(world):
            out.caught_up = True
            break
    ticker.stop.set()
    for th in threads:
        th.join(10)
    out.seconds = time.monotonic() - started
    out.gmail_push_cpu_seconds = cpu_seconds(stack, "gmail_push") - cpu_before
    out.simulated_days = out.seconds / settings.lifetime_seconds * 7
    out.sweeps = ticker.sweeps - sweeps_before
    time.sleep(1.5)  # the last invocations' log lines
    stats = world.sim.stats()
    watches = stats["watches"]
    out.lapses, out.expired_at_end = int(watches["lapses"]), int(watches["expired"])
    out.expired = out.lapses + out.expired_at_end
    count_messages(world, mail, out)
    out.label_changes = mail.label_changes
    units: Counter[str] = Counter()
    for address, methods in stats["quotaUnits"].items():
        for method, n in methods.items():
            units[method] += int(n) - int(units_before.get(address, {}).get(method, 0))
    out.gmail_units_by_method = dict(units)
    out.gmail_units = sum(units.values())
    out.gmail_calls_by_method = dict(sum((Counter({m: int(n) - int(calls_before.get(a, {}).get(m, 0))
                                                   for m, n in methods.items()})
                                          for a, methods in stats.get("calls", {}).items()), Counter()))
    out.quota_model = str(stats.get("limits", {}).get("model") or "legacy")  # a simulator before 0.3: legacy
    summarise_logs(tail.lines(), out)
    hours = settings.mailboxes * out.seconds / 3600
    out.per_mailbox_hour = {"gmailUnits": out.gmail_units / hours, "firestoreReads": out.firestore_reads / hours,
                            "firestoreWrites": out.firestore_writes / hours, "invocations": out.invocations / hours}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mailboxes", type=int, default=1000)
    ap.add_argument("--lifetimes", type=int, default=2)
    ap.add_argument("--lifetime-seconds", type=float, default=240.0)
    ap.add_argument("--mail-per-second", type=float, default=3.0)
    ap.add_argument("--shards", type=int, default=16)
    ap.add_argument("--json", type=Path, default=REPO / ".devstack" / "soak.json")
    ap.add_argument("--keep-logs", type=Path, default=None, help="copy the functions' logs here at the end")
    args = ap.parse_args()
    settings = Settings(mailboxes=args.mailboxes, lifetimes=args.lifetimes, lifetime_seconds=args.lifetime_seconds,
                        mail_per_second=args.mail_per_second, shards=args.shards)
    stack = Stack(StackSettings(functions=SOAK_FUNCTIONS, function_env=settings.function_env()))
    with stack:
        import os

        os.environ.update(stack.env_for_clients())  # this process's Firestore client talks to the emulator
        out = run_soak(stack, settings)
        if args.keep_logs:
            import shutil

            shutil.copytree(stack.log_dir, args.keep_logs, dirs_exist_ok=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(asdict(out), indent=2, default=str) + "\n")
    print(f"soak: {out.expected} messages expected, {out.unexpected} stored that should not be, caught up "
          f"{out.caught_up}, {out.watch_renewals} renewals, at most {out.rounds_to_message_written_max} rounds to "
          f"a message written in a steady pass ({out.rounds_to_message_written_scan_max} in the "
          f"{out.scan_passes} invocations that ran an account's one-time contact-index scan); details in {args.json}")
    for line in cost_page(asdict(out)):
        print(line)
    print(out.last_line())
    return 0 if out.ok() else 1


def cost_page(outcome: dict[str, Any]) -> list[str]:
    """The run priced by docs/SCALE.md's model (the same functions, scripts/scale_model.py)."""
    spec = importlib.util.spec_from_file_location("scale_model", REPO / "scripts" / "scale_model.py")
    assert spec and spec.loader
    model = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("scale_model", model)  # dataclasses look their module up
    spec.loader.exec_module(model)
    lines: list[str] = model.soak_cost_page(outcome)
    return lines


if __name__ == "__main__":
    sys.exit(main())
