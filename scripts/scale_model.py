"""docs/SCALE.md: what the sync costs and where it stops, under Gmail's 2026 quota model (the legacy one beside it).

Two kinds of input, kept apart so either can be replaced:
- measured: a soak's per-invocation Firestore reads, writes and round trips
  and gmail_push's CPU (`scripts/soak.py --json`), and optionally the Gmail
  units per rep-day `scripts/bench_quota.py` measured on the issue's mix
  (`--units-per-rep-day N --units-model 2026`);
- stated: a rep's day (the issue's mix, `RepDay`), Google's published limits
  and list prices, the sizes of what Cloud Storage keeps (`StorageProfile`)
  and the deployment's settings (`Deployment`). The page prints them all.

Why a model and not only a soak: the soak runs one gmail_push process under a
compressed clock, so it cannot show what only scale does (Cloud Run keeping
instances at 60 % of their concurrency, per-instance caches going cold across
many instances, the per-project Gmail limits, storage that only grows).
Every formula is a small function here; tests/unit/test_scale_units.py checks
the arithmetic and scripts/soak.py prints its cost page with the same functions.

Usage: .venv/bin/python scripts/scale_model.py [docs/SCALE.soak.json] [--out docs/SCALE.md]
       [--units-per-rep-day N [--units-model 2026|legacy]]
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# The per-method unit tables are the sync's own (one copy: the pacer spends by them).
from shared.gmail.pacing import HEADROOM, LEGACY_UNITS, UNITS_2026  # noqa: E402

DAY = 86_400
MONTH_DAYS = 30
KB = 1000  # Pub/Sub bills at least 1,000 bytes per publish, push or pull request
TIB = 2**40
GIB = 2**30

# ---- Gmail's quota models ("Gmail API usage limits", Google's quota page) ---------------------------------


@dataclass(frozen=True)
class QuotaModel:
    """Gmail's usage limits as one Cloud project meets them."""

    name: str
    units: Mapping[str, int]  # quota units per call, by method (short names, as /sim/stats counts them)
    user_units_per_minute: int
    project_units_per_minute: int
    daily_threshold: int | None  # units a project may spend a day before Google bills (None: no threshold)


MODELS: dict[str, QuotaModel] = {
    # projects created on or after 1 May 2026 (every new deployment)
    "2026": QuotaModel("2026", UNITS_2026, 6_000, 1_200_000, 80_000_000),
    # older projects: 15,000 a minute (Google's former "250 per second, moving average"), no daily threshold
    "legacy": QuotaModel("legacy", LEGACY_UNITS, 15_000, 1_200_000, None),
}
PACE_HEADROOM = HEADROOM  # the sync paces a mailbox at 90 % of the per-user limit in force


# ---- a rep's day: the mix --------------------------------------------------------------------------


@dataclass(frozen=True)
class RepDay:
    """One rep's day (issue 22's mix). Every received or sent message is one Gmail notification
    and one sync pass (no coalescing assumed); the sync's units follow from it."""

    contacts_primary: int = 20  # mail from contacts, Primary tab
    contacts_updates: int = 5  # mail from contacts Gmail files under Updates (not skipped: logged)
    sent_from_gmail: int = 10  # the rep writes to contacts from Gmail
    crm_sends: int = 20  # sent through send_email (already logged: the sync needs no get for them)
    categories: int = 30  # Promotions / Social / Forums (skipped by default, settings/emailSync.skipCategories)
    strangers: int = 15  # Primary mail from no contact (fetched, then not logged)
    label_changes: int = 100  # read / star / trash in Gmail (R19: history records, no get)
    sweeps: float = 48  # forced syncs: one per quiet half hour (an idle pass: one history.list)
    renewals: float = 1 / 5  # a watch renewal every 5 days (watch + the pass it rides on)
    # beyond the sync's own passes
    attachment_share: float = 0.2  # logged messages from Gmail with attachments: one format=raw get each (R32)
    crm_changes: float = 10  # R33: the CRM marks a logged message read / starred / trashed (messages.modify)
    busiest_hour: float = 3.0  # the busiest hour against the day's average (a working day)

    @property
    def contacts(self) -> int:
        return self.contacts_primary + self.contacts_updates

    @property
    def notifications(self) -> int:
        return (self.contacts + self.sent_from_gmail + self.crm_sends + self.categories + self.strangers
                + self.label_changes)

    @property
    def logged(self) -> int:
        """Messages logged to the CRM a day (the ones Cloud Storage keeps bodies for, R32)."""
        return self.contacts + self.sent_from_gmail + self.crm_sends

    @property
    def invocations(self) -> float:
        """gmail_push invocations: one pass per notification, per sweep and per renewal."""
        return self.notifications + self.sweeps + self.renewals


STRATEGIES = ("naive", "category-aware", "category-aware + watch filter")


@dataclass(frozen=True)
class Call:
    what: str
    method: str
    calls: float


def sync_calls(day: RepDay, strategy: str = "category-aware") -> list[Call]:
    """The sync's Gmail calls per rep-day. naive: every added message is fetched before the rules drop it;
    category-aware: no messages.get for the skipped categories (their history record carries the labels);
    + watch filter: Gmail's watch excludes those labels (labelFilterBehavior), so they cost no pass either."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy: one of {STRATEGIES}")
    skip = strategy != "naive"
    passes = day.notifications - (day.categories if strategy.endswith("watch filter") else 0)
    gets = day.contacts + day.sent_from_gmail + day.strangers + (0 if skip else day.categories)
    return [
        Call("a pass per notification", "history.list", passes),
        Call("a sweep per quiet half hour", "history.list", day.sweeps),
        Call("a renewal's pass", "history.list", day.renewals),
        Call("messages fetched (contacts, the rep's own, strangers" + ("" if skip else ", categories") + ")",
             "messages.get", gets),
        Call("watch renewal", "watch", day.renewals),
    ]


def other_calls(day: RepDay) -> list[Call]:
    """Gmail calls outside the sync's passes that count against the same project quota."""
    return [
        Call("CRM sends (send_email)", "messages.send", day.crm_sends),
        Call("attachments kept whole: one raw fetch per logged message with any (R32)", "messages.get",
             (day.contacts + day.sent_from_gmail) * day.attachment_share),
        Call("the CRM's read/star/trash made in Gmail (R33)", "messages.modify", day.crm_changes),
    ]


def units(calls: Iterable[Call], model: QuotaModel) -> float:
    """Quota units of `calls` under `model`."""
    return sum(c.calls * model.units[c.method] for c in calls)


def calls_from_units(units_by_method: Mapping[str, float], model: QuotaModel) -> dict[str, float]:
    """Calls per method from units a simulator charged under `model` (a soak that counted units only)."""
    return {m: u / model.units[m] for m, u in units_by_method.items() if model.units.get(m)}


def units_of_calls(calls_by_method: Mapping[str, float], model: QuotaModel) -> float:
    return sum(n * model.units.get(m, 0) for m, n in calls_by_method.items())


