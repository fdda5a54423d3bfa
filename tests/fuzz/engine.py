"""Fuzz every HTTP operation of openapi.yaml against a running local stack, with a fixed seed.

Per operation, cases come from four generators (all Hypothesis, seeded):
- positive: schemathesis' valid requests, with ids swapped for the world's
  (existing, foreign, unknown) so they reach past the 404s;
- negative: schemathesis' requests that violate the document;
- hostile: a valid request with one value replaced by a hostile one
  (tests/fuzz/hostile.py), or a hostile RFC 822 copy for auto_bcc;
- raw: bodies no JSON encoder writes (100,000-deep nesting, NaN, CESU-8,
  UTF-16, wrong content types).
Each case is judged three ways: a 5xx (or no answer at all), an answer that
breaks the document (schemathesis' conformance checks), and documents written
by a refused (4xx) request (every Firestore document before and after it).
"""

from __future__ import annotations

import base64
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import requests
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from shared.crm import paths
from tests.fuzz import hostile
from tests.fuzz.contract import DOC_BASE, Contract, RoutingSession, operations
from tests.fuzz.stray import Snapshot, diff, snapshot
from tests.fuzz.world import ACCOUNT, CONTACT, REP, RETURN_URL, USER, World, settle

ID_FIELDS = ("accountId", "userId", "contactId", "conversationId", "messageId", "replyToMessageId")
MODES = {"positive": 4, "negative": 2, "hostile": 3, "raw": 1}  # shares of an operation's budget
KEEP_FINDINGS = 4  # examples kept per kind and operation
# Operations whose success starts work that writes later (gmail_push syncing the mailbox): wait for it to end.
BACKGROUND_WORK = ("/oauth/resync", "/send_email")
FORM = "application/x-www-form-urlencoded"


@dataclass
class Finding:
    kind: str  # "5xx", "no answer", "breaks document", "stray write"
    operation: str
    mode: str
    request: str
    answer: str
    detail: str = ""
    body_base64: str = ""  # the whole request body (up to 4 MB), to replay the case

    def __str__(self) -> str:
        return f"[{self.kind}] {self.operation} ({self.mode}): {self.request}\n    -> {self.answer}" + (
            f"\n    {self.detail}" if self.detail else "")


@dataclass
class OperationStats:
    label: str
    cases: int = 0
    server_errors: int = 0
    breaks: int = 0
    stray_writes: int = 0
    harness_errors: int = 0  # the fuzzer's own failures (a case that could not be built or sent)
    statuses: Counter[int] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)  # "400 invalid_request": how far cases got
    modes: Counter[str] = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"operation": self.label, "cases": self.cases, "5xx": self.server_errors, "breaks": self.breaks,
                "strayWrites": self.stray_writes, "harnessErrors": self.harness_errors,
                "statuses": {str(k): v for k, v in sorted(self.statuses.items())}, "codes": dict(self.codes),
                "modes": dict(self.modes), "seconds": round(self.seconds, 1),
                "findings": [vars(f) for f in self.findings]}

    def keep(self, finding: Finding) -> None:
        if sum(1 for f in self.findings if f.kind == finding.kind) < KEEP_FINDINGS:
            self.findings.append(finding)


@dataclass
class Report:
    seed: int
    operations: list[OperationStats] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def cases(self) -> int:
        return sum(o.cases for o in self.operations)

    @property
    def failures(self) -> int:
        """5xx, document breaks and stray writes, plus the harness's own errors (then the run proves nothing)."""
        return sum(o.server_errors + o.breaks + o.stray_writes + o.harness_errors for o in self.operations)

    def table(self) -> str:
        head = f"{'operation':<24}{'cases':>7}{'5xx':>6}{'breaks':>8}{'stray':>7}   statuses"
        lines = [f"fuzz seed {self.seed}", head, "-" * len(head)]
        for o in self.operations:
            statuses = " ".join(f"{s}:{n}" for s, n in sorted(o.statuses.items()))
            lines.append(f"{o.label:<24}{o.cases:>7}{o.server_errors:>6}{o.breaks:>8}{o.stray_writes:>7}   "
                         f"{statuses}")
        total = (self.cases, sum(o.server_errors for o in self.operations), sum(o.breaks for o in self.operations),
                 sum(o.stray_writes for o in self.operations))
        lines.append("-" * len(head))
        lines.append(f"{'total':<24}{total[0]:>7}{total[1]:>6}{total[2]:>8}{total[3]:>7}")
        harness = sum(o.harness_errors for o in self.operations)
        if harness:
            lines.append(f"harness errors (cases the fuzzer could not build or send): {harness}")
        if self.skipped:
            lines.append("not served by this stack (skipped): " + ", ".join(self.skipped))
        return "\n".join(lines)

    def findings(self) -> list[Finding]:
        return [f for o in self.operations for f in o.findings]


