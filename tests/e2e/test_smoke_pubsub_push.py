"""The path every push-triggered function stands on, proved end to end.

A message published to the Gmail watch topic on the real Pub/Sub emulator is
pushed to a function served by functions-framework and arrives as a
CloudEvent, exactly as gmail_push and quota_reset receive theirs.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest

from devstack.topology import push_endpoint

pytestmark = pytest.mark.e2e

ECHO_SOURCE = Path(__file__).with_name("echo_function.py")


def _wait_for_record(folder: Path, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        files = sorted(folder.glob("*.json"))
        if files:
            return dict(json.loads(files[0].read_text()))
        time.sleep(0.1)
    raise AssertionError(f"no CloudEvent reached the echo function within {timeout} s")


def test_gmail_watch_message_reaches_push_function_as_cloudevent(stack, function_server, tmp_path):
    url = function_server("echo", ECHO_SOURCE, ECHO_OUT_DIR=str(tmp_path))
    stack.pubsub.create_subscription(
        "smoke-echo-push", "gmail-watch", push_endpoint(url, stack.project_id, "gmail-watch")
    )
    try:
        payload = {"emailAddress": "smoke-nobody@example.test", "historyId": "12345"}
        message_id = stack.pubsub.publish("gmail-watch", json.dumps(payload).encode())

        record = _wait_for_record(tmp_path)
    finally:
        stack.pubsub.delete_subscription("smoke-echo-push")

    assert record["type"] == "google.cloud.pubsub.topic.v1.messagePublished"
    assert record["source"].endswith(f"projects/{stack.project_id}/topics/gmail-watch")
    message = record["data"]["message"]
    assert message["messageId"] == message_id
    assert json.loads(base64.b64decode(message["data"])) == payload
