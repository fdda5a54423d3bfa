"""HTTP plumbing shared by the HTTP functions: errors, JSON bodies, auth.

Every error is `{"error": "<code>", "message": "<human text>"}` with a 4xx
status (SPEC §6). Raising a `Refusal` (shared/core/refusal.py: any domain
refusal, or `ApiError` for one spelled out in place) anywhere in a handler
produces it; an unexpected exception becomes a logged 500 without leaking
details.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from shared.core import log
from shared.core.refusal import Refusal

if TYPE_CHECKING:
    import flask

MAX_JSON_BYTES = 1 * 1024 * 1024
# The contract's bodies nest three levels (body → attachments → item); anything far deeper is an attack
# on the parser (json.loads recurses: thousands of levels raise RecursionError).
MAX_JSON_DEPTH = 32
_SURROGATE = re.compile("[\ud800-\udfff]")


class ApiError(Refusal):
    """A refusal whose status, code and message are given where it is raised (the HTTP side's own)."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message, code=code, **extra)
        self.status = status


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> flask.Response:
    import flask  # lazy: Flask (cold start)

    resp = flask.Response(json.dumps(obj, default=str), status=status, mimetype="application/json")
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def error_response(err: Refusal) -> flask.Response:
    headers = {"WWW-Authenticate": "Bearer"} if err.status == 401 else None
    return json_response(err.body(), err.status, headers)


def handles_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn any Refusal into its JSON answer and anything else into a logged 500."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Refusal as err:
            log.info("request refused", error=err.code, status=err.status)
            return error_response(err)
        except Exception as exc:
            refusal = _client_error(exc)
            if refusal is not None:
                log.info("request refused", error=refusal.code, status=refusal.status)
                return error_response(refusal)
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
        body = json.loads(raw, parse_constant=_not_json)
    except RecursionError:
        raise too_deep() from None
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "malformed_json", "request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "malformed_json", "request body must be a JSON object")
    check_json_tree(body)
    return body


def invalid(field: str, message: str) -> ApiError:
    """400 `invalid_request` naming the field (shared.http.validate's checks and the JSON tree's)."""
    return ApiError(400, "invalid_request", f"{field}: {message}", field=field)


def has_lone_surrogate(value: str) -> bool:
    return not value.isascii() and _SURROGATE.search(value) is not None


def too_deep() -> ApiError:
    return ApiError(400, "malformed_json", f"request body nests deeper than {MAX_JSON_DEPTH} levels")


def _not_json(name: str) -> Any:
    # Python's json accepts NaN, Infinity and -Infinity; RFC 8259 does not.
    raise ValueError(f"{name} is not JSON")


def check_json_tree(body: Any, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Depth and lone surrogates, without recursion (the body may be as deep as json.loads allowed).

    A lone surrogate (`"\\ud800"`, or CESU-8 bytes, which json.loads passes through) is not Unicode:
    it cannot be encoded for Firestore, Gmail or a log line, so it is refused here, naming where it is.
    """
    # (value, where its parent is, its key or index, depth); the path is spelled out only for an error
    stack: list[tuple[Any, str, str | int | None, int]] = [(body, "", None, 1)]
    while stack:
        value, parent, key, depth = stack.pop()
        if isinstance(value, str):
            if has_lone_surrogate(value):
                raise invalid(_where(parent, key), "contains a lone surrogate (not valid Unicode)")
            continue
        if depth > max_depth:
            raise too_deep()
        where = _where(parent, key) if key is not None else parent
        if isinstance(value, dict):
            for k, item in value.items():
                if has_lone_surrogate(k):
                    raise invalid(where or "body", "has a key with a lone surrogate (not valid Unicode)")
                if isinstance(item, str | dict | list):
                    stack.append((item, where, k, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, where, i, depth + 1) for i, item in enumerate(value)
                         if isinstance(item, str | dict | list))


def _where(parent: str, key: str | int | None) -> str:
    """`attachments[0].filename`: the field named the way the contract spells it (cut to stay readable)."""
    if isinstance(key, int):
        path = f"{parent}[{key}]"
    else:
        path = f"{parent}.{key}" if parent else str(key or "body")
    return path[:200]


def _client_error(exc: Exception) -> ApiError | None:
    """Werkzeug's own 4xx (a body shorter than its Content-Length, a malformed header…) stays a 4xx."""
    from werkzeug.exceptions import HTTPException  # lazy: Flask (cold start)

    if isinstance(exc, HTTPException) and exc.code is not None and 400 <= exc.code < 500:
        return ApiError(exc.code, "bad_request", exc.description or "the request could not be read")
    return None


def bearer_token(request: flask.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def require_bearer(request: flask.Request, secret_name: str) -> None:
    """Constant-time check of `Authorization: Bearer <key>` against a secret: its latest version, or the
    previous one while a rotation is in progress (shared/core/secrets.py)."""
    from shared.core.secrets import key_accepted  # lazy: adapters import this module at load; secrets with a request

    token = bearer_token(request)
    if token is None or not key_accepted(secret_name, token.encode("utf-8")):
        raise ApiError(401, "unauthorized", "missing or invalid API key")


Route = tuple[str, Callable[["flask.Request"], Any]]


def dispatch_crm(request: flask.Request, routes: Mapping[str, Route], secret_name: str) -> Any:
    """A CRM-facing function's routing: path (404), method (405), then the CRM key (401), then the operation.
    The order matters for the contract: an unknown path answers 404 before any key is read."""
    route = routes.get(request.path.rstrip("/") or "/")
    if route is None:
        raise ApiError(404, "not_found", f"no route {request.path}")
    method, fn = route
    if request.method != method:
        raise ApiError(405, "method_not_allowed", f"{request.path} accepts {method} only", allow=method)
    require_bearer(request, secret_name)
    return fn(request)
