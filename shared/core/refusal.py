"""The one refusal type: an operation said no, and the refusal itself says how the caller is answered.

Every domain refusal (send's, connect's, Auto BCC's, attachments') is a
`Refusal` subclass whose class carries its HTTP `status` and public error
`code`; the instance carries the `message` (or the class's default one) and
any extra fields of the answer (`field`, `retryAfterSeconds`, …).
`shared.http.answers.handles_errors` turns any of them into
`{"error": code, "message": message, **extra}` with that status, so an
adapter maps refusals by class, never by a class's name: renaming an
exception cannot turn a 4xx into a 500.

It lives in `core` (not `http`) so the domain packages can raise it without
depending on the HTTP plumbing.
"""

from __future__ import annotations

from typing import Any


class Refusal(Exception):
    """A 4xx (or a "retry later" 503) decided before anything was written."""

    status: int = 400
    code: str = "invalid_request"
    message: str = "the request was refused"

    def __init__(self, message: str | None = None, *, code: str | None = None, **extra: Any) -> None:
        if message is not None:
            self.message = message
        super().__init__(self.message)
        if code is not None:
            self.code = code
        self.extra = extra

    def body(self) -> dict[str, Any]:
        """The JSON answer's body (SPEC §6): the code, the human text, then the extra fields."""
        return {"error": self.code, "message": self.message, **self.extra}


class QuietRefusal(Refusal):
    """A refusal whose answer is the class's own text: what it is raised with (an id) is kept on `detail` for
    the caller's logs and never reaches the answer, so another tenant's ids stay unseen."""

    def __init__(self, detail: str = "") -> None:
        super().__init__()
        self.detail = detail
