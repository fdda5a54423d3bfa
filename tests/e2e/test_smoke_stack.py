"""The local stack's wiring: subscriptions as in production, and a clean slate per test."""

from __future__ import annotations

import json
import time

import pytest

from devstack.procs import free_port, tcp_ready
from devstack.topology import MAX_DELIVERY_ATTEMPTS, push_endpoint

pytestmark = pytest.mark.e2e


def test_push_subscriptions_target_functions_with_retry_and_dead_letter_policy(stack):
    for sub_name, topic, function in [
        ("gmail-watch-push", "gmail-watch", "gmail_push"),
        ("sync-control-push", "sync-control", "gmail_push"),
        ("daily-tick-push", "daily-tick", "quota_reset"),
    ]:
        sub = stack.pubsub.subscriber.get_subscription(
            request={"subscription": stack.pubsub.subscription_path(sub_name)}
        )
        assert sub.topic == stack.pubsub.topic_path(topic)
        assert sub.push_config.push_endpoint == push_endpoint(
            stack.function_url(function), stack.project_id, topic
        )
        assert sub.retry_policy.minimum_backoff.total_seconds() >= 1
        assert sub.dead_letter_policy.dead_letter_topic == stack.pubsub.topic_path("dead-letters")
        assert sub.dead_letter_policy.max_delivery_attempts == MAX_DELIVERY_ATTEMPTS


def test_clean_leaves_no_documents_and_no_pending_crm_events(stack, firestore_db, request):
    firestore_db.collection("sync_smoke").document("left-over").set({"n": 1})
    stack.pubsub.publish("crm-events", json.dumps({"type": "left.over"}).encode())

    request.getfixturevalue("clean")

    assert firestore_db.collection("sync_smoke").document("left-over").get().exists is False
    assert stack.crm_events(1, timeout=1.0) == []


def test_crm_events_tap_returns_each_published_event_once(clean):
    for n in range(3):
        clean.pubsub.publish("crm-events", json.dumps({"type": "smoke", "n": n}).encode())

    events = clean.crm_events(3)

    assert sorted(e["n"] for e in events) == [0, 1, 2]
    assert clean.crm_events(1, timeout=1.0) == []


def _environ_of(pid: int) -> dict[str, str]:
    raw = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def test_killed_function_is_down_until_restarted_with_its_extra_env(stack):
    host, port = stack.function_url("auto_bcc").removeprefix("http://").rsplit(":", 1)
    try:
        stack.kill_function("auto_bcc")
        deadline = time.monotonic() + 10
        while tcp_ready(host, int(port))() and time.monotonic() < deadline:
            time.sleep(0.1)  # the kernel may take a moment to close the dead group's listening socket
        assert not tcp_ready(host, int(port))()

        stack.restart_function("auto_bcc", {"SYNC_LEASE_SECONDS": "2"})

        assert tcp_ready(host, int(port))()
        env = _environ_of(stack.processes["function:auto_bcc"].pid)
        assert env["SYNC_LEASE_SECONDS"] == "2"
        assert env["GOOGLE_SIMULATOR_URL"] == stack.simulator_url
    finally:
        stack.restart_function("auto_bcc", None)


def test_functions_never_inherit_google_endpoints_from_the_shell(stack, monkeypatch):
    monkeypatch.setenv("GMAIL_API_ROOT", "https://gmail.googleapis.com/")
    monkeypatch.setenv("OAUTH_TOKEN_URI", "https://oauth2.googleapis.com/token")
    try:
        stack.restart_function("quota_reset", None)

        env = _environ_of(stack.processes["function:quota_reset"].pid)
        assert "GMAIL_API_ROOT" not in env
        assert "OAUTH_TOKEN_URI" not in env
        assert env["OAUTHLIB_INSECURE_TRANSPORT"] == "1"
        assert env["OAUTH_REDIRECT_URI"] == stack.function_url("oauth_browser") + "/callback"  # R24: the public one
    finally:
        monkeypatch.undo()
        stack.restart_function("quota_reset", None)


@pytest.mark.slow
def test_a_push_that_keeps_failing_ends_in_dead_letters_instead_of_looping(clean):
    unreachable = f"http://127.0.0.1:{free_port()}/projects/{clean.project_id}/topics/daily-tick"
    clean.pubsub.create_subscription("smoke-failing-push", "daily-tick", unreachable, max_delivery_attempts=5)
    try:
        clean.pubsub.publish("daily-tick", b'{"smoke": "dead-letter"}')

        dead = clean.dead_letters(1, timeout=45)
    finally:
        clean.pubsub.delete_subscription("smoke-failing-push")

    assert [bytes(m.data) for m in dead] == [b'{"smoke": "dead-letter"}']
    assert dead[0].attributes["CloudPubSubDeadLetterSourceSubscription"] == "smoke-failing-push"
    assert dead[0].attributes["CloudPubSubDeadLetterSourceDeliveryCount"] == "5"
