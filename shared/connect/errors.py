"""What the connect operations refuse: `Refusal`s carrying the public error code of docs/API_OAUTH.md.

Each class carries its status too (a missing user 404, a mailbox that is not
or no longer connected 409, anything else 400), so the `oauth` adapters need
no table: `shared.http.answers.handles_errors` answers them by class.
"""

from __future__ import annotations

from shared.core.refusal import Refusal


class ConnectError(Refusal):
    status = 400
    code = "invalid_request"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None) -> None:
        super().__init__(message, code=code, **({"field": field} if field else {}))
        self.field = field


class UserNotFound(ConnectError):
    """accounts/{a}/users/{u} does not exist (another tenant's ids included: the pair simply does not exist)."""

    status = 404
    code = "not_found"


class ReturnUrlRefused(ConnectError):
    """`returnUrl` is not an absolute http(s) URL (`invalid_request`) or not on the allow-list."""


class NotConnected(ConnectError):
    status = 409
    code = "not_connected"


class ReauthRequired(ConnectError):
    status = 409
    code = "reauth_required"


class StateRejected(ConnectError):
    """A state we did not sign (or whose returnUrl is no longer allowed): nowhere safe to redirect to."""

    code = "invalid_state"
