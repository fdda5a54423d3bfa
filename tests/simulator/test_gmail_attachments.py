"""users.messages.attachments.get (R20): what a client that holds only ids from messages.get can fetch.

Gmail's answer is a MessagePartBody `{attachmentId, size, data}` (data base64url),
costs 5 quota units, and resolves exactly the `payload.parts[].body.attachmentId`
that messages.get shows for the same message; an id of another message, a
made-up one, or one of a deleted message is 404 notFound.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

import pytest
import requests
from googleapiclient.errors import HttpError

from tests.simulator.conftest import MODIFY, READ, SEND, deliver, gmail_service

REP = "rep@example.com"
ALICE = "alice@customer.example"
PDF = b"%PDF-1.4 quote " + bytes(range(256)) * 40  # every byte value: base64url must carry - and _
PNG = b"\x89PNG\r\n\x1a\n" + b"\xff\xfe" * 300


@pytest.fixture
def gmail(sim: str, token_for: Callable[..., str]) -> Any:
    return gmail_service(sim, token_for(REP, (READ, SEND, MODIFY, "https://mail.google.com/")))


def two_attachments(frm: str = ALICE, to: str = REP) -> bytes:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = frm, to, "Quote and logo"
    m.set_content("Quote and logo attached.")
    m.add_attachment(PDF, maintype="application", subtype="pdf", filename="quote.pdf")
    m.add_attachment(PNG, maintype="image", subtype="png", filename="logo.png")
    return m.as_bytes()


def attachment_parts(gmail: Any, msg_id: str) -> list[dict[str, Any]]:
    msg = gmail.users().messages().get(userId="me", id=msg_id).execute()
    return [p for p in msg["payload"]["parts"] if p["body"].get("attachmentId")]


def fetch(gmail: Any, msg_id: str, att_id: str, **kw: Any) -> dict[str, Any]:
    out: dict[str, Any] = gmail.users().messages().attachments().get(
        userId="me", messageId=msg_id, id=att_id, **kw
    ).execute()
    return out


def test_attachments_get_answers_attachment_id_size_and_base64url_data(sim: str, gmail: Any) -> None:
    got = deliver(sim, REP, two_attachments())
    pdf = attachment_parts(gmail, got["id"])[0]
    body = fetch(gmail, got["id"], pdf["body"]["attachmentId"])
    assert set(body) == {"attachmentId", "size", "data"}
    assert body["attachmentId"] == pdf["body"]["attachmentId"]
    assert body["size"] == len(PDF) == pdf["body"]["size"]
    assert "+" not in body["data"] and "/" not in body["data"]
    assert base64.urlsafe_b64decode(body["data"]) == PDF


def test_attachments_get_resolves_each_attachment_id_messages_get_shows(sim: str, gmail: Any) -> None:
    got = deliver(sim, REP, two_attachments())
    parts = attachment_parts(gmail, got["id"])
    assert [p["filename"] for p in parts] == ["quote.pdf", "logo.png"]
    data = [base64.urlsafe_b64decode(fetch(gmail, got["id"], p["body"]["attachmentId"])["data"]) for p in parts]
    assert data == [PDF, PNG]


def test_attachment_ids_are_stable_across_reads_and_label_changes(sim: str, gmail: Any) -> None:
    got = deliver(sim, REP, two_attachments())
    before = [p["body"]["attachmentId"] for p in attachment_parts(gmail, got["id"])]
    gmail.users().messages().modify(userId="me", id=got["id"], body={"addLabelIds": ["STARRED"]}).execute()
    after = [p["body"]["attachmentId"] for p in attachment_parts(gmail, got["id"])]
    assert before == after and len(set(before)) == 2


def test_threads_get_shows_the_same_attachment_ids_as_messages_get(sim: str, gmail: Any) -> None:
    got = deliver(sim, REP, two_attachments())
    thread = gmail.users().threads().get(userId="me", id=got["threadId"]).execute()
    in_thread = [p["body"].get("attachmentId") for p in thread["messages"][0]["payload"]["parts"]][1:]
    assert in_thread == [p["body"]["attachmentId"] for p in attachment_parts(gmail, got["id"])]


def test_sent_message_attachments_can_be_fetched_from_the_senders_mailbox(sim: str, gmail: Any) -> None:
    raw = base64.urlsafe_b64encode(two_attachments(frm=REP, to=ALICE)).decode()
    sent = gmail.users().messages().send(userId="me", body={"raw": raw}).execute()
    part = attachment_parts(gmail, sent["id"])[0]
    assert base64.urlsafe_b64decode(fetch(gmail, sent["id"], part["body"]["attachmentId"])["data"]) == PDF


def test_unknown_attachment_id_is_404_not_found(sim: str, gmail: Any) -> None:
    got = deliver(sim, REP, two_attachments())
    with pytest.raises(HttpError) as err:
        fetch(gmail, got["id"], "ANGjdJ_no_such_attachment")
    assert err.value.resp.status == 404 and err.value.error_details[0]["reason"] == "notFound"


def test_another_messages_attachment_id_is_404(sim: str, gmail: Any) -> None:
    a = deliver(sim, REP, two_attachments())
    b = deliver(sim, REP, two_attachments())
    a_id = attachment_parts(gmail, a["id"])[0]["body"]["attachmentId"]
    with pytest.raises(HttpError) as err:
        fetch(gmail, b["id"], a_id)
    assert err.value.resp.status == 404


def test_attachment_of_a_deleted_message_is_404(sim: str, gmail: Any) -> None:
    got = deliver(sim, REP, two_attachments())
    att = attachment_parts(gmail, got["id"])[0]["body"]["attachmentId"]
    gmail.users().messages().delete(userId="me", id=got["id"]).execute()
    with pytest.raises(HttpError) as err:
        fetch(gmail, got["id"], att)
    assert err.value.resp.status == 404


def test_attachments_get_costs_twenty_quota_units_under_the_2026_model(sim: str, gmail: Any) -> None:
    got = deliver(sim, REP, two_attachments())
    att = attachment_parts(gmail, got["id"])[0]["body"]["attachmentId"]
    fetch(gmail, got["id"], att)
    fetch(gmail, got["id"], att)
    stats = requests.get(f"{sim}/sim/stats", timeout=5).json()
    assert stats["quotaUnits"][REP]["attachments.get"] == 40
    assert stats["calls"][REP]["attachments.get"] == 2


def test_partial_response_fields_size_only(sim: str, gmail: Any) -> None:
    got = deliver(sim, REP, two_attachments())
    att = attachment_parts(gmail, got["id"])[1]["body"]["attachmentId"]
    assert fetch(gmail, got["id"], att, fields="size") == {"size": len(PNG)}
