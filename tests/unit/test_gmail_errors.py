"""Spec of the one Gmail error classifier: every (status, reason) pair the code acts on."""

from __future__ import annotations

import json

import httplib2
import pytest
from googleapiclient.errors import HttpError

from shared.gmail.errors import Outcome, classify, error_details, is_retryable


def http_error(status: int, reason: str = "", message: str = "") -> HttpError:
    body = {"error": {"code": status, "message": message or f"HTTP {status}",
                      "errors": [{"reason": reason, "message": message}] if reason else []}}
    return HttpError(httplib2.Response({"status": status}), json.dumps(body).encode())


TABLE = [
    # (status, reason, message, history?, outcome)
    (429, "rateLimitExceeded", "", False, Outcome.RATE_LIMITED),
    (429, "userRateLimitExceeded", "", False, Outcome.RATE_LIMITED),
    (429, "", "", False, Outcome.RATE_LIMITED),
    (403, "userRateLimitExceeded", "", False, Outcome.RATE_LIMITED),
    (403, "rateLimitExceeded", "", False, Outcome.RATE_LIMITED),
    (403, "quotaExceeded", "", False, Outcome.RATE_LIMITED),
    (429, "dailyLimitExceeded", "", False, Outcome.SENDING_LIMIT),
    (403, "dailyLimitExceeded", "", False, Outcome.SENDING_LIMIT),
    (429, "rateLimitExceeded", "User-rate limit exceeded. Mail sending limit exceeded", False, Outcome.SENDING_LIMIT),
    (403, "", "Daily user sending limit exceeded", False, Outcome.SENDING_LIMIT),
    (404, "notFound", "", False, Outcome.NOT_FOUND),
    (404, "notFound", "", True, Outcome.HISTORY_EXPIRED),
    (401, "authError", "", False, Outcome.REAUTH),
    (401, "", "", False, Outcome.REAUTH),
    (400, "invalidArgument", "", False, Outcome.REJECTED),
    (400, "failedPrecondition", "", False, Outcome.REJECTED),
    (403, "insufficientPermissions", "", False, Outcome.REJECTED),
    (403, "forbidden", "", False, Outcome.REJECTED),
    (413, "", "", False, Outcome.REJECTED),
    (403, "backendError", "", False, Outcome.TRANSIENT),
    (500, "backendError", "", False, Outcome.TRANSIENT),
    (500, "", "", False, Outcome.TRANSIENT),
    (502, "", "", False, Outcome.TRANSIENT),
    (503, "backendError", "", False, Outcome.TRANSIENT),
    (504, "", "", False, Outcome.TRANSIENT),
]


@pytest.mark.parametrize(("status", "reason", "message", "history", "outcome"), TABLE)
def test_gmail_error_outcome(status: int, reason: str, message: str, history: bool, outcome: Outcome) -> None:
    info = classify(http_error(status, reason, message), history=history)
    assert info.outcome is outcome
    assert info.status == status and info.reason == reason


def test_transport_errors_are_transient() -> None:
    for exc in (TimeoutError(), ConnectionResetError(), OSError("broken pipe")):
        assert classify(exc).outcome is Outcome.TRANSIENT
        assert is_retryable(exc)


def test_programming_errors_are_not_retried() -> None:
    assert classify(ValueError("x")).outcome is Outcome.REJECTED
    assert not is_retryable(KeyError("x"))


def test_refresh_token_rejected_is_reauth() -> None:
    from google.auth.exceptions import RefreshError

    exc = RefreshError("invalid_grant: Token has been expired or revoked.", {"error": "invalid_grant"})
    assert classify(exc).outcome is Outcome.REAUTH


def test_non_json_error_body_keeps_the_status() -> None:
    exc = HttpError(httplib2.Response({"status": 502}), b"<html>Bad Gateway</html>")
    assert error_details(exc)[0] == 502
    assert classify(exc).outcome is Outcome.TRANSIENT


@pytest.mark.parametrize(("status", "reason", "outcome"), [
    (400, "invalidArgument", Outcome.NOT_FOUND),
    (404, "notFound", Outcome.NOT_FOUND),
    (429, "rateLimitExceeded", Outcome.RATE_LIMITED),
    (500, "backendError", Outcome.TRANSIENT),
    (403, "insufficientPermissions", Outcome.REJECTED),
])
def test_a_read_by_id_treats_invalid_id_as_gone(status: int, reason: str, outcome: Outcome) -> None:
    assert classify(http_error(status, reason, "Invalid id value"), by_id=True).outcome is outcome


@pytest.mark.parametrize(("status", "message", "unknown"), [
    (404, "Requested entity was not found. threadId", True),
    (400, "Invalid thread_id value", True),
    (404, "Requested entity was not found.", False),
    (403, "thread", False),
])
def test_send_thread_unknown_is_a_400_or_404_naming_the_thread(status: int, message: str, unknown: bool) -> None:
    assert classify(http_error(status, "", message)).thread_unknown is unknown