@dataclass
class Call:
    """One request as sent: enough to judge it and to show it."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None

    def describe(self) -> str:
        body = "" if self.body is None else f" body={self.body[:240]!r}" + (
            f"…({len(self.body)} bytes)" if len(self.body) > 240 else "")
        ctype = self.headers.get("Content-Type", "")
        return f"{self.method} {self.url[:300]} [{ctype}]{body}"


class Fuzzer:
    """Runs the cases; `build` makes the world afresh for each operation (so they do not see each other)."""

    def __init__(self, build: Callable[[], World], contract: Contract, seed_value: int) -> None:
        self.build = build
        self.contract = contract
        self.seed = seed_value
        self.session = RoutingSession(contract)
        self.trace = False
        self.keys_made = 0
        self.world: World
        self.last: Snapshot = {}

    # ---- the run ------------------------------------------------------------------------

    def run(self, per_operation: int, only: tuple[str, ...] = (),
            progress: Callable[[OperationStats], None] | None = None) -> Report:
        """`per_operation` cases for each served operation (or those whose label contains one of `only`)."""
        report = Report(seed=self.seed)
        for op in operations():
            if only and not any(o in op.label for o in only):
                continue
            if not self.contract.served(op):
                report.skipped.append(op.label)
                continue
            self.world = self.build()
            self.last = snapshot(self.world.stack)
            report.operations.append(self.run_operation(op, per_operation))
            if progress is not None:
                progress(report.operations[-1])
        return report

    def run_operation(self, op: Any, budget: int) -> OperationStats:
        stats = OperationStats(label=op.label)
        started = time.monotonic()
        total = sum(MODES.values())
        for offset, (mode, share) in enumerate(MODES.items()):
            n = max(1, budget * share // total)
            self._run_mode(op, mode, n, stats, self.seed * 100 + offset)
        stats.seconds = time.monotonic() - started
        return stats

    def _run_mode(self, op: Any, mode: str, n: int, stats: OperationStats, mode_seed: int) -> None:
        from schemathesis import GenerationMode

        generation = GenerationMode.NEGATIVE if mode == "negative" else GenerationMode.POSITIVE
        strategy = op.as_strategy(generation)

        def one(case: Any, data: st.DataObject) -> None:
            try:
                self.execute(op, mode, case, data, stats)
            except Exception as exc:  # the harness, not the stack: report it, keep fuzzing
                import traceback

                where = traceback.format_exc().strip().splitlines()[-3:]
                stats.harness_errors += 1
                stats.keep(Finding("harness", op.label, mode, "", "", f"{type(exc).__name__}: {str(exc)[:300]} "
                                   + " | ".join(where)))

        test = given(case=strategy, data=st.data())(one)
        test = settings(max_examples=n, database=None, deadline=None, phases=[Phase.generate],
                        suppress_health_check=list(HealthCheck), derandomize=False)(test)
        test = seed(mode_seed)(test)
        try:
            test()
        except Exception as exc:  # generation itself gave up (an unsatisfiable schema part): say so
            stats.harness_errors += 1
            stats.keep(Finding("generator", op.label, mode, "", "", f"{type(exc).__name__}: {str(exc)[:300]}"))

    # ---- one case -----------------------------------------------------------------------

    def execute(self, op: Any, mode: str, case: Any, data: st.DataObject, stats: OperationStats) -> None:
        headers = self.auth_headers(op, data)
        raw: tuple[str, bytes] | None = None
        if mode == "positive":
            self.ground(op, case, data)
        elif mode == "hostile":
            self.ground(op, case, data)
            self.make_hostile(op, case, data)
        elif mode == "raw":
            self.ground(op, case, data)
            if _has_json_body(op) and data.draw(st.integers(0, 3), label="raw json") > 0:
                example = case.body if isinstance(case.body, dict) else {}
                raw = data.draw(hostile.raw_json_bodies(example), label="raw body")
            elif op.body:
                raw = data.draw(hostile.raw_other_bodies(), label="raw body")
            else:
                self.make_hostile(op, case, data)
        if raw is None and op_media_type(op) == FORM and isinstance(case.body, dict):
            # A form a client encodes itself: requests cannot encode a lone surrogate, a hostile client can
            raw = (FORM, urlencode(case.body, doseq=True, encoding="utf-8", errors="surrogatepass").encode("ascii"))
        if raw is None and _has_json_body(op) and case.body is not _not_set():
            # Serialised here, the way a client's JSON encoder writes it: lone surrogates as \ud800 escapes
            body = case.body
            raw = ("application/json", body if isinstance(body, bytes) else json.dumps(body).encode())
        t0 = time.monotonic()
        call, response, error = self.send(op, case, headers, raw)
        elapsed = time.monotonic() - t0
        stats.cases += 1
        stats.modes[mode] += 1
        if response is None:
            stats.server_errors += 1
            stats.keep(Finding("no answer", op.label, mode, call.describe(), error))
            self.last = snapshot(self.world.stack)
            return
        replay = base64.b64encode(call.body[:4_000_000]).decode() if call.body else ""
        stats.statuses[response.status_code] += 1
        stats.codes[f"{response.status_code} {_error_code(response)}"] += 1
        if self.trace:
            print(f"{elapsed:.2f}s", mode, call.describe()[:300], "->", response.status_code, response.text[:160])
        answer = f"{response.status_code} {response.text[:300]!r}"
        after = snapshot(self.world.stack)
        if response.status_code >= 500:  # what it wrote before failing is a partial write: show it
            stats.server_errors += 1
            stats.keep(Finding("5xx", op.label, mode, call.describe(), answer, diff(self.last, after).describe(),
                               body_base64=replay))
        problems = self.contract.problems(self.case_for_check(op, case, call), response)
        if problems:
            stats.breaks += 1
            stats.keep(Finding("breaks document", op.label, mode, call.describe(), answer, "; ".join(problems),
                               body_base64=replay))
        if 400 <= response.status_code < 500:
            writes = diff(self.last, after)
            if writes.count:
                stats.stray_writes += 1
                stats.keep(Finding("stray write", op.label, mode, call.describe(), answer, writes.describe(),
                                   body_base64=replay))
        if response.status_code == 200 and op.path == "/oauth/auto-bcc/rotate" and isinstance(case.body, dict) \
                and (case.body.get("accountId"), case.body.get("userId")) == (ACCOUNT, USER):
            self.world.auto_bcc = response.json()["autoBccAddress"]  # the old address no longer resolves
        if response.status_code < 400 and op.path in BACKGROUND_WORK:
            # its background work (the sync after a send or a resync) must not count for the next case
            mailbox = f"{paths.MAILBOXES}/{paths.mailbox_id(REP)}"
            settle(self.world, forced_since=self.last.get(mailbox) if op.path == "/oauth/resync" else None)
            after = snapshot(self.world.stack)
        self.last = after

    def send(self, op: Any, case: Any, headers: dict[str, str],
             raw: tuple[str, bytes] | None) -> tuple[Call, requests.Response | None, str]:
        url = DOC_BASE + op.path
        if raw is not None:
            ctype, body = raw
            req_headers = {**headers, "Content-Type": ctype} if ctype else dict(headers)
            call = Call(op.method.upper(), url, req_headers, body)
            try:
                resp = self.session.request(op.method.upper(), url, params=case.query or None, data=body,
                                            headers=req_headers, timeout=90, allow_redirects=False)
            except requests.RequestException as exc:
                return call, None, f"{type(exc).__name__}: {str(exc)[:200]}"
            return call, resp, ""
        try:
            resp = case.call(base_url=DOC_BASE, session=self.session, headers=headers, timeout=90,
                             allow_redirects=False)
        except requests.RequestException as exc:
            kwargs = case.as_transport_kwargs(base_url=DOC_BASE, headers=headers)
            return (Call(op.method.upper(), kwargs.get("url", url), kwargs.get("headers", {}), _bytes(kwargs)),
                    None, f"{type(exc).__name__}: {str(exc)[:200]}")
        prepared = resp.request
        body = prepared.body if isinstance(prepared.body, bytes) else (
            prepared.body.encode("utf-8", "surrogatepass") if isinstance(prepared.body, str) else None)
        return Call(prepared.method or "", prepared.url or "", dict(prepared.headers), body), resp, ""

    def case_for_check(self, op: Any, case: Any, call: Call) -> Any:
        """A case of exactly what went out (the answer is judged, not the request; bytes need no re-encoding)."""
        if call.body is None:
            return case
        return op.Case(query=dict(case.query or {}), body=call.body if call.body is not None else _not_set(),
                       media_type=(call.headers.get("Content-Type") or None))

    # ---- shaping cases ------------------------------------------------------------------

    def auth_headers(self, op: Any, data: st.DataObject) -> dict[str, str]:
        function = op.path.lstrip("/").split("/", 1)[0]
        right = self.world.keys["inbound" if function == "auto_bcc" else "crm"]
        wrong = self.world.keys["crm" if function == "auto_bcc" else "inbound"]
        choice = data.draw(st.sampled_from(["right"] * 17 + ["none", "wrong", "other key"]), label="auth")
        value = {"right": f"Bearer {right}", "none": "", "wrong": "Bearer not-the-key",
                 "other key": f"Bearer {wrong}"}[choice]
        return {"Authorization": value} if value else {}

    def ground(self, op: Any, case: Any, data: st.DataObject) -> None:
        """Swap generated ids and addresses for the world's, so that valid requests reach real documents.

        Most cases get the connected rep's own ids (they reach Gmail and Firestore), some a mix of the
        world's ids (another tenant's, a user who never connected, a contact without an address), the rest
        keep what the generator made up.
        """
        w = self.world
        scene = data.draw(st.sampled_from(["home"] * 6 + ["mixed"] * 3 + ["generated"]), label="scene")
        home = {"accountId": ACCOUNT, "userId": USER, "contactId": CONTACT, "conversationId": CONTACT,
                "messageId": w.reply_to, "replyToMessageId": w.reply_to}
        for container in (case.body if isinstance(case.body, dict) else None, case.query):
            if not isinstance(container, dict) or scene == "generated":
                continue
            for key in ID_FIELDS:
                if key not in container:
                    continue
                if scene == "home":
                    container[key] = home[key]
                elif scene == "mixed":
                    container[key] = data.draw(st.sampled_from(w.ids), label=key)
            if "returnUrl" in container and data.draw(st.integers(0, 3), label="allowed returnUrl") > 0:
                container["returnUrl"] = RETURN_URL
        body = case.body
        if op.path == "/send_email" and isinstance(body, dict) and scene != "generated":
            key = data.draw(st.sampled_from(["unique"] * 6 + ["known", "generated"]), label="key")
            if key == "known":  # reuse: a replay, or the same key with other content
                body["idempotencyKey"] = data.draw(st.sampled_from(["fuzz-key-1", "fuzz-key-2", "fuzz-world-1"]))
            elif key == "unique" and isinstance(body.get("idempotencyKey"), str):
                self.keys_made += 1  # Hypothesis repeats small strings ("0"): most sends need a key of their own
                body["idempotencyKey"] = f"{body['idempotencyKey']}-{self.keys_made}"
            if "replyToMessageId" in body and data.draw(st.booleans(), label="new mail"):
                del body["replyToMessageId"]
                body.setdefault("subject", "Hello")
            attachments = body.get("attachments")
            for att in attachments if isinstance(attachments, list) else []:
                if isinstance(att, dict):
                    att["contentBase64"] = base64.b64encode(data.draw(st.binary(max_size=64))).decode()
        if op.path == "/auto_bcc":
            if data.draw(st.integers(0, 4), label="known to") > 0:
                case.query["to"] = w.auto_bcc
            if data.draw(st.integers(0, 4), label="mail body") > 0:
                case.body = data.draw(hostile.rfc822_messages(w.addresses), label="copy")
        if op.path == "/oauth_browser/callback":
            self.ground_callback(case, data)

    def ground_callback(self, case: Any, data: st.DataObject) -> None:
        """A real signed state (spent or not) now and then, so the callback gets past the signature."""
        w = self.world
        # Draw the same things whatever the pool holds: Hypothesis replays choices and wants them stable.
        choice = data.draw(st.sampled_from(["generated", "fresh", "spent"]), label="state")
        pick = data.draw(st.integers(0, 10_000), label="which spent state")
        error = data.draw(st.sampled_from([None, "access_denied", "server_error", ""]), label="consent error")
        if choice == "fresh" and w.states:
            state = w.states.pop()
            w.spent_states.append(state)
            case.query["state"] = state
        elif choice == "spent" and w.spent_states:
            case.query["state"] = w.spent_states[pick % len(w.spent_states)]
        if choice != "generated" and error is not None:
            case.query["error"] = error

    def make_hostile(self, op: Any, case: Any, data: st.DataObject) -> None:
        extra = self.world.ids
        if isinstance(case.body, dict):
            if op.path == "/send_email" and data.draw(st.integers(0, 9), label="huge bodies") == 0:
                case.body = hostile.huge_bodies(case.body, data)
                return
            case.body = hostile.mutate_json(case.body, data, extra)
            return
        if op.body and data.draw(st.booleans(), label="hostile body"):  # auto_bcc: the copy is the hostile part
            case.body = data.draw(hostile.rfc822_messages(self.world.addresses), label="copy")
            return
        names = [p.name for p in op.query]
        if names:
            name = data.draw(st.sampled_from(names), label="param")
            value = data.draw(hostile.hostile_strings(extra), label="hostile param")
            # A URL cannot carry a lone surrogate: a client sends its UTF-8 bytes, which arrive as U+FFFD.
            case.query[name] = value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def _error_code(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("error", "")) if isinstance(body, dict) else ""


def _has_json_body(op: Any) -> bool:
    return op_media_type(op) == "application/json"


def op_media_type(op: Any) -> str | None:
    return next((b.media_type for b in op.body), None)


def _bytes(kwargs: dict[str, Any]) -> bytes | None:
    data = kwargs.get("data") or kwargs.get("json")
    if data is None:
        return None
    return data if isinstance(data, bytes) else json.dumps(data).encode("utf-8", "surrogatepass")


def _not_set() -> Any:
    from schemathesis.core import NOT_SET

    return NOT_SET
