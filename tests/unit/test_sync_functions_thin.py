"""Issue 10 for the sync's functions: gmail_push and quota_reset are thin adapters.

Each decodes its trigger and calls one operation of shared/ (shared.sync.control,
shared.sync.daily); neither calls a Firestore, Pub/Sub or Gmail client itself.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLIENT_MODULES = ("google.cloud", "googleapiclient", "shared.core.clients", "shared.gmail.service")
CLIENT_CALLS = {"firestore_client", "publisher", "build_gmail", "open_gmail", "transaction", "collection", "document"}


@pytest.mark.parametrize("name", ["gmail_push", "quota_reset"])
def test_the_sync_functions_are_thin_adapters(name: str) -> None:
    path = ROOT / "functions" / f"{name}.py"
    text = path.read_text(encoding="utf-8")
    assert len(text.splitlines()) < 200
    tree = ast.parse(text)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom | ast.Import):
            mods = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            assert not any(m.startswith(CLIENT_MODULES) for m in mods), (name, mods)
        if isinstance(node, ast.Call):
            fn = node.func
            called = fn.attr if isinstance(fn, ast.Attribute) else fn.id if isinstance(fn, ast.Name) else ""
            assert called not in CLIENT_CALLS, (name, called)
