"""Small pure parts of the sync: Pub/Sub message decoding, history chunking, retryable Gmail errors."""

from __future__ import annotations

import base64
import json
import types
from typing import Any

import httplib2
import pytest
from googleapiclient.errors import HttpError

from functions.gmail_push import Malformed, PushMessage, decode
from shared.gmail.errors import is_retryable
from shared.gmail.fetch import HistoryRecord
from shared.sync.engine import CHUNK_MESSAGES, _chunks


def event(body: Any) -> Any:
    data = base64.b64encode(json.dumps(body).encode()).decode()
    return types.SimpleNamespace(data={"message": {"data": data}, "subscription": "s"})


def test_decode_the_three_kinds_of_message() -> None:
    assert decode(event({"emailAddress": "Rep@Gmail.test", "historyId": 42})) == PushMessage("rep@gmail.test", 42)
    assert decode(event({"emailAddress": "rep@gmail.test", "historyId": "42"})).history_id == 42
    assert decode(event({"emailAddress": "rep@gmail.test", "force": True})) == PushMessage("rep@gmail.test", None, True)
    assert decode(event({"sweep": True})) == PushMessage(sweep=True)


@pytest.mark.parametrize("body", [
    {"emailAddress": "rep@gmail.test"},  # neither historyId nor force
    {"emailAddress": "not-an-address", "historyId": 1},
    {"emailAddress": "rep@gmail.test", "historyId": "abc"},
    {"emailAddress": ["x"], "historyId": 1},
    ["not", "an", "object"],
    {"sweep": "yes"},
])
def test_malformed_messages_are_rejected_for_acknowledgement(body: Any) -> None:
    with pytest.raises(Malformed):
        decode(event(body))


def test_non_base64_or_missing_data_is_malformed() -> None:
    with pytest.raises(Malformed):
        decode(types.SimpleNamespace(data={"message": {"data": "%%%not base64%%%"}}))
    with pytest.raises(Malformed):
        decode(types.SimpleNamespace(data={"message": {}}))
    with pytest.raises(Malformed):
        decode(types.SimpleNamespace(data=None))


def test_chunks_never_split_a_history_record_and_keep_order() -> None:
    records = [HistoryRecord(i, [f"m{i}"]) for i in range(120)] + [HistoryRecord(999, [f"x{j}" for j in range(70)])]
    chunks = _chunks(records)
    assert [r.id for c in chunks for r in c] == [r.id for r in records]
    assert all(sum(len(r.messages) for r in c) <= CHUNK_MESSAGES for c in chunks[:-1] if len(c) > 1)
    assert chunks[-1] == [records[-1]]  # the big record stays whole, on its own


def http_error(status: int, reason: str = "") -> HttpError:
    body = json.dumps({"error": {"code": status, "errors": [{"reason": reason}]}}).encode()
    return HttpError(httplib2.Response({"status": status}), body)


def test_retryable_gmail_errors_are_429_5xx_and_rate_limit_403s() -> None:
    assert is_retryable(http_error(429)) and is_retryable(http_error(500)) and is_retryable(http_error(503))
    assert is_retryable(http_error(403, "userRateLimitExceeded"))
    assert not is_retryable(http_error(403, "insufficientPermissions"))
    assert not is_retryable(http_error(404)) and not is_retryable(http_error(400))
    assert is_retryable(TimeoutError()) and not is_retryable(ValueError())


def test_r28_a_users_addresses_are_crm_email_connected_gmail_and_aliases() -> None:
    from shared.crm.users_cache import user_addresses

    doc = {"email": "Erin@Acme.test", "emailSync": {"address": "erin.home@gmail.test",
                                                      "aliases": ["Erin@Sales.test", 7, ""]}}
    assert user_addresses(doc) == {"erin@acme.test", "erin.home@gmail.test", "erin@sales.test"}
    assert user_addresses({"email": "bob@acme.test", "emailSync": None}) == {"bob@acme.test"}


def test_r30_sends_made_in_gmail_are_sent_mail_that_is_neither_a_draft_nor_the_crms_own() -> None:
    from shared.gmail.mime_build import message_id_for
    from shared.gmail.mime_parse import ParsedMessage
    from shared.sync.engine import gmail_sends

    def parsed(gmail_id: str, labels: set[str], message_id: str = "<x@gmail.test>") -> ParsedMessage:
        return ParsedMessage(gmail_id=gmail_id, thread_id="t", label_ids=frozenset(labels),
                             internal_date_ms=1_700_000_000_000, sender=None, to=[], cc=[], bcc=[], subject="",
                             rfc822_message_id=message_id, in_reply_to=None, references=[], text=None, html=None,
                             snippet="")

    got = gmail_sends([parsed("sent", {"SENT"}), parsed("to-self", {"SENT", "INBOX"}), parsed("in", {"INBOX"}),
                       parsed("draft", {"SENT", "DRAFT"}), parsed("crm", {"SENT"}, message_id_for("rec"))])
    assert [g for g, _ in got] == ["sent", "to-self"]
