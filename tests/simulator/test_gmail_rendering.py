"""How a stored message becomes Gmail's JSON: the cached fast path must equal the general one byte for byte."""

from __future__ import annotations

import json
import random
from email.message import EmailMessage

import pytest

from simulator.gmail_api import full_message_json, render_message
from simulator.mime import _WS, SNIPPET_CHARS, _collapsed_start
from simulator.state import GmailState

REP = "rep@example.com"


def multipart() -> bytes:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = "Ann <ann@customer.example>", REP, "Ünïcode & \"quotes\""
    m.set_content("It's a text body with <tags> and\ttabs.\n" * 20)
    m.add_alternative("<p>It&#39;s <b>HTML</b></p>", subtype="html")
    m.add_attachment(b"\x00\x01" * 500, maintype="application", subtype="pdf", filename="q.pdf")
    return m.as_bytes()


@pytest.mark.parametrize("labels", [["UNREAD", "CATEGORY_PERSONAL", "INBOX"], []], ids=["labelled", "no-labels"])
def test_full_format_fast_path_is_the_same_json_as_render_message(labels: list[str]) -> None:
    state = GmailState()
    state.create_mailbox(REP)
    msg = state.deliver(REP, multipart())
    expected = json.dumps(render_message(msg, labels, 1234, "full")).encode()
    assert full_message_json(msg, labels, 1234) == expected
    assert full_message_json(msg, labels, 1234) == expected  # the cached payload gives the same again


def test_snippet_start_equals_collapsing_the_whole_text() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        text = "".join(rng.choice(["word", " ", "\n", "\t\t", " " * rng.randint(0, 1500)]) for _ in range(200))
        assert _collapsed_start(text) == _WS.sub(" ", text).strip()[:SNIPPET_CHARS]


def test_snippet_of_a_huge_body_is_its_first_200_characters() -> None:
    state = GmailState()
    state.create_mailbox(REP)
    body = ("lorem   ipsum\r\n" * 2_000_000).encode()
    msg = state.deliver(REP, b"From: a@b.example\r\nTo: rep@example.com\r\nSubject: big\r\n\r\n" + body)
    assert msg.parsed.snippet == ("lorem ipsum " * 20)[:SNIPPET_CHARS]
