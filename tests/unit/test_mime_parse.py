"""Gmail `format=full` resources → CRM message fields (text/html in any charset, R15 metadata).

Resources are built from raw RFC 822 by the simulator's parser, which produces
what Gmail returns (transfer encoding removed, charset untouched, headers as
written), so each test states the raw mail a rep would actually receive.
"""

from __future__ import annotations

import base64
from email.message import EmailMessage

from shared.gmail.mime_parse import decode_words, parse_addresses, parse_gmail_message
from simulator.mime import parse as sim_parse


def resource(raw: bytes, labels: tuple[str, ...] = ("INBOX",), internal_ms: int = 1_700_000_000_000) -> dict:
    p = sim_parse(raw, "m1")
    return {"id": "m1", "threadId": "t1", "labelIds": list(labels), "snippet": p.snippet,
            "internalDate": str(internal_ms), "payload": p.payload}


def test_plain_text_utf8_with_encoded_word_subject_and_names() -> None:
    raw = (b"From: =?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <Juergen@Example.COM>\r\n"
           b"To: rep@gmail.test\r\nSubject: =?utf-8?b?R3LDvMOfZSBhdXMgS8O2bG4=?=\r\n"
           b"Message-ID: <abc@example.com>\r\nContent-Type: text/plain; charset=utf-8\r\n"
           b"Content-Transfer-Encoding: 8bit\r\n\r\nHallo Gr\xc3\xbc\xc3\x9fe\r\n")
    m = parse_gmail_message(resource(raw))
    assert m.sender is not None and m.sender.email == "juergen@example.com"
    assert m.sender.name == "Jürgen Müller"
    assert m.subject == "Grüße aus Köln"
    assert m.text is not None and "Hallo Grüße" in m.text
    assert m.rfc822_message_id == "<abc@example.com>"
    assert m.snippet.startswith("Hallo Grüße")


def test_quoted_printable_latin1_body_is_decoded_once() -> None:
    raw = (b"From: a@example.com\r\nTo: rep@gmail.test\r\nSubject: qp\r\n"
           b"Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
           b"Caf=E9 cr=E8me, 1+1=3D2 and =3D3D stays literal=\r\n ok\r\n")
    m = parse_gmail_message(resource(raw))
    assert m.text is not None
    assert "Café crème, 1+1=2 and =3D stays literal ok" in m.text


def test_base64_shift_jis_html_only_body_gives_html_and_text_snippet() -> None:
    body = "<html><body><p>こんにちは&amp;世界</p></body></html>".encode("shift_jis")
    raw = (b"From: a@example.jp\r\nTo: rep@gmail.test\r\nSubject: jp\r\n"
           b"Content-Type: text/html; charset=Shift_JIS\r\nContent-Transfer-Encoding: base64\r\n\r\n"
           + base64.encodebytes(body))
    res = resource(raw)
    res["snippet"] = ""
    m = parse_gmail_message(res)
    assert m.text is None
    assert m.html is not None and "こんにちは" in m.html
    assert m.snippet == "こんにちは&世界"


def test_multipart_alternative_gives_both_bodies() -> None:
    em = EmailMessage()
    em["From"], em["To"], em["Subject"] = "a@example.com", "rep@gmail.test", "alt"
    em.set_content("plain ünïcode")
    em.add_alternative("<p>html ünïcode</p>", subtype="html")
    m = parse_gmail_message(resource(em.as_bytes()))
    assert m.text is not None and "plain ünïcode" in m.text
    assert m.html is not None and "<p>html ünïcode</p>" in m.html


def test_r15_attachment_metadata_name_type_size_and_gmail_id() -> None:
    em = EmailMessage()
    em["From"], em["To"], em["Subject"] = "a@example.com", "rep@gmail.test", "files"
    em.set_content("see attached")
    em.add_attachment(b"%PDF-1.4 " + b"x" * 991, maintype="application", subtype="pdf", filename="Angebot Ä.pdf")
    em.add_attachment(b"\x89PNG" + b"y" * 96, maintype="image", subtype="png", filename="logo.png")
    m = parse_gmail_message(resource(em.as_bytes()))
    assert [(a.filename, a.mimeType, a.size) for a in m.attachments] == [
        ("Angebot Ä.pdf", "application/pdf", 1000), ("logo.png", "image/png", 100)]
    assert all(a.gmailAttachmentId for a in m.attachments)
    assert m.text is not None and "see attached" in m.text and "PDF" not in m.text


def test_mislabelled_charset_falls_back_instead_of_failing() -> None:
    payload = {"mimeType": "text/plain", "headers": [{"name": "Content-Type", "value": "text/plain; charset=x-bogus"}],
               "body": {"size": 3, "data": base64.urlsafe_b64encode("héé".encode()).decode()}}
    m = parse_gmail_message({"id": "x", "threadId": "x", "payload": payload})
    assert m.text == "héé"


def test_recipients_cc_bcc_and_threading_headers() -> None:
    raw = (b"From: Rep <rep@gmail.test>\r\nTo: \"Doe, Jane\" <Jane@X.com>, bob@y.com\r\n"
           b"Cc: c1@z.com\r\nBcc: b1@z.com\r\nSubject: Re: hi\r\nIn-Reply-To: <p1@x.com>\r\n"
           b"References: <p0@x.com> <p1@x.com>\r\n\r\nbody\r\n")
    m = parse_gmail_message(resource(raw, labels=("SENT",)))
    assert [a.email for a in m.to] == ["jane@x.com", "bob@y.com"]
    assert m.to[0].name == "Doe, Jane"
    assert [a.email for a in m.cc] == ["c1@z.com"] and [a.email for a in m.bcc] == ["b1@z.com"]
    assert m.in_reply_to == "<p1@x.com>" and m.references == ["<p0@x.com>", "<p1@x.com>"]
    assert m.label_ids == frozenset({"SENT"})


def test_forwarded_message_part_is_detected() -> None:
    inner = EmailMessage()
    inner["From"], inner["Subject"] = "c@x.com", "original"
    inner.set_content("original text")
    em = EmailMessage()
    em["From"], em["To"], em["Subject"] = "rep@gmail.test", "d@y.com", "have a look"
    em.set_content("fyi")
    em.add_attachment(inner)
    m = parse_gmail_message(resource(em.as_bytes(), labels=("SENT",)))
    assert m.has_attached_message


def test_r29_forward_marker_quoted_in_the_body_is_not_an_attached_message() -> None:
    raw = (b"From: rep@gmail.test\r\nTo: d@y.com\r\nSubject: Re: look\r\n\r\n"
           b"fyi\r\n\r\n---------- Forwarded message ---------\r\nFrom: c@x.com\r\n")
    assert not parse_gmail_message(resource(raw, labels=("SENT",))).has_attached_message


def test_malformed_addresses_and_words_never_raise() -> None:
    assert parse_addresses("undisclosed-recipients:;") == []
    assert parse_addresses("not an address, <x@y.z>") == [parse_addresses("x@y.z")[0]]
    assert decode_words("=?bogus-charset?q?abc?=") in ("abc", "=?bogus-charset?q?abc?=")
    m = parse_gmail_message({"id": "x", "payload": {}})
    assert m.sender is None and m.text is None and m.snippet == ""
