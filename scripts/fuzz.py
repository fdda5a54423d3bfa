"""`make fuzz`: every HTTP operation of openapi.yaml fuzzed against a fresh local stack, fixed seed.

Starts its own local stack (emulators, simulator, functions), builds the fuzz
world for each operation (tests/fuzz/world.py) and runs the cases of
tests/fuzz/engine.py: schemathesis' positive and negative cases from the
document, hostile values and raw bodies. Prints per operation: cases, 5xx
answers (and requests that got no answer), answers that break the document,
and refused requests that wrote documents; then an example of each finding.
Exits 1 when any of the three is not 0.

    .venv/bin/python scripts/fuzz.py [--cases 10500] [--seed 15] [--operation send_email] [--json report.json]

The same engine runs a few hundred cases in `make test` (tests/fuzz/test_fuzz_api.py).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from devstack.stack import Stack, StackSettings  # noqa: E402
from tests.fuzz.contract import contract_for, operations  # noqa: E402
from tests.fuzz.engine import Fuzzer  # noqa: E402
from tests.fuzz.world import build_world  # noqa: E402

DEFAULT_SEED = 15  # issue 15; any fixed value makes the run repeatable


def server_error_causes(log_dir: Path) -> Counter[tuple[str, str, str]]:
    """(function, exception type, detail) of every 500, read from the functions' structured logs."""
    causes: Counter[tuple[str, str, str]] = Counter()
    for path in sorted(log_dir.glob("function-*.log")):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if '"unhandled error"' not in line:
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            function = path.stem.removeprefix("function-")
            causes[(function, str(entry.get("error")), str(entry.get("detail", ""))[:100])] += 1
    return causes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=10_500, help="cases in all, split evenly over the operations")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--operation", action="append", default=[],
                        help="only operations whose label contains this (repeatable), e.g. send_email")
    parser.add_argument("--json", type=Path, help="also write the report as JSON here (findings with whole bodies)")
    parser.add_argument("--run-dir", type=Path, help="keep the stack's logs here (default: a temporary directory)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="fuzz-stack-") as tmp:
        run_dir = args.run_dir or Path(tmp)
        stack = Stack(StackSettings(run_dir=run_dir))
        print(f"starting the local stack (logs in {stack.log_dir}) …", flush=True)
        with stack:
            contract = contract_for(stack)
            selected = [op for op in operations() if contract.served(op)
                        and (not args.operation or any(o in op.label for o in args.operation))]
            per_operation = math.ceil(args.cases / max(1, len(selected)))
            print(f"{len(selected)} operations x {per_operation} cases, seed {args.seed}", flush=True)
            started = time.monotonic()
            fuzzer = Fuzzer(lambda: build_world(stack, states=40), contract, args.seed)
            report = fuzzer.run(per_operation, tuple(args.operation), progress=lambda o: print(
                f"  {o.label}: {o.cases} cases, {o.server_errors} 5xx, {o.breaks} breaks, {o.stray_writes} stray "
                f"writes ({o.seconds:.0f} s)", flush=True))
            took = time.monotonic() - started
            causes = server_error_causes(stack.log_dir)
    print()
    print(report.table())
    print(f"{report.cases} cases in {took:.0f} s")
    if causes:
        print("\n500s by cause (the functions' own `unhandled error` log lines):")
        for (function, error, detail), n in causes.most_common():
            print(f"  {n:>5}  {function}: {error}: {detail}")
    findings = report.findings()
    if findings:
        print("\nfindings (an example of each kind per operation):")
        for f in findings:
            print(f)
    if args.json:
        args.json.write_text(json.dumps({"seed": report.seed, "cases": report.cases, "seconds": round(took),
                                         "operations": [o.as_dict() for o in report.operations],
                                         "skipped": report.skipped}, indent=2, default=str))
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
