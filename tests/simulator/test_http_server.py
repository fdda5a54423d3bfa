"""The simulator's HTTP server (cheroot): what the Google clients and a CRM developer's tools rely on.

Keep-alive (httplib2 and requests reuse connections), chunked request bodies
(http.client, curl and proxies stream uploads that way), `Expect: 100-continue`
(curl sends it before large bodies), and uploads up to the discovery
document's maxSize for messages.send (36,700,160 bytes).
"""

from __future__ import annotations

import http.client
import json
import socket
import urllib.parse
from collections.abc import Callable, Iterator

import pytest
import requests

from simulator.gmail_api import MAX_UPLOAD_BYTES
from tests.simulator.conftest import rfc822

REP = "rep@example.com"
ALICE = "alice@customer.example"


def connection(sim: str) -> http.client.HTTPConnection:
    return http.client.HTTPConnection(urllib.parse.urlsplit(sim).netloc, timeout=30)


def pieces(data: bytes, size: int) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def test_one_connection_serves_many_requests_keep_alive(sim: str, token_for: Callable[..., str]) -> None:
    token = token_for(REP)
    conn = connection(sim)
    conn.connect()
    first_socket = conn.sock
    for _ in range(5):
        conn.request("GET", "/gmail/v1/users/me/profile", headers={"Authorization": f"Bearer {token}"})
        resp = conn.getresponse()
        assert resp.status == 200 and json.loads(resp.read())["emailAddress"] == REP
        assert (resp.getheader("Connection") or "").lower() != "close"
    assert conn.sock is first_socket  # never reconnected
    conn.close()


def test_many_clients_each_keep_their_connection(sim: str, token_for: Callable[..., str]) -> None:
    # The local stack holds dozens of connections to the simulator (functions, sync workers, tests).
    token = token_for(REP)
    conns = [connection(sim) for _ in range(40)]
    for conn in conns:
        conn.connect()
    sockets = [conn.sock for conn in conns]
    for _ in range(3):
        for conn in conns:
            conn.request("GET", "/gmail/v1/users/me/profile", headers={"Authorization": f"Bearer {token}"})
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 200 and (resp.getheader("Connection") or "").lower() != "close"
    assert [conn.sock for conn in conns] == sockets
    for conn in conns:
        conn.close()


def test_chunked_media_upload_sends_the_message(sim: str, token_for: Callable[..., str]) -> None:
    token = token_for(REP)
    raw = rfc822(REP, ALICE, "Streamed", "x" * 200_000)
    conn = connection(sim)
    conn.request(
        "POST", "/upload/gmail/v1/users/me/messages/send?uploadType=media", body=pieces(raw, 8192),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "message/rfc822"}, encode_chunked=True,
    )
    resp = conn.getresponse()
    sent = json.loads(resp.read())
    assert resp.status == 200 and sent["labelIds"] == ["SENT"]
    stored = requests.get(f"{sim}/sim/mailboxes/{REP}/messages/{sent['id']}/raw", timeout=10).content
    assert stored.endswith(b"x" * 200_000)


def test_chunked_body_reaches_the_admin_api(sim: str) -> None:
    requests.post(f"{sim}/sim/mailboxes", json={"address": REP}, timeout=5).raise_for_status()
    conn = connection(sim)
    conn.request("POST", f"/sim/mailboxes/{REP}/deliver", body=pieces(rfc822(ALICE, REP, "Chunked in"), 10),
                 headers={"Content-Type": "message/rfc822"}, encode_chunked=True)
    resp = conn.getresponse()
    assert resp.status == 200 and "id" in json.loads(resp.read())
    stored = requests.get(f"{sim}/sim/mailboxes/{REP}/messages", timeout=5).json()["messages"]
    subjects = [m["headers"]["Subject"] for m in stored]
    assert subjects == ["Chunked in"]


def test_expect_100_continue_is_answered_before_the_body(sim: str, token_for: Callable[..., str]) -> None:
    token = token_for(REP)
    raw = rfc822(REP, ALICE, "After continue")
    host, port = urllib.parse.urlsplit(sim).netloc.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(
            (f"POST /upload/gmail/v1/users/me/messages/send?uploadType=media HTTP/1.1\r\nHost: {host}\r\n"
             f"Authorization: Bearer {token}\r\nContent-Type: message/rfc822\r\nContent-Length: {len(raw)}\r\n"
             "Expect: 100-continue\r\n\r\n").encode()
        )
        interim = s.recv(1024)
        assert interim.startswith(b"HTTP/1.1 100")
        s.sendall(raw)
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += s.recv(65536)
    assert answer.split(b"\r\n", 1)[0].startswith(b"HTTP/1.1 200")


@pytest.mark.slow  # 36 MB through the server and the MIME parser: a few seconds
def test_chunked_upload_of_exactly_the_discovery_max_size_is_accepted(sim: str, token_for: Callable[..., str]) -> None:
    token = token_for(REP)
    head = f"From: {REP}\r\nTo: {ALICE}\r\nSubject: max\r\n\r\n".encode()
    raw = head + b"a" * (MAX_UPLOAD_BYTES - len(head))
    conn = connection(sim)
    conn.request(
        "POST", "/upload/gmail/v1/users/me/messages/send?uploadType=media", body=pieces(raw, 1 << 20),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "message/rfc822"}, encode_chunked=True,
    )
    resp = conn.getresponse()
    body = resp.read()
    assert resp.status == 200, body[:300]


def test_chunked_upload_one_byte_over_the_max_size_is_413_in_googles_json(
    sim: str, token_for: Callable[..., str]
) -> None:
    token = token_for(REP)
    raw = f"From: {REP}\r\nTo: {ALICE}\r\n\r\n".encode().ljust(MAX_UPLOAD_BYTES + 1, b"a")
    conn = connection(sim)
    conn.request(
        "POST", "/upload/gmail/v1/users/me/messages/send?uploadType=media", body=pieces(raw, 1 << 20),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "message/rfc822"}, encode_chunked=True,
    )
    resp = conn.getresponse()
    err = json.loads(resp.read())["error"]
    assert resp.status == 413 and err["errors"][0]["reason"] == "uploadTooLarge"
