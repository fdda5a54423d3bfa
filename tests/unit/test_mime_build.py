"""The MIME a CRM send hands to Gmail: structure, encodings, threading headers (R10, R15)."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy

import pytest

from shared.gmail.mime_build import (
    OutgoingAttachment,
    OutgoingEmail,
    build_bytes,
    is_crm_message_id,
    message_id_for,
    reply_references,
    reply_subject,
    strip_reply_prefixes,
)

MID = "<abc@gmail-crm-sync>"


def parse(raw: bytes):  # type: ignore[no-untyped-def]
    return message_from_bytes(raw, policy=policy.default)


def email(**kw) -> OutgoingEmail:  # type: ignore[no-untyped-def]
    base = dict(from_address="rep@example.com", from_name="Rita Rep", to_address="carl@client.example",
                to_name="Carl", subject="Offer", message_id=MID, text="Hello Carl",
                date=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    base.update(kw)
    return OutgoingEmail(**base)  # type: ignore[arg-type]


def test_text_only_is_a_single_text_plain_part_with_the_headers_set() -> None:
    m = parse(build_bytes(email()))
    assert m.get_content_type() == "text/plain"
    assert m["From"] == "Rita Rep <rep@example.com>"
    assert m["To"] == "Carl <carl@client.example>"
    assert m["Subject"] == "Offer"
    assert m["Message-ID"] == MID
    assert m["Date"] == "Fri, 02 Jan 2026 03:04:05 +0000"
    assert m.get_content().strip() == "Hello Carl"


def test_wire_format_uses_crlf_and_is_seven_bit_for_text() -> None:
    raw = build_bytes(email(text="Grüße, süß " * 50))
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    assert all(b < 128 for b in raw)


def test_text_and_html_make_a_multipart_alternative_text_first() -> None:
    m = parse(build_bytes(email(html="<p>Hello <b>Carl</b></p>")))
    assert m.get_content_type() == "multipart/alternative"
    parts = [p.get_content_type() for p in m.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    assert "<b>Carl</b>" in m.get_body(preferencelist=("html",)).get_content()


def test_html_only_is_text_html() -> None:
    m = parse(build_bytes(email(text=None, html="<p>x</p>")))
    assert m.get_content_type() == "text/html"


def test_no_body_at_all_is_refused() -> None:
    with pytest.raises(ValueError):
        build_bytes(email(text=None, html=None))


def test_attachments_make_multipart_mixed_with_their_content_types() -> None:
    pdf = b"%PDF-1.4 " + bytes(range(256))
    m = parse(build_bytes(email(html="<p>x</p>", attachments=(
        OutgoingAttachment("offer.pdf", "application/pdf", pdf),
        OutgoingAttachment("notes.txt", "", b"plain notes"),
        OutgoingAttachment("weird.bin", "not a type", b"\x00\x01")))))
    assert m.get_content_type() == "multipart/mixed"
    body, *atts = list(m.iter_parts())
    assert body.get_content_type() == "multipart/alternative"
    assert [(a.get_filename(), a.get_content_type()) for a in atts] == [
        ("offer.pdf", "application/pdf"), ("notes.txt", "text/plain"), ("weird.bin", "application/octet-stream")]
    assert atts[0].get_content() == pdf
    assert atts[0]["Content-Transfer-Encoding"] == "base64"


def test_non_ascii_subject_and_filename_are_rfc2047_and_rfc2231_encoded() -> None:
    raw = build_bytes(email(subject="Angebot für Köln \u2013 東京", attachments=(
        OutgoingAttachment("Preisübersicht 東京.pdf", "application/pdf", b"%PDF"),)))
    assert b"=?utf-8?" in raw  # encoded word in Subject
    assert b"filename*=utf-8''Preis%C3%BCbersicht" in raw
    m = parse(raw)
    assert m["Subject"] == "Angebot für Köln \u2013 東京"
    att = next(m.iter_attachments())
    assert att.get_filename() == "Preisübersicht 東京.pdf"


def test_non_ascii_display_name_is_encoded() -> None:
    m = parse(build_bytes(email(from_name="Zoë Müller")))
    assert m["From"].addresses[0].display_name == "Zoë Müller"
    assert m["From"].addresses[0].addr_spec == "rep@example.com"


def test_crlf_in_a_crm_name_cannot_inject_a_header() -> None:
    raw = build_bytes(email(from_name="Eve\r\nBcc: victim@example.com"))
    m = parse(raw)
    assert m["Bcc"] is None
    assert b"\r\nBcc:" not in raw


def test_attachment_path_components_are_dropped_from_the_filename() -> None:
    m = parse(build_bytes(email(attachments=(OutgoingAttachment("../../etc/passwd", "text/plain", b"x"),))))
    assert next(m.iter_attachments()).get_filename() == "passwd"


def test_cc_and_bcc_headers() -> None:
    m = parse(build_bytes(email(cc=("a@x.example", "b@x.example"), bcc=("c@x.example",))))
    assert [a.addr_spec for a in m["Cc"].addresses] == ["a@x.example", "b@x.example"]
    assert [a.addr_spec for a in m["Bcc"].addresses] == ["c@x.example"]


def test_message_rfc822_attachment_is_not_base64() -> None:
    inner = b"From: a@x.example\r\nSubject: inner\r\n\r\nbody\r\n"
    raw = build_bytes(email(attachments=(OutgoingAttachment("fwd.eml", "message/rfc822", inner),)))
    att = next(parse(raw).iter_attachments())
    assert att.get_content_type() == "message/rfc822"
    assert att["Content-Transfer-Encoding"] != "base64"


def test_reply_headers_and_re_subject() -> None:
    refs = reply_references(["<root@x>"], "<parent@x>")
    m = parse(build_bytes(email(subject=reply_subject("RE: Aw: Offer"), in_reply_to="<parent@x>", references=refs)))
    assert m["Subject"] == "Re: Offer"
    assert m["In-Reply-To"] == "<parent@x>"
    assert m["References"] == "<root@x> <parent@x>"


def test_re_rule_adds_exactly_one_prefix() -> None:
    assert reply_subject("Offer") == "Re: Offer"
    assert reply_subject("Re: Offer") == "Re: Offer"
    assert reply_subject("re:RE: Offer") == "Re: Offer"
    assert strip_reply_prefixes("Aw: Sv: Antw: Offer") == "Offer"


def test_references_keep_the_root_and_stay_bounded() -> None:
    many = [f"<m{i}@x>" for i in range(40)]
    refs = reply_references(many, "<new@x>")
    assert len(refs) == 20 and refs[0] == "<m0@x>" and refs[-1] == "<new@x>"


def test_message_id_is_deterministic_per_key_and_recognisable() -> None:
    assert message_id_for("k1") == message_id_for("k1") != message_id_for("k2")
    assert is_crm_message_id(message_id_for("k1"))
    assert not is_crm_message_id("<CAF123@mail.gmail.com>")
