"""Request validation refuses exactly what would break further down (issue 15, finding 5).

Each rule is derived from the system the value ends up in: Firestore's document
id rules, the line breaks Python's `email` (policy=default) refuses in a
header, Unicode itself (a lone surrogate cannot be encoded). Before these
rules, every refused case here was a 500 from the stack.
"""

from __future__ import annotations

import json
from email import policy
from email.message import EmailMessage
from typing import Any

import flask
import pytest
from werkzeug.exceptions import ClientDisconnected

from shared.gmail.mime_build import OutgoingEmail, build_bytes
from shared.http.answers import MAX_JSON_DEPTH, ApiError, handles_errors, read_json
from shared.http.validate import (
    HEADER_LINE_BREAKS,
    MAX_ID_BYTES,
    check_id,
    is_address,
    optional_address_list,
    require_id,
    require_str,
)
from shared.send.request import parse_send_request

APP = flask.Flask(__name__)


def refused(fn: Any, *args: Any, **kwargs: Any) -> ApiError:
    with pytest.raises(ApiError) as info:
        fn(*args, **kwargs)
    return info.value


def send_body(**kw: Any) -> dict[str, Any]:
    b: dict[str, Any] = {"accountId": "acc1", "userId": "u1", "contactId": "c1", "subject": "Hi",
                         "text": "Hello", "idempotencyKey": "k-1"}
    b.update(kw)
    return b


# --------------------------------------------------------------------------- ids: Firestore's rules

