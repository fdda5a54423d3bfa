"""Headers as Gmail decodes them in `payload.headers` and `filename`: raw UTF-8 (RFC 6532), RFC 2047 encoded
words, RFC 2231 and 8-bit filenames; and no message Gmail accepts makes any read answer 5xx."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests

from tests.hostile_mail import corpus
from tests.simulator.conftest import deliver, gmail_service

REP = "rep@example.com"


@pytest.fixture
def gmail(sim: str, token_for: Callable[..., str]) -> Any:
    return gmail_service(sim, token_for(REP))


def headers_of(gmail: Any, msg_id: str, fmt: str = "full") -> dict[str, str]:
    payload = gmail.users().messages().get(userId="me", id=msg_id, format=fmt).execute()["payload"]
    return {h["name"]: h["value"] for h in payload["headers"]}


def with_attachment(disposition: str, content_type: str = "application/pdf") -> bytes:
    return (
        "From: a@x.example\r\nTo: rep@example.com\r\nSubject: file\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee file\r\n"
        f"--b\r\nContent-Type: {content_type}\r\nContent-Disposition: {disposition}\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\nJVBERg==\r\n--b--\r\n"
    ).encode("utf-8", "surrogateescape")


def test_raw_utf8_headers_are_read_as_utf8_rfc6532(sim: str, gmail: Any) -> None:
    raw = "From: Jörg Müller <jorg@x.example>\r\nTo: rep@example.com\r\nSubject: Säying Hello\r\n\r\nhi\r\n"
    got = deliver(sim, REP, raw.encode())
    for fmt in ("full", "metadata"):
        h = headers_of(gmail, got["id"], fmt)
        assert h["Subject"] == "Säying Hello" and h["From"] == "Jörg Müller <jorg@x.example>"


def test_rfc2047_encoded_words_are_decoded(sim: str, gmail: Any) -> None:
    raw = (b"From: =?utf-8?q?J=C3=B6rg?= <jorg@x.example>\r\nTo: rep@example.com\r\n"
           b"Subject: =?UTF-8?B?U8OkeWluZw==?= =?UTF-8?Q?_Hello?=\r\n\r\nhi\r\n")
    h = headers_of(gmail, deliver(sim, REP, raw)["id"])
    assert h["Subject"] == "Säying Hello" and h["From"] == "Jörg <jorg@x.example>"


def test_an_encoded_display_name_with_a_comma_stays_one_address(sim: str, gmail: Any) -> None:
    raw = b"From: =?utf-8?q?M=C3=BCller=2C_J=C3=B6rg?= <jorg@x.example>\r\nTo: rep@example.com\r\nSubject: x\r\n\r\nhi"
    assert headers_of(gmail, deliver(sim, REP, raw)["id"])["From"] == '"Müller, Jörg" <jorg@x.example>'


def test_an_undecodable_encoded_word_is_shown_as_written(sim: str, gmail: Any) -> None:
    raw = b"From: a@x.example\r\nTo: rep@example.com\r\nSubject: =?x-unknown?q?caf=E9?=\r\n\r\nhi"
    assert headers_of(gmail, deliver(sim, REP, raw)["id"])["Subject"] == "=?x-unknown?q?caf=E9?="


def test_latin1_bytes_in_a_header_are_read_as_windows_1252(sim: str, gmail: Any) -> None:
    raw = "From: a@x.example\r\nTo: rep@example.com\r\nSubject: caf\xe9\r\n\r\nhi".encode("latin-1")
    assert headers_of(gmail, deliver(sim, REP, raw)["id"])["Subject"] == "café"


@pytest.mark.parametrize("disposition", [
    'attachment; filename="Präsentation.pdf"',  # raw UTF-8 (RFC 6532)
    'attachment; filename="=?utf-8?q?Pr=C3=A4sentation.pdf?="',  # RFC 2047 in a parameter (common)
    "attachment; filename*=utf-8''Pr%C3%A4sentation.pdf",  # RFC 2231
])
def test_a_non_ascii_attachment_filename_is_decoded_and_fetchable(sim: str, gmail: Any, disposition: str) -> None:
    got = deliver(sim, REP, with_attachment(disposition))
    msg = gmail.users().messages().get(userId="me", id=got["id"]).execute()
    part = msg["payload"]["parts"][1]
    assert part["filename"] == "Präsentation.pdf"
    att = gmail.users().messages().attachments().get(
        userId="me", messageId=got["id"], id=part["body"]["attachmentId"]).execute()
    assert att["size"] == 4


def test_a_latin1_attachment_filename_does_not_answer_500(sim: str, gmail: Any) -> None:
    raw = with_attachment('attachment; filename="Pr\udce4s.pdf"')  # the byte 0xE4 alone
    got = deliver(sim, REP, raw)
    assert gmail.users().messages().get(userId="me", id=got["id"]).execute()["payload"]["parts"][1]["filename"] \
        == "Präs.pdf"


def test_a_malformed_rfc2231_filename_is_no_filename_not_a_500(sim: str, gmail: Any) -> None:
    got = deliver(sim, REP, with_attachment("attachment; filename*=x-bogus'en'%ZZ%"))
    parts = gmail.users().messages().get(userId="me", id=got["id"]).execute()["payload"]["parts"]
    assert "attachmentId" in parts[1]["body"]  # still an attachment (its disposition says so)


def test_no_message_of_the_hostile_corpus_makes_a_read_answer_5xx(sim: str, token_for: Callable[..., str]) -> None:
    auth = {"Authorization": f"Bearer {token_for(REP)}"}
    base = f"{sim}/gmail/v1/users/me"
    failures = []
    for mail in corpus("ann@customer.example", REP):
        resp = requests.post(f"{sim}/sim/mailboxes/{REP}/deliver", data=mail.raw,
                             headers={"Content-Type": "message/rfc822"}, timeout=30)
        if resp.status_code >= 500:
            failures.append((mail.kind, "deliver", resp.status_code))
            continue
        got = resp.json()
        for path in (f"/messages/{got['id']}", f"/messages/{got['id']}?format=metadata",
                     f"/messages/{got['id']}?format=raw", f"/threads/{got['threadId']}"):
            status = requests.get(base + path, headers=auth, timeout=30).status_code
            if status >= 500:
                failures.append((mail.kind, path, status))
    assert requests.get(f"{sim}/sim/mailboxes/{REP}/messages", timeout=30).status_code == 200
    assert failures == []