def reps_under_threshold(units_per_rep_day: float, model: QuotaModel) -> int | None:
    """Connected reps one project holds under the daily no-charge threshold (None: the model has none)."""
    if model.daily_threshold is None:
        return None
    return math.floor(model.daily_threshold / units_per_rep_day)


def project_units_per_minute(units_per_rep_day: float, reps: int, busiest_hour: float) -> float:
    """Units a minute the whole project spends in the busiest hour."""
    return units_per_rep_day * reps / (DAY / 60) * busiest_hour


def pace(model: QuotaModel, headroom: float = PACE_HEADROOM) -> float:
    """Units a second the sync spends on one mailbox's backlog."""
    return model.user_units_per_minute / 60 * headroom


def backlog_seconds(messages: int, model: QuotaModel, headroom: float = PACE_HEADROOM,
                    history_page: int = 100) -> float:
    """Seconds to catch up `messages` new messages at the sync's pace (headroom 1.0: Gmail's floor):
    one messages.get each plus one history.list per page of records."""
    spend = messages * model.units["messages.get"] + math.ceil(messages / history_page) * model.units["history.list"]
    return spend / pace(model, headroom)


def mailboxes_at_full_pace(model: QuotaModel, headroom: float = PACE_HEADROOM) -> float:
    """Backlogs that can catch up at once before the project's per-minute limit refuses (a mass reconnect)."""
    return model.project_units_per_minute / (model.user_units_per_minute * headroom)


# ---- Cloud Run, Pub/Sub, caches, Cloud Storage ----------------------------------------------------------


def deployed(path: Path = REPO / "deploy.sh") -> dict[str, float]:
    """gmail_push's memory, max instances and concurrency and the subscriptions' delivery attempts as
    deploy.sh sets them (so the page follows a change there), {} when it cannot tell."""
    try:
        text = path.read_text()
    except OSError:
        return {}
    out: dict[str, float] = {}
    m = re.search(r'^\s*"gmail_push\s+\S+\s+\S+\s+(\d+)Mi/\d+s/(\d+)/(\d+)\s', text, re.M)  # FUNCTION_TABLE's row
    if m:
        out.update(memory_gib=int(m[1]) / 1024, gmail_push_max_instances=int(m[2]), gmail_push_concurrency=int(m[3]))
    m = re.search(r'^MAX_DELIVERY_ATTEMPTS="\$\{MAX_DELIVERY_ATTEMPTS:-(\d+)\}"', text, re.M)
    if m:
        out["max_delivery_attempts"] = int(m[1])
    return out


_DEPLOYED = deployed()


@dataclass(frozen=True)
class Deployment:
    """What deploy.sh sets and what the sync's code does, as far as scale is concerned."""

    gmail_push_max_instances: int = int(_DEPLOYED.get("gmail_push_max_instances", 30))
    gmail_push_concurrency: int = int(_DEPLOYED.get("gmail_push_concurrency", 4))
    target_utilisation: float = 0.6  # Cloud Run keeps instances at 60 % of their concurrency (and CPU)
    pass_seconds: float = 0.5  # production latency of one gmail_push invocation (Gmail ~150 ms a call)
    memory_gib: float = _DEPLOYED.get("memory_gib", 0.5)
    max_delivery_attempts: int = int(_DEPLOYED.get("max_delivery_attempts", 10))  # then the dead-letter topic
    users_cache_seconds: float = 300.0  # SYNC_USERS_CACHE_SECONDS
    users_per_account: int = 20  # an account's CRM users, all of them connected reps (as the soak's accounts)
    contacts_per_rep: int = 500  # the account's contacts, per connected rep
    contact_rescan_days: float = 7.0  # shared/crm/contact_index.py REFRESH_DAYS
    shards: int = 16  # SYNC_SWEEP_SHARDS


def in_flight(invocations_per_day: float, pass_seconds: float, busiest_hour: float = 1.0) -> float:
    """Invocations running at once (Little's law), at the day's average or its busiest hour."""
    return invocations_per_day / DAY * busiest_hour * pass_seconds


def instances_needed(concurrent: float, concurrency: int, target: float = 0.6) -> int:
    """Instances Cloud Run runs for `concurrent` requests: it keeps each at `target` of its concurrency."""
    return math.ceil(concurrent / (concurrency * target)) if concurrent > 0 else 0


def max_instances_for(concurrent_peak: float, concurrency: int, target: float = 0.6, margin: float = 1.25) -> int:
    """A --max-instances that serves the busiest hour at Cloud Run's target with `margin` for bursts,
    rounded up to ten: below it a burst is answered 429, which Pub/Sub counts as a failed delivery."""
    return int(math.ceil(instances_needed(concurrent_peak, concurrency, target) * margin / 10) * 10)


def billed_instance_seconds(invocations: float, pass_seconds: float, concurrency: int, target: float = 0.6) -> float:
    """Instance-seconds billed (request-based billing: an instance is billed while it serves any request;
    at the target it serves concurrency x target requests at a time)."""
    return invocations * pass_seconds / (concurrency * target)


def pubsub_bytes(publishes: float, deliveries: float, message_bytes: float = 0.0) -> float:
    """Billed Pub/Sub throughput: publish and every delivery (push included), at least 1,000 bytes each."""
    return (publishes + deliveries) * max(KB, message_bytes)


def distinct_instances(instances: int, passes: float) -> float:
    """Expected number of instances `passes` land on when Pub/Sub spreads them evenly over `instances`."""
    if instances <= 0 or passes <= 0:
        return 0.0
    return instances * (1 - (1 - 1 / instances) ** passes)


def users_cache_reads_per_rep_day(day: RepDay, d: Deployment, instances: int) -> float:
    """Reads of the account's users (one per user document) per rep and day across `instances`: each
    instance reads them the first time it syncs a mailbox of the account in a cache window
    (SYNC_USERS_CACHE_SECONDS). One instance (the soak) reads them once a window."""
    windows = DAY / d.users_cache_seconds
    passes_per_window = day.invocations * d.users_per_account / windows
    return windows * distinct_instances(instances, passes_per_window)


def users_reads_per_instance_start(reps: int) -> int:
    """A new instance reads the users of every account it serves: at scale, every account's."""
    return reps


def contact_rescan_reads_per_rep_day(d: Deployment) -> float:
    """R11b's check: each contact is read once (the page) and its key once (get_all), every REFRESH_DAYS."""
    return d.contacts_per_rep * 2 / d.contact_rescan_days


@dataclass(frozen=True)
class StorageProfile:
    """What Cloud Storage keeps per logged message (R32; assumed sizes, stated in the page)."""

    body_bytes: int = 24_000  # text + HTML bodies of an ordinary business mail, two objects
    body_objects: int = 2
    attachments_per_message: float = 0.3  # R32 keeps every attachment's bytes (0.2 of messages x 1.5)
    attachment_bytes: int = 300_000
    reads_per_message: float = 1.5  # objects read back (a whole body opened, an attachment downloaded)


