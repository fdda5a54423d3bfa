"""SPEC §5 (0.2) "Hostile input, measured", the share `make test` runs: every HTTP operation fuzzed.

Each operation gets CASES cases from openapi.yaml (schemathesis positive and
negative cases, hostile values, raw bodies; tests/fuzz/engine.py) with a fixed
seed, against a fresh world on the local stack. The bar is the spec's: no
answer is a 5xx, no answer breaks the document, no refused request writes a
document. `make fuzz` runs the same with 10,500 cases.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.fuzz.contract import DOCUMENT, contract_for
from tests.fuzz.engine import Fuzzer
from tests.fuzz.world import build_world

pytestmark = pytest.mark.e2e

CASES = 40
SEED = 15


def labels() -> list[str]:
    """Operation labels read from the document (cheap: no schemathesis at collection)."""
    paths = yaml.safe_load(DOCUMENT.read_text(encoding="utf-8"))["paths"]
    return [f"{method.upper()} {path}" for path, item in paths.items() for method in item]


@pytest.mark.parametrize("label", labels())
def test_fuzzed_operation_never_answers_5xx_keeps_the_document_and_refusals_write_nothing(
        stack: Any, label: str) -> None:
    contract = contract_for(stack)
    from tests.fuzz.contract import operations

    (op,) = [o for o in operations() if o.label == label]
    if not contract.served(op):
        pytest.skip(f"{label}: the stack does not serve this function yet")
    report = Fuzzer(lambda: build_world(stack, states=5), contract, SEED).run(CASES, only=(label,))
    print(report.table())
    (stats,) = report.operations
    assert stats.cases >= CASES * 9 // 10, report.table()  # the generators really produced the cases
    assert report.failures == 0, report.table() + "\n" + "\n".join(str(f) for f in report.findings())
