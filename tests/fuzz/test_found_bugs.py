"""Each case the fuzzer found that answered 5xx (or wrote while refusing), kept as a test.

Each names the cause it found; both causes are fixed (R16b dates in
shared/auto_bcc/, R23 byte budgets in shared/send/), so these now guard the fixes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.fuzz.stray import diff, snapshot
from tests.fuzz.world import REP, World, build_world

pytestmark = pytest.mark.e2e


@pytest.fixture
def world(stack: Any) -> Iterator[World]:
    yield build_world(stack)
    stack.reset()


def post_copy(world: World, raw: bytes) -> requests.Response:
    return requests.post(world.stack.function_url("auto_bcc"), params={"to": world.auto_bcc}, data=raw,
                         headers={"Authorization": f"Bearer {world.keys['inbound']}",
                                  "Content-Type": "message/rfc822"}, timeout=60)


def copy(date: str, msgid: str = "<dated@corp.example>") -> bytes:
    return (f"From: Alice <{REP}>\r\nTo: ann@client.test\r\nBcc: {{bcc}}\r\nSubject: Offer\r\n"
            f"Date: {date}\r\nMessage-ID: {msgid}\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\nHello\r\n").encode()


# Found: a Date of 9999-12-31 23:59:59 -0500 is past datetime.max in UTC; Firestore's encoder raised
# OverflowError after the contact was written (a 500 and a partial write). Fixed in shared/auto_bcc/ (R16b).
def test_auto_bcc_copy_dated_31_dec_9999_minus_0500_is_no_5xx_and_writes_nothing_if_refused(world: World) -> None:
    before = snapshot(world.stack)
    resp = post_copy(world, copy("Fri, 31 Dec 9999 23:59:59 -0500").replace(b"{bcc}", world.auto_bcc.encode()))
    writes = diff(before, snapshot(world.stack))
    assert resp.status_code < 500, resp.text
    if resp.status_code >= 400:
        assert writes.count == 0, writes.describe()


def send(world: World, key: str, **fields: str) -> requests.Response:
    body = {"accountId": "acme", "userId": "alice", "contactId": "carl", "subject": "Big", "idempotencyKey": key,
            **fields}
    return requests.post(world.stack.function_url("send_email"), json=body, timeout=120,
                         headers={"Authorization": f"Bearer {world.keys['crm']}"})


# Found: bodies were cut by characters, not bytes; 150,000 emoji each are ~1.2 MB of UTF-8, so the
# log write failed after Gmail sent the mail and the answer was a 500. Fixed by R23 (shared/send/sent_log.py).
def test_send_of_150000_emoji_text_and_html_gmail_accepted_is_no_5xx_and_a_retry_answers_the_same(
        world: World) -> None:
    emoji = "😀" * 150_000
    first = send(world, "big-1", text=emoji, html=f"<p>{emoji}</p>")
    assert first.status_code < 500, first.text
    again = send(world, "big-1", text=emoji, html=f"<p>{emoji}</p>")
    assert (again.status_code, again.json()) == (first.status_code, first.json())
