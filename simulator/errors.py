"""Google's JSON error body, as the Gmail API answers it.

    {"error": {"code": 404, "message": "Requested entity was not found.",
               "errors": [{"message": "...", "domain": "global", "reason": "notFound"}],
               "status": "NOT_FOUND"}}

google-api-python-client turns it into `HttpError` with `.reason` = message
and `.error_details` = the `errors` list, so clients branch on the same
fields they would at Google.
"""

from __future__ import annotations

import json
from typing import Any

STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


class GmailError(Exception):
    def __init__(
        self,
        code: int,
        message: str,
        reason: str,
        *,
        domain: str = "global",
        status: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: str,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason
        self.domain = domain
        self.status = status or STATUS.get(code, "UNKNOWN")
        self.headers = headers or {}
        self.extra = extra

    def body(self) -> dict[str, Any]:
        item = {"message": self.message, "domain": self.domain, "reason": self.reason, **self.extra}
        return {"error": {"code": self.code, "message": self.message, "errors": [item], "status": self.status}}

    def to_bytes(self) -> bytes:
        return json.dumps(self.body()).encode()


def not_found() -> GmailError:
    return GmailError(404, "Requested entity was not found.", "notFound")


def invalid(message: str) -> GmailError:
    return GmailError(400, message, "invalidArgument")


def unauthenticated(missing: bool) -> GmailError:
    msg = (
        "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie "
        "or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."
        if missing
        else "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or "
        "other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."
    )
    return GmailError(
        401,
        msg,
        "required" if missing else "authError",
        location="Authorization",
        locationType="header",
        headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/", error="invalid_token"'},
    )


def insufficient_scope() -> GmailError:
    return GmailError(403, "Request had insufficient authentication scopes.", "insufficientPermissions")


INJECTED = {
    400: ("Invalid request (injected fault).", "invalidArgument", "global"),
    401: ("Request had invalid authentication credentials.", "authError", "global"),
    403: ("User-rate limit exceeded.", "userRateLimitExceeded", "usageLimits"),
    404: ("Requested entity was not found.", "notFound", "global"),
    429: ("Too many concurrent requests for user.", "rateLimitExceeded", "usageLimits"),
    500: ("Internal error encountered.", "backendError", "global"),
    502: ("Bad Gateway", "backendError", "global"),
    503: ("The service is currently unavailable.", "backendError", "global"),
    504: ("Deadline exceeded.", "backendError", "global"),
}


def injected(code: int) -> GmailError:
    message, reason, domain = INJECTED[code]
    return GmailError(code, message, reason, domain=domain)
