"""Every refusal of send_email, in one place: its HTTP status, code and text (docs/API_SEND.md).

Each one is a 4xx (or a 503 that says "retry later with the same key") given
before Gmail sent anything; once Gmail accepted the message the answer is a
200 (R23). Refusals never hint at another tenant's data.
"""

from __future__ import annotations

from datetime import datetime

from shared.core.config import get_config
from shared.http.answers import ApiError


def not_found(field: str, what: str) -> ApiError:
    # Same answer whether the id exists in another account or nowhere: no hint across tenants.
    return ApiError(404, "not_found", f"{what} not found in this account", field=field)


def invalid_contact() -> ApiError:
    return ApiError(422, "invalid_contact", "the contact has no valid email address", field="contactId")


def not_connected() -> ApiError:
    return ApiError(409, "not_connected", "the user has not connected a Gmail account")


def reauth_required() -> ApiError:
    return ApiError(409, "reauth_required", "Google rejected the stored authorization; the rep must connect "
                    "Gmail again")


def credentials_unreadable() -> ApiError:
    """The stored token does not decrypt: not Google's verdict and not transient; a reconnect replaces it."""
    return ApiError(409, "credentials_unreadable", "the stored Gmail authorization cannot be read; the rep "
                    "must connect Gmail again")


def credentials_unavailable() -> ApiError:
    """Secret Manager could not give a key the send needs: nothing was sent, a retry may work."""
    return ApiError(503, "credentials_unavailable", "the Gmail authorization cannot be opened right now; "
                    "retry later with the same idempotencyKey", retryAfterSeconds=30)


def key_reused() -> ApiError:
    return ApiError(422, "idempotency_key_reused", "this idempotencyKey was already used for a different request")


def in_progress(retry_after: float) -> ApiError:
    return ApiError(409, "send_in_progress", "a send with this idempotencyKey is still in progress; retry later",
                    retryAfterSeconds=round(retry_after))


def daily_limit_reached(resets: datetime) -> ApiError:
    return ApiError(429, "daily_limit_reached",
                    f"the daily limit of {get_config().daily_send_limit} emails for this Gmail address is reached",
                    resetAt=resets.isoformat())


def rate_limited() -> ApiError:
    return ApiError(429, "rate_limited", "Gmail is rate-limiting this mailbox; retry shortly", retryAfterSeconds=5)


def gmail_rejected(status: int, reason: str, message: str) -> ApiError:
    return ApiError(422, "gmail_rejected", f"Gmail refused the message: {message[:300]}",
                    gmailStatus=status, gmailReason=reason)


def gmail_unavailable(message: str, retry_after: int) -> ApiError:
    return ApiError(503, "gmail_unavailable", message, retryAfterSeconds=retry_after)