def storage_for(messages: float, s: StorageProfile) -> dict[str, float]:
    """Bytes written, class A (insert) and class B (get) operations for `messages` logged messages."""
    return {"bytes": messages * (s.body_bytes + s.attachments_per_message * s.attachment_bytes),
            "class_a": messages * (s.body_objects + s.attachments_per_message),
            "class_b": messages * s.reads_per_message}


def storage_per_rep_day(day: RepDay, s: StorageProfile) -> dict[str, float]:
    return storage_for(day.logged, s)


def storage_usd(st: Mapping[str, float], months_kept: float) -> float:
    """What `st` costs: its bytes kept `months_kept` months, its operations once."""
    return (st["bytes"] / GIB * PRICES["storage_gib_month"] * months_kept + st["class_a"] * PRICES["storage_class_a"]
            + st["class_b"] * PRICES["storage_class_b"])


# ---- list prices (USD, tier-1 region such as us-central1, free tiers ignored) -------------------------------
PRICES = {
    "firestore_read": 0.06 / 100_000,
    "firestore_write": 0.18 / 100_000,
    "firestore_delete": 0.02 / 100_000,
    "run_vcpu_second": 0.000024,
    "run_gib_second": 0.0000025,
    "run_request": 0.40 / 1_000_000,
    "pubsub_tib": 40.0,  # publish and delivery alike
    "logging_gib": 0.50,
    "storage_gib_month": 0.020,  # Standard, regional ($0.000027397 per GiB-hour)
    "storage_class_a": 0.05 / 10_000,
    "storage_class_b": 0.004 / 10_000,
}
# ---- other published limits -----------------------------------------------------------------------------
LIMITS = {
    "firestore_writes_per_s_per_db": 10_000,  # standard guidance before asking for more
    "firestore_index_range_writes_per_s": 500,  # sequential (near-now) values in one index range
}
SCALES = (100, 10_000, 100_000, 1_000_000)


# ---- the soak's measured per-event costs -------------------------------------------------------------------


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def event(soak: Mapping[str, Any], *keys: str) -> dict[str, float]:
    """The first per-event row among `keys` the soak measured (averages per invocation)."""
    for k in keys:
        row = soak["per_event"].get(k)
        if row and row["count"]:
            return {k2: float(v) for k2, v in row.items()}
    return {"count": 0, "reads": 0.0, "writes": 0.0, "rounds": 0.0, "stored": 0.0}


