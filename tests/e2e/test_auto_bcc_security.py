"""Issue 23: what an Auto BCC address lets a stranger do, through the local stack.

An Auto BCC address, once seen, is held by people who are not the rep. These tests are the probes of the
issue: a copy the relay says is forged (dmarc=fail) is refused and creates nothing; the address can be
rotated per user and the old one stops working; an unknown address or a declared oversize body is refused
before the body is read; and one address takes at most AUTO_BCC_RATE_PER_MINUTE copies a minute.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest

from shared.crm.paths import auto_bcc_message_doc_id
from tests.e2e.bcc_steps import post_copy, snapshot
from tests.e2e.oauth_steps import connect, crm_for, seed_user

pytestmark = pytest.mark.e2e
T = TypeVar("T")

CLIENT = "carla@client.test"
GMAIL = "alice.rep@gmail.test"
DMARC_FAIL = ("Authentication-Results: mx.inbound.test; spf=pass smtp.mailfrom=mallory.test; dkim=none;\r\n"
              " dmarc=fail (p=reject) header.from=acme.example")
DMARC_PASS = ("Authentication-Results: mx.inbound.test; spf=pass smtp.mailfrom=acme.example;\r\n"
              " dkim=pass header.d=acme.example; dmarc=pass header.from=acme.example")


@pytest.fixture
def outlook_user(clean: Any, firestore_db: Any) -> str:
    """Alice, who never connected Gmail (R16b): her Auto BCC address."""
    seed_user(firestore_db, "acme", "alice", email="alice@acme.example")
    return str(crm_for(clean).status("acme", "alice")["autoBccAddress"])


def copy(bcc: str, msgid: str, *headers: str) -> bytes:
    lines = [*headers, "From: Alice <alice@acme.example>", f"To: {CLIENT}", f"Bcc: {bcc}", "Subject: Our offer",
             f"Message-ID: <{msgid}@acme.example>", "Content-Type: text/plain; charset=utf-8"]
    return ("\r\n".join(lines) + "\r\n\r\nPlease find our offer below.\r\n").encode()


def test_r16b_copy_the_relay_says_fails_dmarc_for_the_from_domain_is_refused_and_creates_nothing(
        clean: Any, outlook_user: str, firestore_db: Any) -> None:
    before = snapshot(firestore_db)
    resp = post_copy(clean, outlook_user, copy(outlook_user, "forged-1", DMARC_FAIL))
    assert (resp.status_code, resp.json()["error"]) == (403, "sender_not_authenticated")
    assert snapshot(firestore_db) == before  # no contact, no message


def test_r16b_copy_the_relay_authenticated_is_logged(clean: Any, outlook_user: str) -> None:
    resp = post_copy(clean, outlook_user, copy(outlook_user, "genuine-1", DMARC_PASS))
    assert resp.status_code == 201, resp.text


def test_auto_bcc_rotate_hands_out_a_new_address_and_the_old_one_stops_working(
        clean: Any, outlook_user: str, firestore_db: Any) -> None:
    crm = crm_for(clean)
    assert post_copy(clean, outlook_user, copy(outlook_user, "before-rotation")).status_code == 201

    rotated = crm.post("/auto-bcc/rotate", {"accountId": "acme", "userId": "alice"})

    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["autoBccAddress"]
    assert new != outlook_user and new.endswith("@bcc.localhost")
    assert crm.status("acme", "alice")["autoBccAddress"] == new
    before = snapshot(firestore_db)
    old = post_copy(clean, outlook_user, copy(outlook_user, "after-rotation-old"))
    assert (old.status_code, old.json()["error"]) == (404, "not_found")
    assert snapshot(firestore_db) == before
    assert post_copy(clean, new, copy(new, "after-rotation-new")).status_code == 201


def test_auto_bcc_rotated_address_survives_a_reconnect(clean: Any, outlook_user: str, sim_client: Any) -> None:
    crm = crm_for(clean)
    assert connect(crm, sim_client, "acme", "alice", GMAIL) == {"status": "connected"}
    new = crm.post("/auto-bcc/rotate", {"accountId": "acme", "userId": "alice"}).json()["autoBccAddress"]
    assert crm.status("acme", "alice")["autoBccAddress"] == new  # the address stored at connection follows
    assert connect(crm, sim_client, "acme", "alice", GMAIL) == {"status": "connected"}
    assert crm.status("acme", "alice")["autoBccAddress"] == new
    assert post_copy(clean, outlook_user, copy(outlook_user, "old-after-reconnect")).status_code == 404


def answer_before_the_body(url: str, to: str, key: str, declared: int) -> bytes:
    """POST with a large Content-Length, send only the headers and 1 KB of body, and read the answer: it can
    only come back while the body is unsent if the function answered without reading it."""
    parts = urlsplit(url)
    head = (f"POST /?to={to} HTTP/1.1\r\nHost: {parts.netloc}\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: message/rfc822\r\nContent-Length: {declared}\r\nConnection: close\r\n\r\n").encode()
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(head + b"X" * 1024)
        return sock.recv(4096)  # a function that waits for the rest of the body never answers: timeout


def test_auto_bcc_unknown_address_is_refused_before_the_body_is_read(clean: Any, outlook_user: str) -> None:
    unknown = "a" * 26 + "@bcc.localhost"
    answer = answer_before_the_body(clean.function_url("auto_bcc"), unknown, clean.secrets.inbound_api_key,
                                    declared=20 * 1024 * 1024)
    assert answer.startswith(b"HTTP/1.1 404"), answer[:200]


def test_auto_bcc_oversize_content_length_is_refused_before_the_body_is_read(clean: Any, outlook_user: str) -> None:
    answer = answer_before_the_body(clean.function_url("auto_bcc"), outlook_user, clean.secrets.inbound_api_key,
                                    declared=30 * 1024 * 1024 + 1)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def within_one_window(attempt: Callable[[int], T]) -> T:
    """Run `attempt` (given a fresh number) until it ran within one rate window (minute) from start to end."""
    for n in range(3):
        start = time.time() // 60
        out = attempt(n)
        if time.time() // 60 == start:
            return out
    raise AssertionError("three minute boundaries in a row")


def test_auto_bcc_address_takes_at_most_its_rate_a_minute_then_429_with_retry_info(
        clean: Any, function_env: Any, firestore_db: Any, outlook_user: str) -> None:
    function_env("auto_bcc", AUTO_BCC_RATE_PER_MINUTE="2")
    crm = crm_for(clean)

    def burst(n: int) -> tuple[int, list[Any]]:
        # an attempt that straddled a minute counted copies in the next one: a retry uses a rotated address,
        # whose counter is its own
        to = outlook_user if n == 0 else \
            crm.post("/auto-bcc/rotate", {"accountId": "acme", "userId": "alice"}).json()["autoBccAddress"]
        return n, [post_copy(clean, to, copy(to, f"burst-{n}-{i}")) for i in range(3)]

    n, (first, second, third) = within_one_window(burst)
    assert (first.status_code, second.status_code) == (201, 201)
    assert (third.status_code, third.json()["error"]) == (429, "rate_limited")
    assert 1 <= third.json()["retryAfterSeconds"] <= 60 and third.json()["limitPerMinute"] == 2
    logged = {m.id for c in firestore_db.collection("accounts/acme/conversations").list_documents()
              for m in c.collection("messages").list_documents()}
    sent = [auto_bcc_message_doc_id(f"<burst-{n}-{i}@acme.example>") for i in range(3)]
    assert [i in logged for i in sent] == [True, True, False]  # the third copy created nothing
