"""The one place that reads Gmail's errors.

Gmail answers a refusal with an HTTP status and a list of `reason`s
(`{"error": {"code", "message", "errors": [{"reason", …}]}}`); transports
fail with `OSError`/`TimeoutError`; google-auth fails a refresh with
`RefreshError`. Sync, send, quota_reset and auto_bcc each act on a handful of
outcomes, so they ask `classify()` instead of reading statuses themselves:
two copies of the rate-limit reason list had already drifted apart.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass

from shared.gmail.credentials import is_invalid_grant


class Outcome(enum.Enum):
    RATE_LIMITED = "rate_limited"  # per-user or per-project rate: nothing happened, retry after a pause
    SENDING_LIMIT = "sending_limit"  # the mailbox's daily sending limit (R17): nothing was sent
    NOT_FOUND = "not_found"  # the message, thread or attachment is gone
    HISTORY_EXPIRED = "history_expired"  # history.list startHistoryId older than Gmail keeps (404)
    REAUTH = "reauth"  # the refresh token was rejected (invalid_grant) or the access is revoked (R5)
    REJECTED = "rejected"  # a 4xx that retrying cannot fix (bad request, forbidden, too large)
    TRANSIENT = "transient"  # 5xx or transport failure: may or may not have happened; retry


RATE_LIMIT_REASONS = frozenset({"userRateLimitExceeded", "rateLimitExceeded", "quotaExceeded"})
SENDING_LIMIT_REASONS = frozenset({"dailyLimitExceeded"})
REAUTH_REASONS = frozenset({"authError", "invalid_grant"})


@dataclass(frozen=True)
class GmailErrorInfo:
    status: int  # 0 for a transport error
    reason: str  # first reason Gmail gave, "" if none
    message: str  # Gmail's human message (never bodies: Gmail does not echo them)
    outcome: Outcome

    @property
    def thread_unknown(self) -> bool:
        """messages.send's 400/404 naming the thread: the `threadId` is not in this mailbox (R3: another Gmail)."""
        return self.status in (400, 404) and "thread" in self.message.lower()


def error_details(exc: BaseException) -> tuple[int, str, str]:
    """(status, first reason, message) of an `HttpError`; (0, "", text) for anything else."""
    resp = getattr(exc, "resp", None)
    status = int(getattr(resp, "status", 0) or 0)
    reason, message = "", str(exc)
    content = getattr(exc, "content", None)
    if isinstance(content, bytes | str) and content:
        try:
            err = json.loads(content).get("error", {})
        except (ValueError, AttributeError, TypeError, UnicodeDecodeError):
            err = {}
        if isinstance(err, dict):
            message = str(err.get("message") or message)
            errors = err.get("errors") or [{}]
            if isinstance(errors, list) and errors and isinstance(errors[0], dict):
                reason = str(errors[0].get("reason") or "")
        elif isinstance(err, str):  # OAuth-style {"error": "invalid_grant"}
            reason = err
    return status, reason, message


def outcome_for(status: int, reason: str, message: str = "", *, history: bool = False,
                by_id: bool = False) -> Outcome:
    """The spec table (tests/unit/test_gmail_errors.py lists every pair acted on)."""
    lowered = message.lower()
    if reason in SENDING_LIMIT_REASONS or (status in (403, 429) and ("mail sending" in lowered
                                                                       or "sending limit" in lowered)):
        return Outcome.SENDING_LIMIT
    if status == 429 or reason in RATE_LIMIT_REASONS:
        return Outcome.RATE_LIMITED
    if status == 401 or reason in REAUTH_REASONS:
        return Outcome.REAUTH
    if status == 404 or (by_id and status == 400):
        return Outcome.HISTORY_EXPIRED if history else Outcome.NOT_FOUND
    if status == 0 or status >= 500 or reason == "backendError":
        return Outcome.TRANSIENT
    return Outcome.REJECTED


def classify(exc: BaseException, *, history: bool = False, by_id: bool = False) -> GmailErrorInfo:
    """What a Gmail failure means. `history=True` for history.list, where 404 means the cursor expired;
    `by_id=True` for a read of one message by its id (a batch's messages.get), where Gmail's 400
    ("Invalid id value") too means the message is gone."""
    if is_invalid_grant(exc):
        return GmailErrorInfo(0, "invalid_grant", "refresh token rejected", Outcome.REAUTH)
    if getattr(exc, "resp", None) is None:
        transient = isinstance(exc, OSError | TimeoutError)
        outcome = Outcome.TRANSIENT if transient else Outcome.REJECTED
        return GmailErrorInfo(0, "", type(exc).__name__, outcome)
    status, reason, message = error_details(exc)
    return GmailErrorInfo(status, reason, message,
                          outcome_for(status, reason, message, history=history, by_id=by_id))


RETRYABLE = frozenset({Outcome.RATE_LIMITED, Outcome.TRANSIENT})


def is_retryable(exc: BaseException) -> bool:
    """Safe to retry a read: rate limits and transient failures."""
    return classify(exc).outcome in RETRYABLE
