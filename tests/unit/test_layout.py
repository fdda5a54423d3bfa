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
# The one list of how a module reaches Firestore, Pub/Sub or Gmail itself: modules it may not import from,
# names it may not import or call, attributes it may not touch (every adapter is held to all of them).
CLIENT_MODULES = ("google.cloud", "googleapiclient", "shared.core.clients", "shared.gmail.service")
CLIENT_NAMES = {"firestore_client", "publisher", "event_publisher", "subscriber", "build_gmail", "open_gmail",
                "firestore", "pubsub_v1", "googleapiclient", "FieldFilter", "transactional", "request_sync",
                "publish"}
CLIENT_METHODS = {"collection", "document", "collection_group", "transaction", "batch", "get_all", "users",
                  "execute"}


def _client_uses(tree: ast.AST) -> list[str]:
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom | ast.Import):
            modules = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            names = [a.name for a in node.names] if isinstance(node, ast.ImportFrom) else []
            found += [f"import {m}" for m in modules if m.startswith(CLIENT_MODULES)]
            found += [f"import {n}" for n in [m.split(".")[-1] for m in modules] + names if n in CLIENT_NAMES]
        elif isinstance(node, ast.Attribute) and node.attr in CLIENT_METHODS:
            found.append(f".{node.attr}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in CLIENT_NAMES:
            found.append(f"{node.func.id}()")
    return found


@pytest.mark.parametrize("path", FUNCTIONS, ids=lambda p: p.stem)
def test_issue10_function_module_is_under_200_lines(path: Path) -> None:
    assert len(path.read_text().splitlines()) < MAX_ADAPTER_LINES


@pytest.mark.parametrize("path", FUNCTIONS, ids=lambda p: p.stem)
def test_issue10_function_module_calls_no_firestore_pubsub_or_gmail_client(path: Path) -> None:
    assert _client_uses(ast.parse(path.read_text())) == [], f"{path.name} reaches a client itself"


def test_issue10_shared_is_grouped_by_capability() -> None:
    flat = sorted(p.name for p in (ROOT / "shared").glob("*.py") if p.name != "__init__.py")
    assert flat == [], f"modules outside a capability subpackage: {flat}"


def test_issue10_pure_rules_import_no_firestore_module() -> None:
    """classify.py is pure matching rules: it may not import a module that talks to Firestore."""
    tree = ast.parse((ROOT / "shared" / "sync" / "classify.py").read_text())
    modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    talking = {"shared.crm.contacts", "shared.core.clients", "shared.crm.mailboxes", "shared.crm.settings"}
    assert not modules & talking