def costs(soak: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """Per-event Firestore costs the model uses, from the soak."""
    stored_pass = event(soak, "notification:synced:stored", "notification:synced")
    empty_pass = event(soak, "notification:synced:empty", "force:synced:empty", "notification:synced")
    idle = event(soak, "force:idle")
    renew = event(soak, "renew:idle", "renew:synced:empty")
    shard = event(soak, "sweep_shard")
    due_total = soak["sweep_due"] * soak["sweeps"]
    out = {
        "message pass (per stored message)": {
            "reads": stored_pass["reads"] / max(stored_pass["stored"], 1e-9),
            "writes": stored_pass["writes"] / max(stored_pass["stored"], 1e-9),
            "rounds": stored_pass["rounds"], "count": stored_pass["count"]},
        "empty notification pass": {"reads": empty_pass["reads"], "writes": empty_pass["writes"],
                                    "rounds": empty_pass["rounds"], "count": empty_pass["count"]},
        "forced sync, idle (sweep)": {"reads": idle["reads"], "writes": idle["writes"], "rounds": idle["rounds"],
                                      "count": idle["count"]},
        "sweep, per due mailbox": {"reads": 1.0,  # a query bills one read per document it returns
                                   "writes": shard["writes"] * shard["count"] / max(due_total, 1),
                                   "rounds": shard["rounds"], "count": due_total},
        "watch renewal": {"reads": renew["reads"], "writes": renew["writes"], "rounds": renew["rounds"],
                          "count": renew["count"]},
        "sweep shard tick (fixed)": {"reads": 1.0, "writes": 0.0, "rounds": 1.0, "count": shard["count"]},
    }
    invocations = max(1, soak["invocations"])
    out["_cpu_seconds_per_invocation"] = {"value": soak["gmail_push_cpu_seconds"] / invocations
                                          if soak.get("gmail_push_cpu_seconds") else 0.05}
    return out


def soak_quota_model(soak: Mapping[str, Any]) -> QuotaModel:
    """The model the soak's simulator charged under (runs before 0.3 recorded none: legacy)."""
    return MODELS.get(str(soak.get("quota_model") or "legacy"), MODELS["legacy"])


def soak_calls(soak: Mapping[str, Any]) -> dict[str, float]:
    """Gmail calls per method the soak made (counted by the simulator, else derived from its units)."""
    calls = soak.get("gmail_calls_by_method")
    if calls:
        return {m: float(n) for m, n in calls.items()}
    return calls_from_units(soak.get("gmail_units_by_method", {}), soak_quota_model(soak))


@dataclass
class Inputs:
    """Everything one page is computed from."""

    soak: Mapping[str, Any]
    day: RepDay = field(default_factory=RepDay)
    deployment: Deployment = field(default_factory=Deployment)
    storage: StorageProfile = field(default_factory=StorageProfile)
    measured_units: float | None = None  # units per rep-day from scripts/bench_quota.py
    measured_model: str = "2026"


def sync_units_per_rep_day(inp: Inputs, model: QuotaModel) -> float:
    """The sync's units per rep-day: bench_quota's measured figure under its model, else the category-aware mix."""
    if inp.measured_units is not None and model.name == inp.measured_model:
        return inp.measured_units
    return units(sync_calls(inp.day), model)


def gmail_units_per_rep_day(inp: Inputs, model: QuotaModel) -> float:
    """Everything the deployment spends from the project's Gmail quota per rep-day."""
    return sync_units_per_rep_day(inp, model) + units(other_calls(inp.day), model)


def firestore_per_rep_day(inp: Inputs, instances: int) -> dict[str, float]:
    """Reads, writes and TTL deletes per rep and day: the soak's per-event costs times the mix, plus the
    users cache cold across `instances` and the weekly contact-index check, which the soak does not see."""
    c, day = costs(inp.soak), inp.day
    empty = day.notifications - day.logged
    rows = [(c["message pass (per stored message)"], day.logged), (c["empty notification pass"], empty),
            (c["forced sync, idle (sweep)"], day.sweeps), (c["sweep, per due mailbox"], day.sweeps),
            (c["watch renewal"], day.renewals)]
    measured_reads = sum(r["reads"] * n for r, n in rows) + day.renewals  # the daily fan-out reads due ones
    # counted whole: the soak's compressed clock left only a few per cent of its reads to the users cache
    cold = users_cache_reads_per_rep_day(day, inp.deployment, instances)
    rescan = contact_rescan_reads_per_rep_day(inp.deployment)
    return {"measured reads": measured_reads, "users cache cold": cold, "contact-index check": rescan,
            "reads": measured_reads + cold + rescan, "writes": sum(r["writes"] * n for r, n in rows),
            "deletes": day.crm_sends * 2.0}  # TTL: a send slot and an idempotency record per send


def pubsub_per_rep_day(day: RepDay, nack_share: float = 0.0) -> dict[str, float]:
    """Messages published and delivered a day: Gmail's notifications, the sync's control messages
    (sweep, renewal) and the CRM events (one per logged message, one subscription assumed);
    `nack_share` of the push deliveries are redelivered after a 429."""
    control = day.sweeps + day.renewals
    publishes = day.notifications + control + day.logged
    deliveries = (day.notifications + control) * (1 + nack_share) + day.logged
    return {"publishes": publishes, "deliveries": deliveries}


def fixed_per_day(shards: int = 16) -> dict[str, float]:
    """Independent of the number of reps: the sweep's shard queries (1,440 ticks a day) and the ticks."""
    return {"reads": shards * 1440, "invocations": shards * 1440 + 1440, "pubsub": shards * 1440 + 1440}


def gmail_push_instances(inp: Inputs, reps: int, busiest: bool) -> int:
    d = inp.deployment
    inv = inp.day.invocations * reps + fixed_per_day(d.shards)["invocations"]
    return instances_needed(in_flight(inv, d.pass_seconds, inp.day.busiest_hour if busiest else 1.0),
                            d.gmail_push_concurrency, d.target_utilisation)


def money(inp: Inputs, reps: int, months_kept: int = 12) -> dict[str, float]:
    """USD a month at `reps`. Cloud Storage: the bill after `months_kept` months of mail kept."""
    d, day = inp.deployment, inp.day
    instances = max(1, gmail_push_instances(inp, reps, busiest=False))
    fs = firestore_per_rep_day(inp, instances)
    f = fixed_per_day(d.shards)
    m = MONTH_DAYS
    inv = (day.invocations * reps + f["invocations"]) * m
    inst_s = billed_instance_seconds(inv, d.pass_seconds, d.gmail_push_concurrency, d.target_utilisation)
    ps = pubsub_per_rep_day(day)
    pubsub = pubsub_bytes(ps["publishes"] * reps + f["pubsub"], ps["deliveries"] * reps + f["pubsub"]) * m
    st = storage_per_rep_day(day, inp.storage)
    kept_gib = st["bytes"] * reps * m * months_kept / GIB
    log_gib = inv * 2 * 600 / GIB  # two JSON lines of ~600 bytes per invocation
    return {
        "Firestore reads": (fs["reads"] * reps + f["reads"]) * m * PRICES["firestore_read"],
        "Firestore writes": fs["writes"] * reps * m * PRICES["firestore_write"],
        "Firestore TTL deletes": fs["deletes"] * reps * m * PRICES["firestore_delete"],
        "Cloud Run (gmail_push) CPU": inst_s * PRICES["run_vcpu_second"],
        f"Cloud Run memory ({d.memory_gib} GiB)": inst_s * d.memory_gib * PRICES["run_gib_second"],
        "Cloud Run requests": inv * PRICES["run_request"],
        "Pub/Sub (publish + delivery)": pubsub / TIB * PRICES["pubsub_tib"],
        f"Cloud Storage, {months_kept} months kept": storage_usd({"bytes": kept_gib * GIB, "class_a": 0.0,
                                                                   "class_b": 0.0}, 1),
        "Cloud Storage operations": storage_usd({**st, "bytes": 0.0}, 0) * reps * m,
        "Cloud Logging": max(0.0, log_gib - 50) * PRICES["logging_gib"],
    }


@dataclass(frozen=True)
class Limit:
    short: str  # for sentences
    name: str
    limit: float
    knob: str
    load_per_rep: float  # the limit's unit per connected rep, busiest hour unless the name says otherwise
    refuses: bool = True  # passing it refuses or delays work (False: it only starts a bill)

    def reps_at_limit(self) -> float:
        return self.limit / self.load_per_rep if self.load_per_rep > 0 else math.inf


def limits(inp: Inputs) -> list[Limit]:
    """Each limit with the load one rep puts on it and the knob that moves it, sorted by the reps at which
    it is reached (the first is the first limit)."""
    day, d, m = inp.day, inp.deployment, MODELS["2026"]
    peak = day.busiest_hour
    total = gmail_units_per_rep_day(inp, m)
    fs = firestore_per_rep_day(inp, 1)
    cap = d.gmail_push_max_instances * d.gmail_push_concurrency * d.target_utilisation
    cap_name = (f"gmail_push instance cap ({d.gmail_push_max_instances} x concurrency {d.gmail_push_concurrency} "
                f"at Cloud Run's {d.target_utilisation:.0%} target: {cap:.0f} in flight), busiest hour")
    rows = [
        Limit("gmail_push's instance cap", cap_name, cap,
              "gmail_push `--max-instances` sized from this page (Deployment)",
              in_flight(day.invocations, d.pass_seconds, peak)),
        Limit("gmail_push's instance cap", "the same cap at the day's average", cap, "the same",
              in_flight(day.invocations, d.pass_seconds)),
        Limit("Gmail's daily no-charge threshold (billing, not refusals)",
              "Gmail daily no-charge threshold (units a day, every Gmail call of the project)",
              m.daily_threshold or math.inf,
              "fewer units (watch label filter, coalesced passes, a longer sweep) or more projects (cells): "
              "Google takes no requests to raise it", total, refuses=False),
        Limit("Gmail's per-project limit a minute (rateLimitExceeded)",
              "Gmail per-project units a minute, busiest hour", m.project_units_per_minute,
              "a quota increase request for the project (Cloud console), or cells",
              project_units_per_minute(total, 1, peak)),
        Limit("the message documents' near-now index ranges",
              "message documents a second into one near-now index range (`createdAt`/`sentAt`)",
              LIMITS["firestore_index_range_writes_per_s"],
              "exempt or prefix those single-field indexes (firestore.indexes.json)", day.logged / DAY * peak),
        Limit("Firestore's write guidance", "Firestore writes a second, busiest hour",
              LIMITS["firestore_writes_per_s_per_db"],
              "ramp traffic up (500/50/5) and ask for more; or a database per cell", fs["writes"] / DAY * peak),
    ]
    return sorted(rows, key=Limit.reps_at_limit)


def passed_limits(inp: Inputs, reps: int, sized: bool = False) -> list[Limit]:
    """The limits `reps` pass, first first; `sized`: with gmail_push's cap sized for them (max_instances_for)."""
    return [lim for lim in limits(inp) if lim.reps_at_limit() <= reps
            and not (sized and lim.short == "gmail_push's instance cap")]


def first_limit(inp: Inputs, reps: int, sized: bool = False) -> Limit | None:
    """The first limit `reps` pass (as deployed, or with gmail_push's cap sized for them), or None."""
    passed = passed_limits(inp, reps, sized)
    return passed[0] if passed else None


# ---- the page ------------------------------------------------------------------------------------------------


def fmt(x: float) -> str:
    if x == math.inf:
        return "never"
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.1f}"
    if x >= 0.1:
        return f"{x:.2f}"
    return f"{x:.3f}"


