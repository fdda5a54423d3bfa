"""Issue 10 for the connect functions: thin adapters, no Firestore, Pub/Sub or Gmail client in functions/."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ADAPTERS = ("functions/oauth.py", "functions/oauth_browser.py")
CLIENT_MODULES = ("google.cloud", "googleapiclient", "shared.core.clients", "shared.gmail.service")
CLIENT_NAMES = {"firestore_client", "publisher", "build_gmail", "request_sync", "publish"}


@pytest.mark.parametrize("path", ADAPTERS)
def test_adapter_is_under_200_lines(path: str) -> None:
    assert len((ROOT / path).read_text().splitlines()) < 200


@pytest.mark.parametrize("path", ADAPTERS)
def test_adapter_calls_no_firestore_pubsub_or_gmail_client(path: str) -> None:
    tree = ast.parse((ROOT / path).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            assert not node.module.startswith(CLIENT_MODULES), f"{path} imports {node.module}"
            assert not CLIENT_NAMES & {a.name for a in node.names}, f"{path} imports a client helper"
        elif isinstance(node, ast.Import):
            assert not any(a.name.startswith(CLIENT_MODULES) for a in node.names), path
        elif isinstance(node, ast.Attribute):
            assert node.attr not in ("collection", "document", "transaction", "execute"), f"{path}: .{node.attr}"
