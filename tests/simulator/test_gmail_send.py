"""messages.send and the rep's sends from Gmail's UI: ids, labels, From, delivery, threading, uploads."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from email import message_from_bytes
from email.message import EmailMessage
from email.utils import getaddresses
from typing import Any

import pytest
import requests
from googleapiclient.errors import HttpError
from googleapiclient.http import MediaIoBaseUpload

from tests.simulator.conftest import b64, deliver, gmail_service, rfc822

REP = "rep@example.com"
ALICE = "alice@customer.example"
BOB = "bob@customer.example"


@pytest.fixture
def gmail(sim: str, token_for: Callable[..., str]) -> Any:
    return gmail_service(sim, token_for(REP))


def raw_of(sim: str, address: str, msg_id: str) -> bytes:
    resp = requests.get(f"{sim}/sim/mailboxes/{address}/messages/{msg_id}/raw", timeout=5)
    resp.raise_for_status()
    return resp.content


def inbox(sim: str, address: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = requests.get(
        f"{sim}/sim/mailboxes/{address}/messages", params={"label": "INBOX"}, timeout=5
    ).json()["messages"]
    return out


def send(gmail: Any, raw: bytes, thread_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"raw": b64(raw)}
    if thread_id:
        body["threadId"] = thread_id
    out: dict[str, Any] = gmail.users().messages().send(userId="me", body=body).execute()
    return out


def test_send_assigns_ids_and_the_sent_label(gmail: Any) -> None:
    sent = send(gmail, rfc822(REP, ALICE, "Hello"))
    assert sent["labelIds"] == ["SENT"]
    assert len(sent["id"]) >= 16 and sent["threadId"] == sent["id"]


def test_send_forces_the_owners_from_and_adds_message_id_and_date(sim: str, gmail: Any) -> None:
    sent = send(gmail, rfc822('"Rep Name" <someone-else@example.com>', ALICE, "Hello"))
    stored = message_from_bytes(raw_of(sim, REP, sent["id"]))
    assert getaddresses([stored["From"]]) == [("Rep Name", "rep@example.com")]
    assert stored["Message-ID"].endswith("@mail.gmail.com>")
    assert stored["Date"]


def test_send_delivers_to_simulated_recipients_without_bcc(sim: str, gmail: Any) -> None:
    requests.post(f"{sim}/sim/mailboxes", json={"address": ALICE}, timeout=5)
    requests.post(f"{sim}/sim/mailboxes", json={"address": BOB}, timeout=5)
    sent = send(gmail, rfc822(REP, ALICE, "Hello", Bcc=BOB))
    assert "Bcc: bob@customer.example" in raw_of(sim, REP, sent["id"]).decode()  # the sender keeps it
    for rcpt in (ALICE, BOB):
        (copy,) = inbox(sim, rcpt)
        assert copy["id"] != sent["id"]
        assert "Bcc" not in copy["headers"]
        assert copy["headers"]["Delivered-To"] == rcpt


def test_send_to_self_is_one_message_in_sent_and_inbox(sim: str, gmail: Any) -> None:
    sent = send(gmail, rfc822(REP, REP, "Note to self"))
    assert set(sent["labelIds"]) == {"SENT", "INBOX", "UNREAD"}
    assert len(requests.get(f"{sim}/sim/mailboxes/{REP}/messages", timeout=5).json()["messages"]) == 1


def test_reply_with_thread_id_and_matching_headers_joins_the_thread(sim: str, gmail: Any) -> None:
    first = deliver(sim, REP, rfc822(ALICE, REP, "Pricing", Message_ID="<a1@customer.example>"))
    reply = send(gmail, rfc822(REP, ALICE, "Re: Pricing", In_Reply_To="<a1@customer.example>",
                               References="<a1@customer.example>"), thread_id=first["threadId"])
    assert reply["threadId"] == first["threadId"]


def test_thread_id_with_a_different_subject_starts_a_new_thread(sim: str, gmail: Any) -> None:
    first = deliver(sim, REP, rfc822(ALICE, REP, "Pricing", Message_ID="<a1@customer.example>"))
    reply = send(gmail, rfc822(REP, ALICE, "Something else", In_Reply_To="<a1@customer.example>",
                               References="<a1@customer.example>"), thread_id=first["threadId"])
    assert reply["threadId"] != first["threadId"]


def test_thread_id_without_references_starts_a_new_thread(sim: str, gmail: Any) -> None:
    first = deliver(sim, REP, rfc822(ALICE, REP, "Pricing", Message_ID="<a1@customer.example>"))
    reply = send(gmail, rfc822(REP, ALICE, "Re: Pricing"), thread_id=first["threadId"])
    assert reply["threadId"] != first["threadId"]


def test_api_send_without_thread_id_starts_a_new_thread(sim: str, gmail: Any) -> None:
    first = deliver(sim, REP, rfc822(ALICE, REP, "Pricing", Message_ID="<a1@customer.example>"))
    reply = send(gmail, rfc822(REP, ALICE, "Re: Pricing", In_Reply_To="<a1@customer.example>"))
    assert reply["threadId"] != first["threadId"]


def test_unknown_thread_id_is_404(gmail: Any) -> None:
    with pytest.raises(HttpError) as err:
        send(gmail, rfc822(REP, ALICE, "Hi"), thread_id="ffffffffffffffff")
    assert err.value.resp.status == 404


def test_inbound_reply_is_threaded_by_headers_on_both_sides(
    sim: str, gmail: Any, token_for: Callable[..., str]
) -> None:
    alice_gmail = gmail_service(sim, token_for(ALICE))
    sent = send(gmail, rfc822(REP, ALICE, "Proposal"))
    rep_msg_id = message_from_bytes(raw_of(sim, REP, sent["id"]))["Message-ID"]
    (alice_copy,) = inbox(sim, ALICE)
    answer = send(alice_gmail, rfc822(ALICE, REP, "RE: proposal", In_Reply_To=rep_msg_id, References=rep_msg_id),
                  thread_id=alice_copy["threadId"])
    assert answer["threadId"] == alice_copy["threadId"]
    (rep_copy,) = inbox(sim, REP)
    assert rep_copy["threadId"] == sent["threadId"]


def test_ui_send_threads_by_headers_and_delivers(sim: str) -> None:
    requests.post(f"{sim}/sim/mailboxes", json={"address": REP}, timeout=5)
    requests.post(f"{sim}/sim/mailboxes", json={"address": ALICE}, timeout=5)
    first = deliver(sim, REP, rfc822(ALICE, REP, "Pricing", Message_ID="<a1@customer.example>"))
    resp = requests.post(
        f"{sim}/sim/mailboxes/{REP}/send",
        data=rfc822(REP, ALICE, "Re: Pricing", In_Reply_To="<a1@customer.example>"),
        headers={"Content-Type": "message/rfc822"}, timeout=5,
    )
    assert resp.status_code == 200
    assert resp.json()["threadId"] == first["threadId"]
    sent = requests.get(f"{sim}/sim/mailboxes/{REP}/messages", params={"label": "SENT"}, timeout=5).json()
    assert [m["id"] for m in sent["messages"]] == [resp.json()["id"]]
    assert len(inbox(sim, ALICE)) == 1


def big_message(size: int) -> bytes:
    m = EmailMessage()
    m["From"] = REP
    m["To"] = ALICE
    m["Subject"] = "Big attachment"
    m.set_content("See attached.")
    m.add_attachment(b"\x00" * size, maintype="application", subtype="octet-stream", filename="big.bin")
    return m.as_bytes()


@pytest.mark.parametrize(
    ("resumable", "size"), [(False, 25 * 1024 * 1024), (True, 3 * 1024 * 1024)], ids=["multipart-25MB", "resumable"]
)
def test_large_attachment_goes_through_the_upload_uri(sim: str, gmail: Any, resumable: bool, size: int) -> None:
    raw = big_message(size)
    media = MediaIoBaseUpload(io.BytesIO(raw), mimetype="message/rfc822", resumable=resumable, chunksize=1024 * 1024)
    sent = gmail.users().messages().send(userId="me", body={}, media_body=media).execute()
    assert sent["labelIds"] == ["SENT"]
    msg = gmail.users().messages().get(userId="me", id=sent["id"]).execute()
    att = msg["payload"]["parts"][1]
    assert att["filename"] == "big.bin" and att["body"]["size"] == size


def test_upload_larger_than_discovery_max_size_is_refused(sim: str, token_for: Callable[..., str]) -> None:
    token = token_for(REP)
    resp = requests.post(
        f"{sim}/upload/gmail/v1/users/me/messages/send?uploadType=media",
        data=b"From: x\r\n\r\n" + b"a" * 36_700_161,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "message/rfc822"}, timeout=30,
    )
    assert resp.status_code == 413


def test_send_without_raw_is_400(gmail: Any) -> None:
    with pytest.raises(HttpError) as err:
        gmail.users().messages().send(userId="me", body={}).execute()
    assert err.value.resp.status == 400
    assert "raw" in str(err.value)


def test_send_without_recipients_is_400(gmail: Any) -> None:
    raw = base64.urlsafe_b64encode(b"From: rep@example.com\r\nSubject: x\r\n\r\nbody").decode()
    with pytest.raises(HttpError) as err:
        gmail.users().messages().send(userId="me", body={"raw": raw}).execute()
    assert err.value.resp.status == 400
