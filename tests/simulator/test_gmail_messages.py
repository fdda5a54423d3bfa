"""Gmail API v1 messages, threads, labels and profile, through google-api-python-client.

The client is built the way the project builds it (shared.gmail.service: the
shipped discovery document with its rootUrl moved to the simulator).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

import pytest
import requests
from googleapiclient.errors import HttpError

from tests.simulator.conftest import deliver, gmail_service, rfc822

REP = "rep@example.com"
ALICE = "alice@customer.example"


@pytest.fixture
def gmail(sim: str, token_for: Callable[..., str]) -> Any:
    return gmail_service(sim, token_for(REP))


def with_attachment() -> bytes:
    m = EmailMessage()
    m["From"] = ALICE
    m["To"] = REP
    m["Subject"] = "Quote attached"
    m.set_content("Please find the quote attached.\nThanks, Alice")
    m.add_alternative("<p>Please find the <b>quote</b> attached.</p>", subtype="html")
    m.add_attachment(b"%PDF-1.4 fake" * 100, maintype="application", subtype="pdf", filename="quote.pdf")
    return m.as_bytes()


def test_get_profile_reports_address_counts_and_history_id(sim: str, gmail: Any) -> None:
    deliver(sim, REP, rfc822(ALICE, REP, "Hi"))
    profile = gmail.users().getProfile(userId="me").execute()
    assert profile["emailAddress"] == REP
    assert profile["messagesTotal"] == 1 and profile["threadsTotal"] == 1
    assert int(profile["historyId"]) > 0


def test_delivered_mail_is_in_inbox_unread_with_internal_date_of_arrival(sim: str, gmail: Any) -> None:
    before = int(time.time() * 1000)
    got = deliver(sim, REP, rfc822(ALICE, REP, "Hi", Date="Mon, 1 Jan 2001 00:00:00 +0000"))
    msg = gmail.users().messages().get(userId="me", id=got["id"], format="minimal").execute()
    assert {"INBOX", "UNREAD"} <= set(msg["labelIds"])
    assert before <= int(msg["internalDate"]) <= int(time.time() * 1000)  # not the Date header


def test_full_format_has_payload_tree_with_parts_and_attachment_ids(sim: str, gmail: Any) -> None:
    got = deliver(sim, REP, with_attachment())
    msg = gmail.users().messages().get(userId="me", id=got["id"], format="full").execute()
    payload = msg["payload"]
    assert payload["mimeType"] == "multipart/mixed" and payload["partId"] == ""
    assert payload["body"] == {"size": 0}
    alt, att = payload["parts"]
    assert alt["mimeType"] == "multipart/alternative" and alt["partId"] == "0"
    plain = alt["parts"][0]
    assert plain["partId"] == "0.0"
    assert base64.urlsafe_b64decode(plain["body"]["data"]).startswith(b"Please find the quote")
    assert att["filename"] == "quote.pdf" and att["mimeType"] == "application/pdf"
    assert "data" not in att["body"] and att["body"]["size"] == len(b"%PDF-1.4 fake" * 100)
    assert msg["snippet"].startswith("Please find the quote attached. Thanks, Alice")
    assert {"name": "Subject", "value": "Quote attached"} in payload["headers"]


def test_attachment_get_returns_the_decoded_bytes(sim: str, gmail: Any) -> None:
    got = deliver(sim, REP, with_attachment())
    msg = gmail.users().messages().get(userId="me", id=got["id"]).execute()
    att_id = msg["payload"]["parts"][1]["body"]["attachmentId"]
    att = gmail.users().messages().attachments().get(userId="me", messageId=got["id"], id=att_id).execute()
    assert base64.urlsafe_b64decode(att["data"]) == b"%PDF-1.4 fake" * 100
    assert att["size"] == 1300


def test_metadata_format_returns_only_the_asked_headers(sim: str, gmail: Any) -> None:
    got = deliver(sim, REP, rfc822(ALICE, REP, "Hi", Cc="bob@customer.example"))
    msg = gmail.users().messages().get(
        userId="me", id=got["id"], format="metadata", metadataHeaders=["From", "Subject"]
    ).execute()
    assert sorted(h["name"] for h in msg["payload"]["headers"]) == ["From", "Subject"]
    assert "parts" not in msg["payload"] and "raw" not in msg


def test_raw_format_round_trips_the_stored_message(sim: str, gmail: Any) -> None:
    raw = rfc822(ALICE, REP, "Raw please", Message_ID="<raw-1@customer.example>")
    got = deliver(sim, REP, raw)
    msg = gmail.users().messages().get(userId="me", id=got["id"], format="raw").execute()
    stored = base64.urlsafe_b64decode(msg["raw"])
    assert stored.endswith(raw)  # Gmail prepends Delivered-To and keeps the rest as received
    assert stored.startswith(b"Delivered-To: rep@example.com")
    assert "payload" not in msg


def test_unknown_message_is_404_not_found(gmail: Any) -> None:
    with pytest.raises(HttpError) as err:
        gmail.users().messages().get(userId="me", id="ffffffffffffffff").execute()
    assert err.value.resp.status == 404
    assert err.value.error_details[0]["reason"] == "notFound"


def test_malformed_message_id_is_400_invalid_id_value(gmail: Any) -> None:
    with pytest.raises(HttpError) as err:
        gmail.users().messages().get(userId="me", id="not-an-id").execute()
    assert err.value.resp.status == 400 and "Invalid id value" in str(err.value)


def test_list_is_newest_first_and_pages_with_tokens(sim: str, gmail: Any) -> None:
    ids = [deliver(sim, REP, rfc822(ALICE, REP, f"n{i}"), internal_date=1_700_000_000_000 + i)["id"] for i in range(5)]
    first = gmail.users().messages().list(userId="me", maxResults=2).execute()
    assert [m["id"] for m in first["messages"]] == ids[::-1][:2]
    assert first["resultSizeEstimate"] == 5
    rest = gmail.users().messages().list(userId="me", maxResults=10, pageToken=first["nextPageToken"]).execute()
    assert [m["id"] for m in rest["messages"]] == ids[::-1][2:]
    assert "nextPageToken" not in rest


def test_list_of_nothing_has_no_messages_key(gmail: Any) -> None:
    assert gmail.users().messages().list(userId="me").execute() == {"resultSizeEstimate": 0}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("from:alice@customer.example", ["a"]),
        ("to:carol@customer.example", ["c"]),
        ("after:1700000100 before:1700000300", ["b"]),
        ("in:sent", ["c"]),
        ("rfc822msgid:<b-1@customer.example>", ["b"]),
        ("rfc822msgid:b-1@customer.example", ["b"]),
        ("subject:budget -from:bob@customer.example", ["a"]),
        ("after:2023/11/14", ["a", "b", "c"]),
        ("before:2023/11/14", []),
    ],
)
def test_list_q_operators(sim: str, gmail: Any, token_for: Callable[..., str], query: str, expected: list[str]) -> None:
    names = {
        deliver(sim, REP, rfc822(ALICE, REP, "Budget"), internal_date=1_700_000_000_000)["id"]: "a",
        deliver(sim, REP, rfc822("bob@customer.example", REP, "Budget", Message_ID="<b-1@customer.example>"),
                internal_date=1_700_000_200_000)["id"]: "b",
    }
    sent = gmail.users().messages().send(
        userId="me", body={"raw": base64.urlsafe_b64encode(rfc822(REP, "carol@customer.example", "Other")).decode()}
    ).execute()
    names[sent["id"]] = "c"
    found = gmail.users().messages().list(userId="me", q=query).execute().get("messages", [])
    assert sorted(names[m["id"]] for m in found) == expected


def test_list_filters_by_all_label_ids(sim: str, gmail: Any) -> None:
    a = deliver(sim, REP, rfc822(ALICE, REP, "one"))["id"]
    b = deliver(sim, REP, rfc822(ALICE, REP, "two"))["id"]
    requests.post(f"{sim}/sim/mailboxes/{REP}/messages/{b}/modify", json={"removeLabelIds": ["UNREAD"]}, timeout=5)
    found = gmail.users().messages().list(userId="me", labelIds=["INBOX", "UNREAD"]).execute()["messages"]
    assert [m["id"] for m in found] == [a]


def test_unsupported_q_operator_is_400_not_a_silent_match(gmail: Any) -> None:
    with pytest.raises(HttpError) as err:
        gmail.users().messages().list(userId="me", q="larger:5M").execute()
    assert err.value.resp.status == 400


def test_labels_list_has_the_system_labels(gmail: Any) -> None:
    labels = {lbl["id"]: lbl for lbl in gmail.users().labels().list(userId="me").execute()["labels"]}
    assert {"INBOX", "SENT", "UNREAD", "TRASH", "SPAM"} <= set(labels)
    assert all(lbl["type"] == "system" for lbl in labels.values())


def test_threads_get_returns_the_thread_in_order(sim: str, gmail: Any) -> None:
    first = deliver(sim, REP, rfc822(ALICE, REP, "Plans", Message_ID="<p1@customer.example>"))
    second = deliver(sim, REP, rfc822(ALICE, REP, "Re: Plans", Message_ID="<p2@customer.example>",
                                      In_Reply_To="<p1@customer.example>", References="<p1@customer.example>"))
    assert second["threadId"] == first["threadId"] == first["id"]
    thread = gmail.users().threads().get(userId="me", id=first["threadId"], format="minimal").execute()
    assert [m["id"] for m in thread["messages"]] == [first["id"], second["id"]]
    assert thread["historyId"] == str(max(int(first["historyId"]), int(second["historyId"])))


def test_other_users_mailbox_is_403_delegation_denied(gmail: Any) -> None:
    with pytest.raises(HttpError) as err:
        gmail.users().getProfile(userId="someone.else@example.com").execute()
    assert err.value.resp.status == 403
    assert "Delegation denied" in str(err.value)


def test_own_address_as_user_id_works_like_me(gmail: Any) -> None:
    assert gmail.users().getProfile(userId=REP).execute()["emailAddress"] == REP
