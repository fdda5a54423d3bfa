"""The batch endpoint as google-api-python-client's new_batch_http_request uses it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests

from simulator.app import BackgroundServer
from tests.simulator.conftest import credentials, deliver, gmail_service, rfc822

REP = "rep@example.com"
ALICE = "alice@customer.example"


def seed(sim: str, n: int) -> list[str]:
    return [deliver(sim, REP, rfc822(ALICE, REP, f"m{i}"))["id"] for i in range(n)]


def batch_get(gmail: Any, ids: list[str]) -> dict[str, tuple[Any, Any]]:
    results: dict[str, tuple[Any, Any]] = {}

    def done(request_id: str, response: Any, exception: Any) -> None:
        results[request_id] = (response, exception)

    batch = gmail.new_batch_http_request(callback=done)
    for i in ids:
        batch.add(gmail.users().messages().get(userId="me", id=i, format="metadata"), request_id=i)
    batch.execute()
    return results


def test_batch_goes_to_root_url_and_answers_every_part(sim: str, token_for: Callable[..., str]) -> None:
    gmail = gmail_service(sim, token_for(REP))
    ids = seed(sim, 50)
    results = batch_get(gmail, ids)
    assert sorted(results) == sorted(ids)
    assert all(exc is None and resp["id"] == rid for rid, (resp, exc) in results.items())
    assert requests.get(f"{sim}/sim/stats", timeout=5).json()["calls"][REP]["messages.get"] == 50


def test_each_part_is_charged_and_a_full_batch_of_100_gets_hits_the_user_rate(
    sim: str, token_for: Callable[..., str]
) -> None:
    requests.put(f"{sim}/sim/settings", json={"rateLimitUnitsPerSecond": None}, timeout=5).raise_for_status()
    gmail = gmail_service(sim, token_for(REP))
    ids = seed(sim, 100)
    results = batch_get(gmail, ids)
    limited = [exc for _, exc in results.values() if exc is not None]
    assert limited and all(exc.resp.status == 429 for exc in limited)
    assert len(limited) < 100  # the first second's worth of units went through


def test_parts_with_an_expired_token_are_refreshed_and_resent(sim: str, sim_server: BackgroundServer) -> None:
    requests.put(f"{sim}/sim/settings", json={"accessTokenTtlSeconds": 0}, timeout=5).raise_for_status()
    creds = credentials(sim_server, REP)  # its access token is already dead
    ids = seed(sim, 5)
    requests.put(f"{sim}/sim/settings", json={"accessTokenTtlSeconds": 3600}, timeout=5).raise_for_status()
    stale = creds.token
    results = batch_get(gmail_service(sim, creds), ids)
    assert all(exc is None for _, exc in results.values())
    assert creds.token != stale


def test_more_than_100_parts_is_400(sim: str, token_for: Callable[..., str]) -> None:
    token = token_for(REP)
    parts = "".join(
        f"--b\nContent-Type: application/http\nContent-ID: <x + {i}>\n\nGET /gmail/v1/users/me/profile HTTP/1.1\n\n"
        for i in range(101)
    )
    resp = requests.post(
        f"{sim}/batch/gmail/v1", data=parts + "--b--\n",
        headers={"Content-Type": "multipart/mixed; boundary=b", "Authorization": f"Bearer {token}"}, timeout=10,
    )
    assert resp.status_code == 400


@pytest.mark.parametrize("path", ["/batch/gmail/v1", "/batch"])
def test_inner_request_without_authorization_uses_the_outer_one_crlf_parts(
    sim: str, token_for: Callable[..., str], path: str
) -> None:
    token = token_for(REP)
    body = (
        "--XYZ\r\nContent-Type: application/http\r\nContent-ID: <item1>\r\n\r\n"
        "GET /gmail/v1/users/me/profile HTTP/1.1\r\n\r\n"
        "--XYZ\r\nContent-Type: application/http\r\nContent-ID: <item2>\r\n\r\n"
        "GET /gmail/v1/users/me/messages/ffffffffffffffff HTTP/1.1\r\n\r\n"
        "--XYZ--\r\n"
    )
    resp = requests.post(
        f"{sim}{path}", data=body,
        headers={"Content-Type": "multipart/mixed; boundary=XYZ", "Authorization": f"Bearer {token}"}, timeout=10,
    )
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("multipart/mixed; boundary=")
    text = resp.text
    assert "Content-ID: <response-item1>" in text and "Content-ID: <response-item2>" in text
    assert "HTTP/1.1 200 OK" in text and '"emailAddress": "rep@example.com"' in text
    assert "HTTP/1.1 404 Not Found" in text


def test_batch_of_sends_sends_each_within_the_user_rate(sim: str, token_for: Callable[..., str]) -> None:
    import base64

    gmail = gmail_service(sim, token_for(REP))
    batch = gmail.new_batch_http_request()
    for i in range(2):  # 2 x 100 units: within the (lifted) per-user rate
        raw = base64.urlsafe_b64encode(rfc822(REP, ALICE, f"s{i}")).decode()
        batch.add(gmail.users().messages().send(userId="me", body={"raw": raw}))
    batch.execute()
    sent = requests.get(f"{sim}/sim/mailboxes/{REP}/messages", params={"label": "SENT"}, timeout=5).json()
    assert len(sent["messages"]) == 2