@pytest.mark.parametrize("value", [
    "acme", "a.b", "...", "___", "__x", "x__", "x__y__z", "a b", " ", "日本", "a:b@c-d_e", "x" * MAX_ID_BYTES,
    "é" * (MAX_ID_BYTES // 2),  # 1,500 bytes of UTF-8
])
def test_ids_firestore_accepts_are_accepted(value: str) -> None:
    assert check_id("accountId", value) == value


@pytest.mark.parametrize(("value", "why"), [
    ("", "empty"),
    (".", "'.'"),
    ("..", "'..'"),
    ("__x__", "'__'"),
    ("____", "'__'"),
    ("__\n__", "'__'"),
    ("a/b", "'/'"),
    ("/", "'/'"),
    ("x" * (MAX_ID_BYTES + 1), "1500 bytes"),
    ("é" * (MAX_ID_BYTES // 2 + 1), "1500 bytes"),  # 751 characters, 1,502 bytes
    ("a\ud800b", "lone surrogate"),
    (7, "string"),
    (["a"], "string"),
])
def test_ids_firestore_refuses_are_a_400_naming_the_field(value: Any, why: str) -> None:
    err = refused(require_id, {"contactId": value}, "contactId")
    assert (err.status, err.code, err.extra["field"]) == (400, "invalid_request", "contactId")
    assert why in err.message


def test_a_missing_id_is_required() -> None:
    assert "is required" in refused(require_id, {}, "userId").message


@pytest.mark.parametrize("value", [".", "..", "__x__", "a/b", "x" * (MAX_ID_BYTES + 1)])
def test_reply_to_message_id_is_validated_as_an_id(value: str) -> None:
    err = refused(parse_send_request, send_body(replyToMessageId=value))
    assert (err.status, err.code, err.extra["field"]) == (400, "invalid_request", "replyToMessageId")


def test_reply_to_message_id_of_the_sync_is_accepted() -> None:
    assert parse_send_request(send_body(replyToMessageId="gm_18c2f0a1")).reply_to_message_id == "gm_18c2f0a1"


# --------------------------------------------------------------------------- headers: what `email` refuses

def test_header_line_breaks_are_exactly_what_splitlines_splits() -> None:
    """email.policy.EmailPolicy.header_store_parse refuses a value that str.splitlines() splits."""
    splits = {chr(c) for c in range(0x110000)
              if not 0xD800 <= c <= 0xDFFF and len(f"a{chr(c)}b".splitlines()) > 1}
    assert splits == set(HEADER_LINE_BREAKS)


@pytest.mark.parametrize("char", list(HEADER_LINE_BREAKS))
def test_python_email_refuses_each_header_line_break(char: str) -> None:
    msg = EmailMessage(policy=policy.default)
    with pytest.raises(ValueError):
        msg["Subject"] = f"a{char}b"


@pytest.mark.parametrize("char", [*HEADER_LINE_BREAKS, "\x00"])
@pytest.mark.parametrize("where", ["start", "middle", "end"])
@pytest.mark.parametrize("field", ["subject", "idempotencyKey", "replyToMessageId"])
def test_each_header_line_break_is_header_injection_naming_the_field(char: str, where: str, field: str) -> None:
    value = {"start": f"{char}gm_1", "middle": f"gm{char}1", "end": f"gm_1{char}"}[where]
    err = refused(parse_send_request, send_body(**{field: value}))
    assert (err.status, err.code, err.extra["field"]) == (400, "header_injection", field)


@pytest.mark.parametrize("char", ["\u2028", "\x85", "\x0b", "\x0c"])
def test_line_breaks_in_attachment_names_and_cc_are_header_injection(char: str) -> None:
    att = {"filename": f"a{char}.txt", "mimeType": "text/plain", "contentBase64": "eA=="}
    assert refused(parse_send_request, send_body(attachments=[att])).code == "header_injection"
    att = {"filename": "a.txt", "mimeType": f"text/plain{char}", "contentBase64": "eA=="}
    assert refused(parse_send_request, send_body(attachments=[att])).code == "header_injection"
    assert refused(optional_address_list, {"cc": [f"a@x.example{char}"]}, "cc").extra["field"] == "cc[0]"


@pytest.mark.parametrize("subject", ["tab\there", "bell\x07", "del\x7f", "bom\ufeff", "é ü 日本", "😀" * 300,
                                     "=?utf-8?q?not_really?=", "x" * 998])
def test_other_characters_in_a_subject_are_accepted_and_build_a_message(subject: str) -> None:
    req = parse_send_request(send_body(subject=subject))
    raw = build_bytes(OutgoingEmail(from_address="rep@gmail.test", to_address="c@client.test",
                                    subject=req.subject or "", message_id="<1@x>", text=req.text))
    assert raw.startswith(b"From:")


def test_an_address_with_a_final_newline_is_not_an_address() -> None:
    assert is_address("a@x.example") and not is_address("a@x.example\n")


def test_lone_surrogates_in_strings_are_refused_naming_the_field() -> None:
    err = refused(require_str, {"text": "a\udc80"}, "text")
    assert (err.status, err.code, err.extra["field"]) == (400, "invalid_request", "text")


# --------------------------------------------------------------------------- JSON bodies: size, depth, Unicode

def read(data: bytes | str, content_type: str = "application/json", max_bytes: int = 1024 * 1024) -> Any:
    with APP.test_request_context("/", method="POST", data=data, content_type=content_type):
        return read_json(flask.request, max_bytes=max_bytes)


def test_deeply_nested_json_is_400_malformed_json_not_a_recursion_error() -> None:
    err = refused(read, "[" * 100_000 + "]" * 100_000)
    assert (err.status, err.code) == (400, "malformed_json")
    err = refused(read, '{"a":' * 100_000 + "1" + "}" * 100_000)
    assert (err.status, err.code) == (400, "malformed_json")


def test_json_nesting_limit_is_exact() -> None:
    def nested(depth: int) -> str:  # depth levels of objects, the outermost is the body
        return '{"a":' * depth + "1" + "}" * depth

    assert read(nested(MAX_JSON_DEPTH))["a"]
    err = refused(read, nested(MAX_JSON_DEPTH + 1))
    assert (err.code, str(MAX_JSON_DEPTH) in err.message) == ("malformed_json", True)
    err = refused(read, '{"a": ' + "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH + "}")
    assert err.code == "malformed_json"


def test_json_over_the_size_limit_is_413() -> None:
    err = refused(read, json.dumps({"text": "x" * 2000}), max_bytes=1000)
    assert (err.status, err.code) == (413, "too_large")


@pytest.mark.parametrize("data", ['{"a": NaN}', '{"a": Infinity}', '{"a": -Infinity}', '{"a": 1', "", "\xff",
                                  '{"a": ' + "1" * 5000 + "}"])
def test_what_is_not_json_is_malformed_json(data: str) -> None:
    assert refused(read, data.encode("latin-1")).code == "malformed_json"


@pytest.mark.parametrize(("data", "field"), [
    (b'{"subject": "a\\ud800"}', "subject"),
    (b'{"subject": "\\udfff"}', "subject"),
    (b'{"attachments": [{"filename": "x\\udc00.txt"}]}', "attachments[0].filename"),
    (b'{"cc": ["ok@x.example", "\\ud83d"]}', "cc[1]"),
    (b'{"subject": "\xed\xa0\x80"}', "subject"),  # the surrogate's CESU-8 bytes, which json.loads passes
    (b'{"\\ud800": 1}', "body"),
])
def test_lone_surrogates_anywhere_in_json_are_400_naming_where(data: bytes, field: str) -> None:
    err = refused(read, data)
    assert (err.status, err.code, err.extra["field"]) == (400, "invalid_request", field)


def test_a_surrogate_pair_is_an_ordinary_character() -> None:
    assert read(b'{"subject": "\\ud83d\\ude00"}')["subject"] == "😀"


def test_not_json_content_type_is_415() -> None:
    assert refused(read, b"{}", content_type="text/plain").status == 415


def test_werkzeug_client_errors_stay_4xx() -> None:
    """A body shorter than its Content-Length makes werkzeug raise ClientDisconnected (a 400)."""

    @handles_errors
    def handler() -> Any:
        raise ClientDisconnected()

    with APP.test_request_context("/"):
        resp = handler()
    assert resp.status_code == 400 and resp.get_json()["error"] == "bad_request"


def test_unexpected_errors_stay_a_500_without_details() -> None:
    @handles_errors
    def handler() -> Any:
        raise RuntimeError("secret detail")

    with APP.test_request_context("/"):
        resp = handler()
    assert resp.status_code == 500 and resp.get_json() == {"error": "internal", "message": "internal error"}
