"""Issue 10: functions are thin adapters; the architecture lives in `shared/` subpackages.

Static checks over the source, so a new function or a shortcut taken under
deadline shows up as a failing spec rather than as drift.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = sorted(p for p in (ROOT / "functions").glob("*.py") if p.name != "__init__.py")
MAX_ADAPTER_LINES = 200
# Names through which a module reaches Firestore, Pub/Sub or Gmail itself.
CLIENT_NAMES = {"firestore_client", "publisher", "event_publisher", "subscriber", "build_gmail", "firestore",
                "pubsub_v1", "googleapiclient", "FieldFilter", "transactional"}
CLIENT_METHODS = {"collection", "document", "collection_group", "transaction", "batch", "get_all", "users"}


def _imports_and_calls(tree: ast.AST) -> tuple[set[str], set[str]]:
    names: set[str] = set()
    methods: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            names.add((node.module or "").split(".")[-1])
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name.split(".")[-1] for a in node.names)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            methods.add(node.func.attr)
    return names, methods


@pytest.mark.parametrize("path", FUNCTIONS, ids=lambda p: p.stem)
def test_issue10_function_module_is_under_200_lines(path: Path) -> None:
    assert len(path.read_text().splitlines()) < MAX_ADAPTER_LINES


@pytest.mark.parametrize("path", FUNCTIONS, ids=lambda p: p.stem)
def test_issue10_function_module_calls_no_firestore_pubsub_or_gmail_client(path: Path) -> None:
    names, methods = _imports_and_calls(ast.parse(path.read_text()))
    assert not names & CLIENT_NAMES, f"{path.name} reaches a client itself: {sorted(names & CLIENT_NAMES)}"
    assert not methods & CLIENT_METHODS, f"{path.name} calls client methods: {sorted(methods & CLIENT_METHODS)}"


def test_issue10_shared_is_grouped_by_capability() -> None:
    flat = sorted(p.name for p in (ROOT / "shared").glob("*.py") if p.name != "__init__.py")
    assert flat == [], f"modules outside a capability subpackage: {flat}"


def test_issue10_pure_rules_import_no_firestore_module() -> None:
    """classify.py is pure matching rules: it may not import a module that talks to Firestore."""
    tree = ast.parse((ROOT / "shared" / "sync" / "classify.py").read_text())
    modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    talking = {"shared.crm.contacts", "shared.core.clients", "shared.crm.mailboxes", "shared.crm.settings"}
    assert not modules & talking
