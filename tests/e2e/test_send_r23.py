"""R23 through the local stack: a send Gmail accepted is never a 5xx; one that cannot go out uses no slot.

SPEC R23: Gmail accepted it → logged (bodies cut to fit Firestore's 1 MiB,
`truncated: true`) and answered 200, and a retry with the same key gets the
same answer. A request that cannot be sent is refused with a 4xx before
anything goes out and uses no daily slot (issue 15, findings 2 and 6).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from email import message_from_bytes, policy
from typing import Any

import pytest

from shared.core.budget import MAX_DOCUMENT_BYTES, document_size
from tests.e2e.send_steps import ACCOUNT, CONTACT, REP, World, drain_sync, make_world

pytestmark = pytest.mark.e2e

EMOJI_TEXT = "\U0001f600" * 150_000  # 600,000 bytes of UTF-8
EMOJI_HTML = "<p>" + "\U0001f680" * 150_000 + "</p>"


@pytest.fixture
def world(stack: Any, clean: Any, firestore_db: Any, sim_client: Any) -> Iterator[World]:
    w = make_world(stack, firestore_db, sim_client)
    yield w
    drain_sync(w)


def test_r23_a_send_too_big_for_one_document_is_logged_cut_to_fit_and_answered_200(world: World) -> None:
    resp = world.send(key="emoji", text=EMOJI_TEXT, html=EMOJI_HTML, timeout=180)
    assert resp.status_code == 200, resp.text
    out = resp.json()

    sent = message_from_bytes(world.raw(out["gmailMessageId"]), policy=policy.default)
    assert sent.get_body(("plain",)).get_content().rstrip("\r\n") == EMOJI_TEXT  # Gmail got all of it

    doc = world.messages()[out["messageId"]]
    assert doc["truncated"] is True
    assert 0 < len(doc["text"]) < len(EMOJI_TEXT) and EMOJI_TEXT.startswith(doc["text"])
    assert 0 < len(doc["html"]) < len(EMOJI_HTML) and EMOJI_HTML.startswith(doc["html"])
    path = f"accounts/{ACCOUNT}/conversations/{CONTACT}/messages/{out['messageId']}"
    assert document_size(path, doc) <= MAX_DOCUMENT_BYTES


def test_r23_a_retry_of_a_cut_send_gets_the_same_answer_and_sends_nothing(world: World) -> None:
    first = world.send(key="emoji", text=EMOJI_TEXT, html=EMOJI_HTML, timeout=180)
    again = world.send(key="emoji", text=EMOJI_TEXT, html=EMOJI_HTML, timeout=180)
    assert first.status_code == again.status_code == 200, again.text
    assert again.json() == first.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert world.send_calls() == 1 and len(world.messages()) == 1


def test_r23_a_small_send_is_stored_whole_and_not_marked_truncated(world: World) -> None:
    out = world.send(text="short").json()
    doc = world.messages()[out["messageId"]]
    assert doc["truncated"] is False and doc["text"] == "short"


def test_r23_a_token_that_does_not_decrypt_is_a_clear_409_and_uses_no_slot(world: World) -> None:
    from shared.crm import paths

    token = world.db.document(f"{paths.TOKENS}/{paths.mailbox_id(REP)}")
    token.update({"ciphertext": base64.b64encode(b"not what was sealed" * 4).decode()})

    resp = world.send(key="broken-token")
    assert resp.status_code == 409, resp.text
    assert resp.json()["error"] == "credentials_unreadable"
    assert world.sent() == [] and world.send_calls() == 0
    assert world.collection(paths.SEND_SLOTS) == {} and world.collection(paths.IDEMPOTENCY) == {}
