"""Specs of parsing an Auto BCC copy and picking its contact (R16, R12 order), pure logic."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.auto_bcc.message import MalformedMessage, parse_copy, pick_recipient

BCC = "abcdefghijklmnopqrstuvwxyz@bcc.localhost"


def raw(headers: str, body: str = "Hello there") -> bytes:
    return (headers.strip().replace("\n", "\r\n") + "\r\n\r\n" + body).encode()


def is_bcc(a: str) -> bool:
    return a.endswith("@bcc.localhost")


def test_first_to_recipient_is_the_contact() -> None:
    copy = parse_copy(raw(f"From: Rep <rep@corp.example>\nTo: Ann <ann@client.example>, bo@client.example\n"
                          f"Bcc: {BCC}\nSubject: Offer\nMessage-ID: <m1@corp.example>"))
    assert pick_recipient(copy, is_bcc, set()).email == "ann@client.example"  # type: ignore[union-attr]


def test_auto_bcc_address_users_and_sender_are_skipped_in_to_cc_bcc_order() -> None:
    copy = parse_copy(raw(f"From: rep@corp.example\nTo: {BCC}, colleague@corp.example\n"
                          "Cc: rep@corp.example, Carl <Carl@Client.example>\nBcc: later@client.example\n"
                          "Message-ID: <m2@x>"))
    picked = pick_recipient(copy, is_bcc, {"colleague@corp.example"})
    assert picked is not None
    assert (picked.email, picked.name) == ("carl@client.example", "Carl")


def test_no_external_recipient_gives_none() -> None:
    copy = parse_copy(raw(f"From: rep@corp.example\nTo: colleague@corp.example\nBcc: {BCC}"))
    assert pick_recipient(copy, is_bcc, {"colleague@corp.example"}) is None


def test_message_id_is_the_idempotency_key_and_falls_back_to_a_hash() -> None:
    with_id = parse_copy(raw("From: a@x.example\nTo: b@y.example\nMessage-ID:  <abc@x.example> "))
    assert with_id.message_id == "<abc@x.example>"
    data = raw("From: a@x.example\nTo: b@y.example")
    assert parse_copy(data).message_id == parse_copy(data).message_id
    assert parse_copy(data).message_id.startswith("sha256:")


def test_encoded_subject_bodies_date_and_attachments() -> None:
    message = (
        "From: a@x.example\r\nTo: b@y.example\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n"
        "Date: Tue, 05 Mar 2024 10:00:00 +0100\r\nIn-Reply-To: <p@x>\r\nReferences: <o@x> <p@x>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=BB\r\n\r\n"
        "--BB\r\nContent-Type: multipart/alternative; boundary=AA\r\n\r\n"
        "--AA\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        "Sch=C3=B6n\r\n--AA\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Sch\xc3\xb6n</p>\r\n--AA--\r\n"
        "--BB\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"offer.pdf\"\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--BB--\r\n"
    ).encode("latin-1")
    copy = parse_copy(message)
    assert copy.subject == "Grüße"
    assert copy.text is not None and copy.text.strip() == "Schön"
    assert copy.html is not None and "Schön" in copy.html
    assert copy.snippet == "Schön"
    assert copy.sent_at == datetime(2024, 3, 5, 9, 0, tzinfo=UTC)
    assert (copy.in_reply_to, copy.references) == ("<p@x>", ["<o@x>", "<p@x>"])
    assert copy.attachments == [{"filename": "offer.pdf", "mimeType": "application/pdf", "size": 9,
                                 "gmailAttachmentId": "ab_0"}]
    assert copy.attachment_data == [b"%PDF-1.4\n"]


def test_forward_is_marked() -> None:
    assert parse_copy(raw("From: a@x.example\nTo: b@y.example\nSubject: Fwd: prices")).is_forward


@pytest.mark.parametrize("data", [b"", b"   \r\n", b"just some text without headers",
                                  b"To: b@y.example\r\n\r\nno sender", b"From: a@x.example\r\n\r\nno recipient",
                                  b"From: not an address\r\nTo: b@y.example\r\n\r\nx"])
def test_malformed_copies_are_refused_with_a_reason(data: bytes) -> None:
    with pytest.raises(MalformedMessage):
        parse_copy(data)


ARRIVED = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("date", [
    "Sat, 01 Jun 2024 12:00:01 +0000",  # a second after it arrived
    "Fri, 31 Dec 9999 23:59:59 -0500",  # past year 9999 in UTC: OverflowError before R16b
    "Fri, 31 Dec 9999 23:59:59 +0000",
    "Mon, 32 Jan 2024 25:61:00 +0000",
    "not a date at all",
    "",
])
def test_r16b_future_absurd_or_unreadable_date_is_the_arrival_time(date: str) -> None:
    copy = parse_copy(raw(f"From: a@x.example\nTo: b@y.example\nDate: {date}"), received_at=ARRIVED)
    assert copy.sent_at == ARRIVED


def test_r16b_past_date_is_kept_in_utc() -> None:
    copy = parse_copy(raw("From: a@x.example\nTo: b@y.example\nDate: Sat, 01 Jun 2024 09:30:00 -0200"),
                      received_at=ARRIVED)
    assert copy.sent_at == datetime(2024, 6, 1, 11, 30, tzinfo=UTC)


def test_each_attachment_gets_its_own_id_in_order() -> None:
    parts = "".join(f"--B\r\nContent-Type: text/csv\r\nContent-Disposition: attachment; filename=f{i}.csv\r\n\r\n"
                    f"row {i}\r\n" for i in range(3))
    copy = parse_copy(raw("From: a@x.example\nTo: b@y.example\nMIME-Version: 1.0\n"
                          "Content-Type: multipart/mixed; boundary=B", parts + "--B--\r\n"))
    assert [a["gmailAttachmentId"] for a in copy.attachments] == ["ab_0", "ab_1", "ab_2"]
    assert [a["filename"] for a in copy.attachments] == ["f0.csv", "f1.csv", "f2.csv"]
    assert copy.attachment_data == [b"row 0", b"row 1", b"row 2"]


def test_hostile_content_type_is_stored_as_octet_stream() -> None:
    parts = ('--B\r\nContent-Type: text/html; x="<script>"\r\nContent-Disposition: attachment; filename=a\r\n\r\n'
             "x\r\n--B\r\nContent-Type: \x01/\x02\r\nContent-Disposition: attachment; filename=b\r\n\r\ny\r\n--B--\r\n")
    copy = parse_copy(raw("From: a@x.example\nTo: b@y.example\nMIME-Version: 1.0\n"
                          "Content-Type: multipart/mixed; boundary=B", parts))
    assert [a["mimeType"] for a in copy.attachments] == ["text/html", "application/octet-stream"]


def test_deeply_nested_copy_is_read_or_refused_never_raises() -> None:
    depth = 3000
    body = "".join(f"--b{i}\r\nContent-Type: multipart/mixed; boundary=b{i + 1}\r\n\r\n" for i in range(depth))
    data = raw("From: a@x.example\nTo: b@y.example\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b0",
               body + "x")
    try:
        parse_copy(data)
    except MalformedMessage:
        pass


def test_broken_encoded_word_subject_is_kept_as_written() -> None:
    copy = parse_copy(raw("From: a@x.example\nTo: b@y.example\nSubject: =?utf-8?B?broken!!?= =?utf-8?Q?ok=C3=A9?="))
    assert copy.subject == "=?utf-8?B?broken!!?= =?utf-8?Q?ok=C3=A9?="


def test_unencoded_8bit_headers_are_read_as_utf8_or_latin1() -> None:
    data = "From: \xc9milie <a@x.example>\r\nTo: b@y.example\r\nSubject: caf\xe9\r\n\r\nx".encode("latin-1")
    copy = parse_copy(data)
    assert (copy.sender.name, copy.subject) == ("Émilie", "café")
    assert parse_copy("From: a@x.example\r\nTo: b@y.example\r\nSubject: café\r\n\r\nx".encode()).subject == "café"


def test_thousands_of_inline_parts_are_body_not_attachments() -> None:
    parts = "".join(f"--B\r\nContent-Type: text/plain\r\n\r\npart {i}\r\n" for i in range(2000))
    copy = parse_copy(raw("From: a@x.example\nTo: b@y.example\nMIME-Version: 1.0\n"
                          "Content-Type: multipart/mixed; boundary=B", parts + "--B--\r\n"))
    assert copy.attachments == [] and copy.text is not None and "part 1999" in copy.text


def test_forwarded_message_part_is_an_attachment_and_marks_a_forward() -> None:
    inner = "From: c@z.example\r\nTo: a@x.example\r\nSubject: original\r\n\r\nthe original\r\n"
    copy = parse_copy(raw("From: a@x.example\nTo: b@y.example\nSubject: see below\nMIME-Version: 1.0\n"
                          "Content-Type: multipart/mixed; boundary=B",
                          "--B\r\nContent-Type: text/plain\r\n\r\nFYI\r\n--B\r\n"
                          f"Content-Type: message/rfc822\r\n\r\n{inner}--B--\r\n"))
    assert copy.is_forward and [a["mimeType"] for a in copy.attachments] == ["message/rfc822"]
    assert b"the original" in copy.attachment_data[0]
