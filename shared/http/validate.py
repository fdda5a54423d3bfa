"""Validation of request fields: types, sizes, addresses, header injection.

Every check raises a 400 `invalid_request` naming the field, so the caller
learns exactly what to fix; nothing is written before validation passes.
"""

from __future__ import annotations

import re
from typing import Any

from shared.http.answers import ApiError

# Pragmatic addr-spec: what Gmail accepts for a recipient, without comments or quoted local parts.
_ADDRESS = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                      r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
_HEADER_UNSAFE = re.compile(r"[\r\n\x00]")
_ID = re.compile(r"^[A-Za-z0-9_.:@-]{1,200}$")


def invalid(field: str, message: str) -> ApiError:
    return ApiError(400, "invalid_request", f"{field}: {message}", field=field)


def require_str(body: dict[str, Any], field: str, *, max_len: int = 10_000, header: bool = False) -> str:
    value = body.get(field)
    if value is None:
        raise invalid(field, "is required")
    return _check_str(field, value, max_len=max_len, header=header)


def optional_str(body: dict[str, Any], field: str, *, max_len: int = 10_000, header: bool = False) -> str | None:
    value = body.get(field)
    if value is None:
        return None
    return _check_str(field, value, max_len=max_len, header=header)


def _check_str(field: str, value: Any, *, max_len: int, header: bool) -> str:
    if not isinstance(value, str):
        raise invalid(field, "must be a string")
    if len(value) > max_len:
        raise invalid(field, f"must be at most {max_len} characters")
    if header and _HEADER_UNSAFE.search(value):
        raise ApiError(400, "header_injection", f"{field}: CR, LF and NUL are not allowed in a header value",
                       field=field)
    return value


def require_id(body: dict[str, Any], field: str) -> str:
    value = require_str(body, field, max_len=200)
    if not _ID.match(value):
        raise invalid(field, "must be 1-200 characters of letters, digits and _.:@-")
    return value


def is_address(value: str) -> bool:
    return bool(_ADDRESS.match(value)) and len(value) <= 254


def require_address(field: str, value: Any) -> str:
    if not isinstance(value, str):
        raise invalid(field, "must be a string")
    if _HEADER_UNSAFE.search(value):
        raise ApiError(400, "header_injection", f"{field}: CR, LF and NUL are not allowed in a header value",
                       field=field)
    if not is_address(value.strip()):
        raise invalid(field, f"{value!r} is not a valid email address")
    return value.strip()


def optional_address_list(body: dict[str, Any], field: str, *, max_items: int = 50) -> list[str]:
    value = body.get(field)
    if value is None:
        return []
    if not isinstance(value, list):
        raise invalid(field, "must be a list of email addresses")
    if len(value) > max_items:
        raise invalid(field, f"must have at most {max_items} addresses")
    return [require_address(f"{field}[{i}]", v) for i, v in enumerate(value)]