def cost_page(inp: Inputs, scales: tuple[int, ...] = SCALES) -> list[str]:
    """The cost table (markdown lines) from the model; `make soak` prints it for its own run."""
    bills = {n: money(inp, n) for n in scales}
    out = ["| per month (USD) | " + " | ".join(f"{n:,} reps" for n in scales) + " |",
           "|---|" + "---|" * len(scales)]
    for item in bills[scales[0]]:
        out.append(f"| {item} | " + " | ".join(fmt(bills[n][item]) for n in scales) + " |")
    totals = {n: sum(b.values()) for n, b in bills.items()}
    out.append("| **total** | " + " | ".join(f"**{fmt(totals[n])}**" for n in scales) + " |")
    out.append("| per rep-month | " + " | ".join(fmt(totals[n] / n) for n in scales) + " |")
    m26 = MODELS["2026"]
    total_units = gmail_units_per_rep_day(inp, m26)
    over = {n: max(0.0, total_units * n - (m26.daily_threshold or 0)) * MONTH_DAYS for n in scales}
    out.append("| Gmail units above the daily no-charge threshold (price not yet published) | "
               + " | ".join(f"{over[n] / 1e9:,.1f} bn" if over[n] else "0" for n in scales) + " |")
    return out


def gmail_lines(inp: Inputs) -> list[str]:
    """Units per rep-day by strategy and model, and what follows from them."""
    day = inp.day
    w: list[str] = []
    w.append("| per rep-day | calls | units, 2026 | units, legacy |")
    w.append("|---|---|---|---|")
    for c in sync_calls(day, "naive") + other_calls(day):
        w.append(f"| {c.what} (`{c.method}`) | {fmt(c.calls)} | {fmt(c.calls * UNITS_2026[c.method])} | "
                 f"{fmt(c.calls * LEGACY_UNITS[c.method])} |")
    w.append("")
    w.append("| | units per rep-day, 2026 | legacy | reps per project under 80M a day (2026) |")
    w.append("|---|---|---|---|")
    extra26, extra_l = units(other_calls(day), MODELS["2026"]), units(other_calls(day), MODELS["legacy"])
    for s in STRATEGIES:
        u26, ul = units(sync_calls(day, s), MODELS["2026"]), units(sync_calls(day, s), MODELS["legacy"])
        w.append(f"| sync, {s} | {fmt(u26)} | {fmt(ul)} | {reps_under_threshold(u26, MODELS['2026']):,} |")
    if inp.measured_units is not None:
        u = inp.measured_units
        m = MODELS[inp.measured_model]
        under = reps_under_threshold(u, MODELS["2026"]) if m.name == "2026" else None
        w.append(f"| sync, **measured** by scripts/bench_quota.py ({m.name} model) | "
                 + (f"**{fmt(u)}** | | {under:,} |" if under is not None else f" | **{fmt(u)}** | |"))
    s26 = sync_units_per_rep_day(inp, MODELS["2026"])
    sl = sync_units_per_rep_day(inp, MODELS["legacy"])
    w.append(f"| the whole deployment (sync as above + sends, raw fetches, CRM changes) | "
             f"{fmt(s26 + extra26)} | {fmt(sl + extra_l)} | "
             f"{reps_under_threshold(s26 + extra26, MODELS['2026']):,} |")
    return w


def soak_cost_page(soak: Mapping[str, Any]) -> list[str]:
    """`make soak`'s cost page: the run's own Gmail calls priced under both models, what Cloud Storage would
    keep for its messages, and the monthly bill the model makes of its per-event costs."""
    run_model = soak_quota_model(soak)
    calls = soak_calls(soak)
    n = max(1, int(soak.get("expected") or 0))
    u26, ul = units_of_calls(calls, MODELS["2026"]), units_of_calls(calls, MODELS["legacy"])
    passes = {m: c for m, c in calls.items() if m in ("history.list", "messages.get")}
    p26, pl = units_of_calls(passes, MODELS["2026"]), units_of_calls(passes, MODELS["legacy"])
    st = storage_for(n, StorageProfile())
    lines = [f"cost: this run ({run_model.name} model): Gmail "
             + ", ".join(f"{m} {c:,.0f}" for m, c in sorted(calls.items()) if c >= 0.5)
             + f" calls = {u26:,.0f} units under 2026, {ul:,.0f} under legacy (passes alone, history.list + "
               f"messages.get: {p26 / n:.1f} and {pl / n:.1f} per message that synced; the compressed clock "
               f"renews watches far more often than production); Cloud Storage for its {n:,} messages (R32, "
               "sizes as docs/SCALE.md): "
               f"{st['bytes'] / 1e6:,.1f} MB, {st['class_a']:,.0f} class A operations, "
               f"${storage_usd(st, 1):.4f} for a month",
             "cost: a month at scale from this run's per-event costs (scripts/scale_model.py):"]
    return lines + cost_page(Inputs(soak))


