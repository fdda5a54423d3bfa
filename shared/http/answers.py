"""HTTP plumbing shared by the HTTP functions: errors, JSON bodies, auth.

Every error is `{"error": "<code>", "message": "<human text>"}` with a 4xx
status (SPEC §6). Raising `ApiError` anywhere in a handler produces it; an
unexpected exception becomes a logged 500 without leaking details.
"""

from __future__ import annotations

import functools
import hmac
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from shared.core import log

if TYPE_CHECKING:
    import flask

MAX_JSON_BYTES = 1 * 1024 * 1024


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, **self.extra}


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> flask.Response:
    import flask

    resp = flask.Response(json.dumps(obj, default=str), status=status, mimetype="application/json")
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def error_response(err: ApiError) -> flask.Response:
    headers = {"WWW-Authenticate": "Bearer"} if err.status == 401 else None
    return json_response(err.body(), err.status, headers)


def handles_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn ApiError into its JSON answer and anything else into a logged 500."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ApiError as err:
            log.info("request refused", error=err.code, status=err.status)
            return error_response(err)
        except Exception as exc:
            log.error("unhandled error", error=type(exc).__name__, detail=str(exc)[:300])
            return json_response({"error": "internal", "message": "internal error"}, 500)

    return wrapper


def read_json(request: flask.Request, max_bytes: int = MAX_JSON_BYTES) -> dict[str, Any]:
    """The request's JSON object, or a 4xx that says what is wrong with it."""
    length = request.content_length
    if length is not None and length > max_bytes:
        raise ApiError(413, "too_large", f"request body exceeds {max_bytes} bytes")
    ctype = (request.mimetype or "").lower()
    if ctype != "application/json":
        raise ApiError(415, "unsupported_media_type", "Content-Type must be application/json")
    raw = request.get_data(cache=True)
    if len(raw) > max_bytes:
        raise ApiError(413, "too_large", f"request body exceeds {max_bytes} bytes")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "malformed_json", "request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "malformed_json", "request body must be a JSON object")
    return body


def bearer_token(request: flask.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def require_bearer(request: flask.Request, secret_name: str) -> None:
    """Constant-time check of `Authorization: Bearer <key>` against a secret."""
    from shared.core.secrets import get_secret

    token = bearer_token(request)
    expected = get_secret(secret_name).data.strip()
    if token is None or not hmac.compare_digest(token.encode("utf-8"), expected):
        raise ApiError(401, "unauthorized", "missing or invalid API key")
