"""Specs of the Auto BCC message document (R16, R22's budget), pure: what fits is decided before any write."""

from __future__ import annotations

import pytest

from shared.auto_bcc.document import MAX_ATTACHMENTS, MAX_RECIPIENTS, NotStorable, build_document
from shared.auto_bcc.message import parse_copy
from shared.core.budget import FIRESTORE_MAX_DOCUMENT_BYTES, document_size
from shared.core.models import Message

BCC = "abcdefghijklmnopqrstuvwxyz@bcc.localhost"
PATH = "accounts/acme/conversations/c1/messages/ab_1"


def is_bcc(a: str) -> bool:
    return a.endswith("@bcc.localhost")


def doc_of(raw: bytes) -> Message:
    return build_document(parse_copy(raw), account_id="acme", conversation_id="c1", message_id="ab_1",
                          contact_id="c1", user_id="u1", is_auto_bcc=is_bcc)


def copy(body: str = "hi", headers: str = "", html: str | None = None) -> bytes:
    head = (f"From: rep@corp.example\r\nTo: ann@client.example\r\nBcc: {BCC}\r\nSubject: s\r\n{headers}"
            "MIME-Version: 1.0\r\n")
    if html is None:
        return (head + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + body).encode()
    return (head + "Content-Type: multipart/alternative; boundary=A\r\n\r\n--A\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\n" + body + "\r\n--A\r\n"
            "Content-Type: text/html; charset=utf-8\r\n\r\n" + html + "\r\n--A--\r\n").encode()


def test_r22_huge_multibyte_bodies_are_cut_to_fit_one_document_and_marked_truncated() -> None:
    cjk = "漢" * 300_000  # 900 KB of UTF-8 each: 1.8 MB together
    doc = doc_of(copy(cjk, html=f"<p>{cjk}</p>"))
    assert doc.truncated
    assert document_size(PATH, doc.to_doc()) < FIRESTORE_MAX_DOCUMENT_BYTES
    assert doc.text and set(doc.text.strip()) == {"漢"}  # cut between characters, never inside one
    assert doc.html and doc.html.startswith("<p>漢")


def test_small_copy_is_whole_and_not_truncated() -> None:
    doc = doc_of(copy("Hello Ann"))
    assert not doc.truncated and doc.text is not None and doc.text.strip() == "Hello Ann"
    assert (doc.direction, doc.source, doc.bcc) == ("outbound", "auto_bcc", [])  # our own address is not logged


def test_undecodable_8bit_header_becomes_storable_text() -> None:
    raw = b"From: rep@corp.example\r\nTo: ann@client.example\r\nSubject: caf\xe9 \xff\xfe\r\n\r\nx"
    doc = doc_of(raw)
    doc.subject.encode("utf-8")  # no lone surrogates left: Firestore can store it


def test_absurd_subject_is_cut_and_marked() -> None:
    doc = doc_of(copy(headers="X: y\r\n").replace(b"Subject: s", b"Subject: " + b"s" * 500_000))
    assert doc.truncated and len(doc.subject) == 2_000


def test_r6_bulk_copy_with_too_many_recipients_is_not_storable() -> None:
    to = ", ".join(f"p{i}@client.example" for i in range(MAX_RECIPIENTS + 1))
    with pytest.raises(NotStorable):
        doc_of(copy().replace(b"To: ann@client.example", f"To: {to}".encode()))


def test_copy_with_too_many_attachments_is_not_storable() -> None:
    parts = "".join(f"--B\r\nContent-Disposition: attachment; filename=f{i}\r\n\r\nx\r\n"
                    for i in range(MAX_ATTACHMENTS + 1))
    raw = ("From: rep@corp.example\r\nTo: ann@client.example\r\nMIME-Version: 1.0\r\n"
           "Content-Type: multipart/mixed; boundary=B\r\n\r\n" + parts + "--B--\r\n").encode()
    with pytest.raises(NotStorable):
        doc_of(raw)