def render(inp: Inputs) -> str:
    soak, day, d = inp.soak, inp.day, inp.deployment
    c = costs(soak)
    s = soak["settings"]
    m26, leg = MODELS["2026"], MODELS["legacy"]
    run_model = soak_quota_model(soak)
    sync26 = sync_units_per_rep_day(inp, m26)
    total26 = gmail_units_per_rep_day(inp, m26)
    lims = limits(inp)
    out: list[str] = []
    w = out.append
    w("# Scale: 100 to 1,000,000 connected reps under Gmail's 2026 limits")
    w("")
    w("Generated by `scripts/scale_model.py` (`.venv/bin/python scripts/scale_model.py [soak.json] "
      "[--units-per-rep-day N --units-model 2026]`). Two kinds of input: **measured** (a soak's per-invocation "
      "Firestore costs and CPU, kept in [SCALE.soak.json](SCALE.soak.json); the Gmail units per rep-day "
      "`scripts/bench_quota.py` measures, when given) and **stated** (a rep's day, Google's published limits "
      "and list prices, storage sizes, the deployment's settings), all printed below so the page can be redone "
      "with other ones.")
    w("")
    w("Which figure is which: " + (
        f"the sync's Gmail units per rep-day, **{fmt(inp.measured_units)}**, were measured by "
        f"scripts/bench_quota.py under the {inp.measured_model} model; "
        if inp.measured_units is not None else
        "the Gmail units per rep-day are **modelled** from the issue's mix and Google's per-method table "
        "(no bench_quota.py figure was given: rerun with `--units-per-rep-day` once it is measured); ")
      + f"the Firestore per-event costs and CPU were measured by the soak, which ran under the "
        f"**{run_model.name}** quota model (its Gmail units are shown converted to calls, then priced under "
        "both models); everything else is arithmetic on stated assumptions.")
    w("")
    bills = {n: money(inp, n) for n in SCALES}
    totals = {n: sum(b.values()) for n, b in bills.items()}
    first100 = first_limit(inp, 100_000)
    next100 = first_limit(inp, 100_000, sized=True)
    size100 = max_instances_for(in_flight(day.invocations * 100_000, d.pass_seconds, day.busiest_hour),
                                d.gmail_push_concurrency, d.target_utilisation)
    cold_reads = firestore_per_rep_day(inp, max(1, gmail_push_instances(inp, 100_000, False)))["users cache cold"]
    cold_share = cold_reads * 100_000 * MONTH_DAYS * PRICES["firestore_read"] / totals[100_000]
    per_minute = next(x for x in lims if x.short.startswith("Gmail's per-project"))
    hard1m = next((x for x in passed_limits(inp, 1_000_000, sized=True) if x.refuses), None)
    w(f"**Headline.** Under the 2026 model the sync spends {fmt(sync26)} Gmail units per rep-day "
      f"({reps_under_threshold(sync26, m26):,} reps per project under the 80,000,000-unit daily threshold), "
      f"but the deployment as a whole spends {fmt(total26)}: CRM sends cost 100 units each, so one project holds "
      f"**{reps_under_threshold(total26, m26):,} reps** before Google bills. A 10,000-message backlog takes "
      f"{backlog_seconds(10_000, m26) / 60:.0f} min at the sync's pace (legacy: "
      f"{backlog_seconds(10_000, leg, headroom=240 / 250) / 60:.1f} min). 100,000 reps cost about "
      f"${totals[100_000]:,.0f} a month (${totals[100_000] / 100_000:.2f} per rep-month) with a year of mail "
      f"kept in Cloud Storage; {cold_share:.0%} of that is Firestore reads of the users cache gone cold across "
      "Cloud Run's instances, which the soak's one process never shows. "
      + (f"The first limit, as deployed, is gmail_push's instance cap (passed at "
         f"{fmt(first100.reps_at_limit())} reps in the busiest hour): `--max-instances` "
         f"{d.gmail_push_max_instances} should be about {size100} for 100,000 reps. Sized so, "
         if first100 is not None and first100.short == "gmail_push's instance cap" else
         f"gmail_push's `--max-instances` {d.gmail_push_max_instances} covers 100,000 reps (about {size100} "
         "wanted); ")
      + f"100,000 reps next pass {next100.short if next100 else 'nothing'}; at 1,000,000 reps the first that "
        f"refuses work is {hard1m.short if hard1m else 'none'}.")
    w("")
    # ---------------------------------------------------------------- Gmail
    w("## Gmail quota (2026 model, legacy beside it)")
    w("")
    w("Google's quota page (\"Gmail API usage limits\") for projects created since 1 May 2026: per user 6,000 "
      "units a minute, per project 1,200,000 a minute, a per-project daily billing threshold of 80,000,000 "
      "units (\"Full billing details will be shared later in 2026\"; no increase can be requested); "
      "messages.get 20 units (legacy 5), threads.get 40, messages.attachments.get 20, messages.trash 20; "
      "history.list 2, messages.send 100, messages.modify 5, watch 100 unchanged. The rep's day (issue 22's "
      f"mix): {day.contacts_primary} messages from contacts in Primary and {day.contacts_updates} in Updates, "
      f"{day.sent_from_gmail} sent by the rep from Gmail, {day.crm_sends} CRM sends, {day.categories} "
      f"Promotions/Social/Forums, {day.strangers} strangers in Primary, {day.label_changes} read/star/trash "
      f"changes, {fmt(day.sweeps)} sweeps (one per quiet half hour), a watch renewal every "
      f"{1 / day.renewals:.0f} days; each message or change is one notification and one pass "
      f"({day.notifications} a day). Beyond the sync: {fmt(day.attachment_share * 100)} % of the logged mail "
      f"from Gmail has attachments (one `format=raw` fetch each, R32), and the CRM makes {fmt(day.crm_changes)} "
      "read/star/trash changes in Gmail (R33).")
    w("")
    out.extend(gmail_lines(inp))
    total_share = sync26 / total26
    w("")
    w("The naive 2026 figure is the issue's ≈ 2,100; skipping the categories saves their 30 gets, and a "
      "watch that excludes their labels also saves their passes. SPEC §5's goal (≤ 1,500, \"over 53,000 reps "
      f"per project\") counts the sync only: the CRM's {day.crm_sends} sends a day are "
      f"{fmt(day.crm_sends * m26.units['messages.send'])} units more in the same project's daily count, so the "
      f"deployment passes the threshold at {total_share:.0%} of the reps the sync alone would allow.")
    w("")
    w("| backlog at the sync's pace (90 % of the per-user limit) | 2026 | legacy (paced at 240/s) |")
    w("|---|---|---|")
    for n in (120, 1_000, 10_000):
        w(f"| {n:,} messages | {fmt(backlog_seconds(n, m26))} s (floor {fmt(backlog_seconds(n, m26, 1.0))} s) "
          f"| {fmt(backlog_seconds(n, leg, 240 / 250))} s |")
    w(f"| backlogs at full pace before the project's 1,200,000 a minute refuses | "
      f"{fmt(mailboxes_at_full_pace(m26))} mailboxes | {fmt(mailboxes_at_full_pace(leg, 240 / 250))} |")
    w("")
    calls = soak_calls(soak)
    w(f"The soak's own Gmail calls ({run_model.name} model): "
      + ", ".join(f"{m} {n:,.0f}" for m, n in sorted(calls.items()) if n >= 0.5)
      + f": {units_of_calls(calls, m26):,.0f} units under 2026, {units_of_calls(calls, leg):,.0f} under legacy "
        f"(it fetched every message: the soak's mail carries no categories).")
    w("")
    # ---------------------------------------------------------------- soak
    w(f"## What the soak measured ({run_model.name} model)")
    w("")
    w("```")
    w(f"soak: {s['mailboxes']} mailboxes, {s['lifetimes']} watch lifetimes, expired {soak['expired']}, "
      f"lost {soak['lost']}, duplicated {soak['duplicated']}, reads per sweep {soak['sweep_reads']:.1f} "
      f"against {soak['sweep_due']:.1f} due, per mailbox-hour: Gmail units "
      f"{soak['per_mailbox_hour']['gmailUnits']:.1f}, Firestore reads "
      f"{soak['per_mailbox_hour']['firestoreReads']:.1f}, writes {soak['per_mailbox_hour']['firestoreWrites']:.1f}, "
      f"invocations {soak['per_mailbox_hour']['invocations']:.1f}")
    w("```")
    w("")
    simulated_days = soak.get("simulated_days") or soak["seconds"] / s["lifetime_seconds"] * 7
    w(f"Run under the {run_model.name} quota model (messages.get {run_model.units['messages.get']} units; the "
      f"Gmail units of that line are {run_model.name} units). {s['mailboxes']} mailboxes connected through the "
      f"real oauth function; watches lasted {s['lifetime_seconds']:.0f} s instead of 7 days and everything that "
      "depends on it was shortened with it "
      f"(renewal window {s['renewWithin']} s, daily tick every {s['dailyTick']:.0f} s, sweep {s['sweepSeconds']} s "
      f"x [0.5, 1] after the last sync, scheduler tick every {s['sweepTick']:.0f} s, {s['shards']} shards). Mail, "
      f"strangers' mail and label changes flowed at {s['mail_per_second']} a second for {soak['seconds']:.0f} s "
      f"({soak['expected']} messages that must sync), {simulated_days:.0f} days of watch time per mailbox "
      f"({soak['watch_renewals']} renewals). Lapsed: {soak['expired']}, lost: {soak['lost']}, stored twice: "
      f"{soak['duplicated']}, stored though they should not be: {soak['unexpected']}. The longest steady pass "
      f"needed {soak['rounds_to_message_written_max']} Firestore round trips to its first message written "
      "(SPEC §5: at most 6). Its per mailbox-hour figures are soak hours (a compressed clock), so the model "
      "uses the cost of each kind of invocation:")
    w("")
    w("| event | measured | Firestore reads | writes | round trips |")
    w("|---|---|---|---|---|")
    for name, v in c.items():
        if not name.startswith("_"):
            w(f"| {name} | {int(v['count']):,} | {fmt(v['reads'])} | {fmt(v['writes'])} | {fmt(v['rounds'])} |")
    w("")
    w(f"CPU of the gmail_push process: {c['_cpu_seconds_per_invocation']['value'] * 1000:.0f} ms per invocation "
      f"on this machine ({soak.get('gmail_push_cpu_seconds', 0):.0f} s over {soak['invocations']:,} "
      "invocations). The soak runs one gmail_push process: its users cache is always warm and no account's "
      "contact-index check fell due, so both are modelled below, not measured.")
    w("")
    # ---------------------------------------------------------------- what the soak cannot see
    inst100 = max(1, gmail_push_instances(inp, 100_000, busiest=False))
    fs1, fs100 = firestore_per_rep_day(inp, 1), firestore_per_rep_day(inp, inst100)
    w("## What only scale shows")
    w("")
    w(f"- **Cloud Run at its target.** Cloud Run keeps instances at {d.target_utilisation:.0%} of their "
      "concurrency and CPU (\"Configure custom scaling controls\", \"About instance autoscaling\"), so "
      f"gmail_push at concurrency {d.gmail_push_concurrency} runs "
      f"{d.gmail_push_concurrency * d.target_utilisation:.1f} invocations per instance and is billed "
      f"{fmt(billed_instance_seconds(1, d.pass_seconds, d.gmail_push_concurrency, d.target_utilisation))} "
      f"instance-seconds per {d.pass_seconds} s invocation (the former page assumed a full instance). "
      f"deploy.sh's cap of {d.gmail_push_max_instances} instances serves "
      f"{d.gmail_push_max_instances * d.gmail_push_concurrency * d.target_utilisation:.0f} invocations in flight "
      f"at the target; 100,000 reps need {fmt(in_flight(day.invocations * 100_000, d.pass_seconds))} at the "
      f"day's average ({gmail_push_instances(inp, 100_000, False)} instances) and "
      f"{fmt(in_flight(day.invocations * 100_000, d.pass_seconds, day.busiest_hour))} in the busiest hour "
      f"({gmail_push_instances(inp, 100_000, True)} instances).")
    w(f"- **A 429 is a NACK.** Above the cap Cloud Run answers 429; Pub/Sub counts that as a failed delivery, "
      f"redelivers after its backoff (10 s to 600 s in deploy.sh), bills the delivery again (1,000 bytes at "
      f"least) and after {d.max_delivery_attempts} attempts moves the notification to the dead-letter topic: "
      "the mailbox then waits for its sweep (15-30 min). Pub/Sub also slows push to a subscription that fails "
      "(\"Push subscriptions\"), so latency grows for every mailbox. Size `--max-instances` for the busiest "
      "hour, not the day: `max_instances_for` gives "
      + ", ".join(f"{max_instances_for(in_flight(day.invocations * n, d.pass_seconds, day.busiest_hour), d.gmail_push_concurrency, d.target_utilisation):,} at {n:,} reps" for n in (10_000, 100_000))  # noqa: E501
      + " (25 % over the busiest hour).")
    w(f"- **The users cache across instances.** Each instance keeps an account's users for "
      f"{d.users_cache_seconds:.0f} s (SYNC_USERS_CACHE_SECONDS) and reads them all (one read per user) the "
      "first time it syncs one of the account's mailboxes in that window. One process (the soak) reads them "
      f"once a window: {fmt(users_cache_reads_per_rep_day(day, d, 1))} reads per rep-day. Spread over the "
      f"{inst100} instances 100,000 reps keep busy, an account's {fmt(day.invocations * d.users_per_account / (DAY / d.users_cache_seconds))} "  # noqa: E501
      "passes a window land on "
      f"{fmt(distinct_instances(inst100, day.invocations * d.users_per_account / (DAY / d.users_cache_seconds)))} "
      f"instances: {fmt(users_cache_reads_per_rep_day(day, d, inst100))} reads per rep-day, "
      "which the soak's per-event costs hardly hold (its accounts' users, read once per window over a "
      "run of minutes, are under a tenth of its reads), so they are added whole. A new instance reads the "
      "users of every "
      f"account it serves (at scale: one read per rep, {users_reads_per_instance_start(100_000):,} at 100,000 "
      "reps). Knob: a longer SYNC_USERS_CACHE_SECONDS (a user added or removed is caught at once by the count "
      "check; only an address edited in place waits for the window): at 3,600 s, "
      f"{fmt(users_cache_reads_per_rep_day(day, replace(d, users_cache_seconds=3600), inst100))} reads per "
      "rep-day.")
    w(f"- **The contact-index check.** Every {d.contact_rescan_days:.0f} days R11b reads each contact and its "
      f"key again (2 reads a contact a week): with {d.contacts_per_rep} contacts per rep, "
      f"{fmt(contact_rescan_reads_per_rep_day(d))} reads per rep-day (from shared/crm/contact_index.py; the "
      "soak saw none fall due).")
    st = storage_per_rep_day(day, inp.storage)
    sp = inp.storage
    w(f"- **Cloud Storage grows.** R32 keeps the bodies (text and HTML: {sp.body_objects} objects, "
      f"{sp.body_bytes // 1000} KB assumed) and every attachment ({fmt(sp.attachments_per_message)} per "
      f"message of {sp.attachment_bytes // 1000} KB assumed) of the {day.logged} messages a rep logs a day: "
      f"{st['bytes'] / 1e6:.1f} MB, {fmt(st['class_a'])} class A inserts and {fmt(st['class_b'])} class B reads "
      f"per rep-day; {st['bytes'] * 365 / 1e9:.1f} GB per rep-year. At 100,000 reps the bucket grows "
      f"{st['bytes'] * 100_000 * MONTH_DAYS / 1e12:.1f} TB a month and the storage bill by "
      f"${st['bytes'] * 100_000 * MONTH_DAYS / GIB * PRICES['storage_gib_month']:,.0f} a month, every month "
      "(\"Cloud Storage pricing\": Standard, regional). Knob: a lifecycle rule (Nearline after 90 days, or "
      "delete with the CRM's retention).")
    w(f"- **Pub/Sub delivery as well as publish.** Throughput is billed on publish and on every delivery, push "
      f"included, at least 1,000 bytes a request (\"Pub/Sub pricing\"): "
      f"{fmt(pubsub_per_rep_day(day)['publishes'])} publishes and {fmt(pubsub_per_rep_day(day)['deliveries'])} "
      "deliveries per rep-day (Gmail's notifications, the sync's control messages, one CRM event per logged "
      "message with one subscriber); every 429 adds a delivery.")
    w("")
    w(f"Firestore per rep-day: {fmt(fs1['measured reads'])} reads measured by the soak's per-event costs, "
      f"+ {fmt(fs100['users cache cold'])} for the users cache at 100,000 reps' instances, + "
      f"{fmt(fs100['contact-index check'])} for the contact-index check = {fmt(fs100['reads'])} reads; "
      f"{fmt(fs100['writes'])} writes; {fmt(fs100['deletes'])} TTL deletes. gmail_push invocations: "
      f"{fmt(day.invocations)} per rep-day.")
    w("")
    # ---------------------------------------------------------------- limits
    w("## Limits, in the order they are reached")
    w("")
    w("| limit | limit | per rep | reached at (reps) | 100,000 reps | 1,000,000 reps | knob |")
    w("|---|---|---|---|---|---|---|")
    for lim in lims:
        w(f"| {lim.name} | {fmt(lim.limit)} | {lim.load_per_rep:.3g} | {fmt(lim.reps_at_limit())} | "
          f"{lim.load_per_rep * 100_000 / lim.limit:.0%} | {lim.load_per_rep * 1_000_000 / lim.limit:.0%} | "
          f"{lim.knob} |")
    w("")
    w("## The first limit, and its knob")
    w("")
    for n in (100_000, 1_000_000):
        size = max_instances_for(in_flight(day.invocations * n, d.pass_seconds, day.busiest_hour),
                                 d.gmail_push_concurrency, d.target_utilisation)
        as_deployed, sized = first_limit(inp, n), passed_limits(inp, n, sized=True)
        w(f"- **{n:,} reps.** As deployed: "
          + (f"{as_deployed.short}, reached at {fmt(as_deployed.reps_at_limit())} reps; knob: gmail_push "
             f"`--max-instances` {size:,} (`max_instances_for`: the busiest hour at Cloud Run's target, 25 % "
             "over)." if as_deployed else "nothing.")
          + (f" With that: {sized[0].short} (reached at {fmt(sized[0].reps_at_limit())} reps); knob: "
             f"{sized[0].knob}." if sized else " With that: nothing else.")
          + (" Then: " + "; ".join(f"{x.short} ({x.load_per_rep * n / x.limit:.1f}x)" for x in sized[1:]) + "."
             if len(sized) > 1 else "")
          + next((f" The first of them that refuses work: {x.short}; knob: {x.knob}." for x in sized
                  if x.refuses and sized and not sized[0].refuses), ""))
    w(f"- At 1,000,000 reps gmail_push alone needs "
      f"{gmail_push_instances(inp, 1_000_000, True):,} instances in the busiest hour, past the regional "
      "instance/CPU quotas a project starts with (\"About maximum instances\"), and every Gmail limit is "
      "per project: split the deployment into cells (a project each, with its own Gmail quota, threshold and "
      f"Firestore database) of at most {reps_under_threshold(total26, m26):,} reps to stay under the "
      f"threshold, or {fmt(per_minute.reps_at_limit())} to stay under the per-minute limit once billing is "
      "accepted.")
    w("")
    w("## Knobs")
    w("")
    w("| knob | default | what it trades |")
    w("|---|---|---|")
    w(f"| gmail_push `--max-instances` / `--concurrency` | {d.gmail_push_max_instances} / "
      f"{d.gmail_push_concurrency} | 429s (NACKs, redeliveries, dead letters) "
      "against cost and memory |")
    w("| `settings/emailSync.skipCategories` | Promotions, Social, Forums | 20 units per skipped message |")
    w("| `SYNC_SWEEP_SECONDS` | 1800 | idle passes (2 units, ~2 reads each) against how soon a lost "
      "notification is repaired |")
    w("| `GMAIL_QUOTA_MODEL` / `GMAIL_USER_UNITS_PER_SECOND` | 2026 / 90 % of the limit | backlog speed "
      "against 429s and the project's per-minute quota |")
    w("| `SYNC_USERS_CACHE_SECONDS` | 300 | users reads across instances against how late an address edited "
      "in place is seen |")
    w("| `SYNC_SWEEP_SHARDS` | 16 | index write spread against fixed reads (one per shard and minute) |")
    w("| `WATCH_RENEW_WITHIN_SECONDS` | 172800 | renewals (100 units each) against margin before a lapse |")
    w("| Cloud Storage lifecycle | none | storage that grows every month against the cost of reading old "
      "mail |")
    w("")
    w("## Cost")
    w("")
    out.extend(cost_page(inp))
    w("")
    w("Prices (USD, tier-1 region, free tiers ignored, so the 100-rep column overstates): Firestore $0.06 per "
      "100,000 reads, $0.18 per 100,000 writes, $0.02 per 100,000 deletes (\"Firestore pricing\"); Cloud Run "
      "(\"Cloud Run pricing\", request-based billing) $0.000024 per vCPU-second, $0.0000025 per GiB-second, "
      "$0.40 per million requests, billed instance time = invocation "
      f"time / (concurrency x {d.target_utilisation:.0%}); Pub/Sub $40 per TiB of publish and of delivery, "
      "1,000 bytes at least per request (\"Pub/Sub pricing\"); Cloud Storage Standard $0.020 per GB-month, "
      "$0.05 per 10,000 class A and $0.004 per 10,000 class B operations (\"Cloud Storage pricing\"); Logging "
      "$0.50 per GiB past 50 GiB (two lines of ~600 bytes per invocation). Gmail: units under the daily "
      "threshold cost nothing; the price above it is not published yet (the last row counts those units).")
    w("")
    return "\n".join(out) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("soak", type=Path, nargs="?", default=REPO / "docs" / "SCALE.soak.json")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "SCALE.md")
    ap.add_argument("--units-per-rep-day", type=float, default=None,
                    help="the sync's Gmail units per rep-day scripts/bench_quota.py measured")
    ap.add_argument("--units-model", choices=sorted(MODELS), default="2026",
                    help="the quota model that figure was measured under")
    args = ap.parse_args()
    inp = Inputs(load(args.soak), measured_units=args.units_per_rep_day, measured_model=args.units_model)
    args.out.write_text(render(inp))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
