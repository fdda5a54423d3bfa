"""gmail_push acknowledges hostile Pub/Sub messages as malformed instead of raising (issue 15, finding 7).

Raising makes Pub/Sub redeliver the message until its dead-letter limit: a
message that can never be processed must be logged and acknowledged. Each
body here raised before (RecursionError, OverflowError, UnicodeEncodeError).
"""

from __future__ import annotations

import base64
import io
import json
import types
from contextlib import redirect_stdout
from typing import Any

import pytest

from functions.gmail_push import Malformed, decode, handle


def event_of(raw: bytes) -> Any:
    return types.SimpleNamespace(data={"message": {"data": base64.b64encode(raw).decode()}, "subscription": "s"})


def event(body: Any) -> Any:
    return event_of(json.dumps(body).encode())


HOSTILE = {
    "deep JSON array": b"[" * 100_000 + b"]" * 100_000,
    "deep JSON under emailAddress": b'{"emailAddress": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "historyId 1e400 (infinite float)": b'{"emailAddress": "rep@gmail.test", "historyId": 1e400}',
    "historyId -1e400": b'{"emailAddress": "rep@gmail.test", "historyId": -1e400}',
    "historyId NaN": b'{"emailAddress": "rep@gmail.test", "historyId": NaN}',
    "historyId beyond int64": b'{"emailAddress": "rep@gmail.test", "historyId": 99999999999999999999}',
    "historyId with 5000 digits": b'{"emailAddress": "rep@gmail.test", "historyId": "' + b"9" * 5000 + b'"}',
    "historyId negative": b'{"emailAddress": "rep@gmail.test", "historyId": -5}',
    "historyId fractional": b'{"emailAddress": "rep@gmail.test", "historyId": 1.5}',
    "historyId true": b'{"emailAddress": "rep@gmail.test", "historyId": true}',
    "historyId non-ASCII digits": '{"emailAddress": "rep@gmail.test", "historyId": "\u0661\u0662"}'.encode(),
    "emailAddress with a lone surrogate": b'{"emailAddress": "rep\\ud800@gmail.test", "historyId": 5}',
    "emailAddress with CESU-8 surrogate bytes": b'{"emailAddress": "rep\xed\xa0\x80@gmail.test", "historyId": 5}',
}


@pytest.mark.parametrize("raw", list(HOSTILE.values()), ids=list(HOSTILE))
def test_hostile_bodies_are_malformed(raw: bytes) -> None:
    with pytest.raises(Malformed):
        decode(event_of(raw))


@pytest.mark.parametrize("raw", list(HOSTILE.values()), ids=list(HOSTILE))
def test_hostile_bodies_are_acknowledged_and_logged_not_raised(raw: bytes) -> None:
    out = io.StringIO()
    with redirect_stdout(out):
        assert handle(event_of(raw)) is None  # returning acknowledges: no redelivery
    assert "malformed sync message acknowledged" in out.getvalue()


def test_gmail_history_ids_still_decode() -> None:
    assert decode(event({"emailAddress": "rep@gmail.test", "historyId": "9223372036854775807"})).history_id == 2**63 - 1
    assert decode(event({"emailAddress": "rep@gmail.test", "historyId": 0})).history_id == 0
    assert decode(event({"emailAddress": "rép@gmail.test", "historyId": 7})).address == "rép@gmail.test"
