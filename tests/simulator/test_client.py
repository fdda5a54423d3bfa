"""SimClient: each method is one admin call and hands back what the simulator answered."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from simulator.client import SimClient, SimClientError

REP = "rep.client@example.com"
READ = "https://www.googleapis.com/auth/gmail.readonly"


def mail(subject: str, to: str = REP, sender: str = "contact@example.org") -> bytes:
    return (
        f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject.replace(' ', '.')}@example.org>\r\n\r\nHello.\r\n"
    ).encode()


@pytest.fixture
def client(sim: str) -> SimClient:
    return SimClient(sim)


def test_create_mailbox_is_idempotent_and_mailbox_reads_it_back(client: SimClient) -> None:
    first = client.create_mailbox(REP)
    assert client.create_mailbox(REP)["historyId"] == first["historyId"]
    box = client.mailbox(REP)
    assert box["address"] == REP and box["watch"] is None and box["activeTokens"] == 0
    assert REP in client.mailboxes()


def test_deliver_then_messages_and_raw_message_return_it(client: SimClient) -> None:
    client.create_mailbox(REP)
    got = client.deliver(REP, mail("hello there"), internal_date_ms=1_700_000_000_000)
    [listed] = client.messages(REP)
    assert listed["id"] == got["id"] and "INBOX" in listed["labelIds"]
    assert listed["internalDate"] == "1700000000000"
    assert listed["headers"]["Subject"] == "hello there"
    assert client.raw_message(REP, got["id"]).endswith(mail("hello there"))  # after Gmail's Delivered-To


def test_send_as_user_lands_in_sent(client: SimClient) -> None:
    client.create_mailbox(REP)
    sent = client.send_as_user(REP, mail("from the ui", to="someone@example.org", sender=REP))
    assert [m["id"] for m in client.messages(REP, label="SENT")] == [sent["id"]]
    assert client.messages(REP, label="INBOX") == []


def test_modify_and_delete_message(client: SimClient) -> None:
    client.create_mailbox(REP)
    msg_id = client.deliver(REP, mail("archive me"))["id"]
    assert "INBOX" not in client.modify(REP, msg_id, remove=["INBOX"])["labelIds"]
    client.delete_message(REP, msg_id)
    assert client.messages(REP) == []


ARRIVED = ["UNREAD", "CATEGORY_PERSONAL", "INBOX"]


@pytest.mark.parametrize(
    ("method", "labels"),
    [("read", ["CATEGORY_PERSONAL", "INBOX"]), ("unread", ARRIVED), ("star", [*ARRIVED, "STARRED"]),
     ("unstar", ARRIVED), ("trash", [*ARRIVED, "TRASH"]), ("untrash", ARRIVED)],
)
def test_rep_actions_answer_the_labels_after_the_change(client: SimClient, method: str, labels: list[str]) -> None:
    client.create_mailbox(REP)
    got = client.deliver(REP, mail(f"act {method}"))
    answer = getattr(client, method)(REP, got["id"])
    assert answer["id"] == got["id"] and answer["labelIds"] == labels
    assert int(answer["historyId"]) >= int(got["historyId"])


def test_thread_action_answers_every_message_of_the_thread(client: SimClient) -> None:
    client.create_mailbox(REP)
    got = client.deliver(REP, mail("thread act"))
    answer = client.thread_action(REP, got["threadId"], "star")
    assert answer["id"] == got["threadId"]
    assert [m["id"] for m in answer["messages"]] == [got["id"]] and "STARRED" in answer["messages"][0]["labelIds"]


def test_expire_watch_marks_the_watch_expired(client: SimClient, token_for: Any, sim: str) -> None:
    from tests.simulator.conftest import PROJECT, gmail_service

    gmail = gmail_service(sim, token_for(REP))
    gmail.users().watch(userId="me", body={"topicName": f"projects/{PROJECT}/topics/t"}).execute()
    assert client.mailbox(REP)["watch"]["expired"] is False
    client.expire_watch(REP)
    assert client.mailbox(REP)["watch"]["expired"] is True
    with pytest.raises(SimClientError) as err:
        client.expire_watch("nobody@example.com")
    assert err.value.status == 404


def test_revoke_counts_the_live_tokens_and_leaves_none(client: SimClient, token_for: Any) -> None:
    token_for(REP, (READ,))
    assert client.mailbox(REP)["activeTokens"] == 1
    assert client.revoke(REP) == 2  # its refresh token and its access token
    assert client.mailbox(REP)["activeTokens"] == 0


def test_settings_take_snake_or_camel_case_and_reset_restores_them(client: SimClient) -> None:
    default = client.settings()["accessTokenTtlSeconds"]
    assert client.settings(access_token_ttl_seconds=7)["accessTokenTtlSeconds"] == 7
    assert client.settings(dailySendLimit=3)["dailySendLimit"] == 3
    client.reset()
    assert client.settings()["accessTokenTtlSeconds"] == default


def test_set_faults_replaces_the_fault_set(client: SimClient) -> None:
    spec = {"seed": 7, "methods": {"messages.get": {"errorRate": 0.5, "codes": [503], "latencyMs": 0}}}
    assert client.set_faults(spec)["methods"] == spec["methods"]
    assert client.faults()["seed"] == 7
    client.set_faults({})
    assert client.faults()["methods"] == {}


def test_stats_has_quota_units_and_calls(client: SimClient) -> None:
    stats = client.stats()
    assert "quotaUnits" in stats and "calls" in stats


def test_add_secret_version_returns_the_new_version(client: SimClient) -> None:
    name = "client-test-secret"
    first = client.add_secret_version(name, "a")["version"]
    assert client.add_secret_version(name, "b")["version"] == first + 1


def test_an_error_answer_raises_with_status_and_body(client: SimClient) -> None:
    with pytest.raises(SimClientError) as err:
        client.mailbox("nobody@example.com")
    assert err.value.status == 404 and err.value.body


def test_health(client: SimClient) -> None:
    assert client.health() == {"ok": True}


def test_consent_returns_the_callback_location_without_following_it(client: SimClient, sim_server: Any) -> None:
    c = next(c for c in sim_server.ctx.config.oauth_clients if c.redirect_uris)
    url = f"{client.base_url}/o/oauth2/v2/auth?" + urlencode(
        {"client_id": c.client_id, "redirect_uri": c.redirect_uris[0], "response_type": "code",
         "scope": READ, "state": "s1"}
    )
    location = client.consent(url, REP)  # the redirect URI (port 9) is not listening: it must not be fetched
    assert location.startswith(c.redirect_uris[0]) and parse_qs(urlsplit(location).query)["state"] == ["s1"]
    denied = client.consent(url, REP, "none")
    assert parse_qs(urlsplit(denied).query)["error"] == ["access_denied"]


def test_consent_on_an_error_page_raises(client: SimClient) -> None:
    url = f"{client.base_url}/o/oauth2/v2/auth?client_id=unknown&redirect_uri=http://x/cb&response_type=code&scope=openid"
    with pytest.raises(SimClientError) as err:
        client.consent(url, REP)
    assert err.value.status == 401


def test_client_uses_only_the_standard_library() -> None:
    import ast
    import inspect

    import simulator.client as mod

    tree = ast.parse(inspect.getsource(mod))
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert imported <= {"__future__", "json", "urllib", "typing"}
