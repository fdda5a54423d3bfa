"""Every Firestore query the functions make is served by an index production has, and no more.

The Firestore emulator does not enforce composite indexes (nor single-field
exemptions), so a query that needs one passes every end-to-end test here and
fails in production with FAILED_PRECONDITION. This reads the code's query
chains statically and checks them against firestore.indexes.json: each
query that needs a composite index has it, every declared composite index is
used by a query (issue 11: the file is exactly what the queries need), and
no single-field query filters on a field whose index is exempted.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted([*ROOT.glob("shared/**/*.py"), *ROOT.glob("functions/*.py")])
# Single-field queries on exempted fields that production never runs (the local stack's stand-in for TTL).
LOCAL_STACK_ONLY = {("shared/send/idempotency.py", "expireAt"), ("shared/crm/crm_sent.py", "expireAt")}


def _chain_fields(node: ast.AST) -> list[str]:
    """Field paths filtered or ordered on in one chained query expression (outermost call)."""
    fields: list[str] = []
    while isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        method = node.func.attr
        if method == "where":
            for arg in [*node.args, *(k.value for k in node.keywords)]:
                if isinstance(arg, ast.Call) and arg.args and isinstance(arg.args[0], ast.Constant):
                    fields.append(str(arg.args[0].value))
        elif method == "order_by" and node.args and isinstance(node.args[0], ast.Constant):
            fields.append(str(node.args[0].value))
        node = node.func.value
    return fields


def queries_needing_composite_indexes() -> list[tuple[str, frozenset[str]]]:
    return [(where, fields) for where, fields in all_queries() if len(fields) > 1]


def all_queries() -> list[tuple[str, frozenset[str]]]:
    found: list[tuple[str, frozenset[str]]] = []
    for path in SOURCES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        inner: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and id(node) not in inner:
                # mark the rest of this chain so each query is read once, from its outermost call
                sub = node.func.value
                while isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute):
                    inner.add(id(sub))
                    sub = sub.func.value
                fields = {f for f in _chain_fields(node) if f != "__name__"}
                if fields:
                    found.append((f"{path.relative_to(ROOT)}:{node.lineno}", frozenset(fields)))
    return found


def declared_indexes() -> list[frozenset[str]]:
    data = json.loads((ROOT / "firestore.indexes.json").read_text(encoding="utf-8"))
    return [frozenset(f["fieldPath"] for f in ix["fields"]) for ix in data.get("indexes", [])]


def test_every_query_that_needs_a_composite_index_has_one_in_the_index_file() -> None:
    declared = declared_indexes()
    missing = [(where, sorted(fields)) for where, fields in queries_needing_composite_indexes()
               if fields not in declared]
    assert missing == [], f"queries without a composite index in firestore.indexes.json: {missing}"


def exempted_fields() -> set[str]:
    data = json.loads((ROOT / "firestore.indexes.json").read_text(encoding="utf-8"))
    return {o["fieldPath"] for o in data.get("fieldOverrides", []) if o.get("indexes") == []}


def test_every_declared_composite_index_is_used_by_a_query() -> None:
    used = {fields for _, fields in queries_needing_composite_indexes()}
    unused = [sorted(ix) for ix in declared_indexes() if ix not in used]
    assert unused == [], f"composite indexes no query needs (each costs a write per document change): {unused}"


def test_no_single_field_query_filters_on_an_exempted_field() -> None:
    exempt = exempted_fields()
    bad = [(where, sorted(fields)) for where, fields in all_queries()
           if len(fields) == 1 and fields & exempt
           and (where.split(":")[0], next(iter(fields))) not in LOCAL_STACK_ONLY]
    assert bad == [], f"queries on fields firestore.indexes.json exempts from indexing: {bad}"


def test_the_sweep_and_renewal_queries_are_read_by_the_reader() -> None:
    """The scale queries (issue 11) live in shared/sync/ subpackages: the reader must see them."""
    found = {fields for _, fields in all_queries()}
    assert frozenset({"status", "sweepShard", "sweepDueAt"}) in found
    assert frozenset({"status", "watchExpiration"}) in found


def test_hot_timestamps_of_the_mailbox_are_not_indexed() -> None:
    """Near-now timestamps written by every sync would hit Firestore's ~500 writes/s ceiling per index."""
    data = json.loads((ROOT / "firestore.indexes.json").read_text(encoding="utf-8"))
    exempt = {o["fieldPath"] for o in data["fieldOverrides"]
              if o["collectionGroup"] == "sync_mailboxes" and o.get("indexes") == []}
    assert {"leaseUntil", "lastSyncAt", "lastSyncedInternalDate", "lastPassStartedAt", "sweepDueAt"} <= exempt


def test_the_query_reader_sees_multi_field_queries() -> None:
    """Guard against a reader that silently finds nothing: it must see a two-field chain."""
    tree = ast.parse('q = col.where(filter=FieldFilter("status", "==", "x")).order_by("lastSyncAt").limit(5)')
    call = tree.body[0].value  # type: ignore[attr-defined]
    assert set(_chain_fields(call)) == {"status", "lastSyncAt"}
