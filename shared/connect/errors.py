"""What the connect operations refuse, as domain exceptions (the `oauth` adapters map them to HTTP).

Each carries the public error `code` of docs/API_OAUTH.md; the adapter picks the
status (404, 400, 409) so `shared/connect` stays free of HTTP.
"""

from __future__ import annotations


class ConnectError(Exception):
    code = "invalid_request"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code


class UserNotFound(ConnectError):
    """accounts/{a}/users/{u} does not exist (another tenant's ids included: the pair simply does not exist)."""

    code = "not_found"


class ReturnUrlRefused(ConnectError):
    """`returnUrl` is not an absolute http(s) URL (`invalid_request`) or not on the allow-list."""


class NotConnected(ConnectError):
    code = "not_connected"


class ReauthRequired(ConnectError):
    code = "reauth_required"


class StateRejected(ConnectError):
    """A state we did not sign (or whose returnUrl is no longer allowed): nowhere safe to redirect to."""

    code = "invalid_state"
