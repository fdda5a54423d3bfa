"""send_email request validation: every bad input is a clear 4xx before anything happens."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from shared.http.answers import ApiError
from shared.send.request import MAX_CONTENT_BYTES, parse_send_request


def body(**kw: Any) -> dict[str, Any]:
    b: dict[str, Any] = {"accountId": "acc1", "userId": "u1", "contactId": "c1", "subject": "Hi",
                         "text": "Hello", "idempotencyKey": "k-1"}
    b.update(kw)
    return {k: v for k, v in b.items() if v is not None}


def refused(b: dict[str, Any]) -> ApiError:
    with pytest.raises(ApiError) as info:
        parse_send_request(b)
    return info.value


def test_minimal_valid_request() -> None:
    r = parse_send_request(body())
    assert (r.account_id, r.user_id, r.contact_id, r.subject, r.text) == ("acc1", "u1", "c1", "Hi", "Hello")


@pytest.mark.parametrize("field", ["accountId", "userId", "contactId", "idempotencyKey"])
def test_required_fields(field: str) -> None:
    b = body()
    del b[field]
    err = refused(b)
    assert (err.status, err.code, err.extra["field"]) == (400, "invalid_request", field)


def test_subject_is_required_for_a_new_message() -> None:
    assert refused(body(subject=None)).extra["field"] == "subject"
    assert refused(body(subject="  ")).extra["field"] == "subject"


def test_subject_may_be_omitted_for_a_reply() -> None:
    assert parse_send_request(body(subject=None, replyToMessageId="gm_123")).subject is None


def test_text_or_html_is_required() -> None:
    assert refused(body(text=None)).code == "invalid_request"
    assert parse_send_request(body(text=None, html="<p>x</p>")).html == "<p>x</p>"


@pytest.mark.parametrize("b", [
    body(subject="Hi\r\nBcc: victim@example.com"),
    body(subject="Hi\nX: y"),
    body(cc=["a@x.example\r\nBcc: v@x.example"]),
    body(bcc=["a@x.example\n"]),
    body(attachments=[{"filename": "a\r\n.txt", "mimeType": "text/plain", "contentBase64": "eA=="}]),
    body(attachments=[{"filename": "a.txt", "mimeType": "text/plain\r\nX: y", "contentBase64": "eA=="}]),
    body(idempotencyKey="k\r\n1"),
    body(replyToMessageId="gm_1\r\nX: y"),
])
def test_cr_lf_in_any_header_value_is_header_injection(b: dict[str, Any]) -> None:
    err = refused(b)
    assert (err.status, err.code) == (400, "header_injection")


@pytest.mark.parametrize("addr", ["not-an-address", "a@b", "a b@x.example", "<a@x.example>", 7])
def test_bad_cc_addresses(addr: Any) -> None:
    err = refused(body(cc=[addr]))
    assert (err.status, err.code, err.extra["field"]) == (400, "invalid_request", "cc[0]")


@pytest.mark.parametrize("field", ["to", "from", "headers"])
def test_sender_recipient_and_raw_headers_are_not_accepted(field: str) -> None:
    assert refused(body(**{field: "x@y.example"})).extra["field"] == field


@pytest.mark.parametrize("kw", [{"subject": 5}, {"text": ["x"]}, {"cc": "a@x.example"}, {"attachments": {}},
                                {"accountId": "a/b"}, {"contactId": ""}])
def test_wrong_types_and_shapes(kw: dict[str, Any]) -> None:
    assert refused(body(**kw)).status == 400


def test_attachments_are_decoded() -> None:
    r = parse_send_request(body(attachments=[
        {"filename": "a.pdf", "mimeType": "application/pdf", "contentBase64": base64.b64encode(b"%PDF").decode()},
        {"filename": "b.bin", "contentBase64": base64.urlsafe_b64encode(b"\xfb\xff").decode()}]))
    assert [(a.filename, a.content) for a in r.attachments] == [("a.pdf", b"%PDF"), ("b.bin", b"\xfb\xff")]


def test_invalid_base64_is_refused() -> None:
    err = refused(body(attachments=[{"filename": "a", "contentBase64": "***"}]))
    assert err.extra["field"] == "attachments[0].contentBase64"


def test_missing_filename_is_refused() -> None:
    assert refused(body(attachments=[{"contentBase64": "eA=="}])).extra["field"] == "attachments[0].filename"


def test_content_exactly_at_25_mb_is_accepted() -> None:
    blob = base64.b64encode(b"\0" * (MAX_CONTENT_BYTES - 5)).decode()
    r = parse_send_request(body(attachments=[{"filename": "a.bin", "contentBase64": blob}]))
    assert r.content_bytes == MAX_CONTENT_BYTES


def test_content_over_25_mb_is_413_too_large() -> None:
    half = base64.b64encode(b"\0" * (MAX_CONTENT_BYTES // 2)).decode()
    err = refused(body(attachments=[{"filename": "a.bin", "contentBase64": half},
                                    {"filename": "b.bin", "contentBase64": half}]))
    assert (err.status, err.code) == (413, "too_large")


def test_fingerprint_differs_with_content() -> None:
    assert parse_send_request(body()).fingerprint() == parse_send_request(body()).fingerprint()
    assert parse_send_request(body()).fingerprint() != parse_send_request(body(text="other")).fingerprint()
