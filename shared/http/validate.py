"""Validation of request fields: types, sizes, ids, addresses, header injection.

Every check raises a 400 naming the field, so the caller learns exactly what
to fix; nothing is written before validation passes. The rules are the ones of
the systems the values end up in, so that what passes here cannot fail there:

- ids follow Firestore's rules for document ids (they become path segments);
- header values refuse exactly what Python's `email` package (policy=default)
  refuses to put in a header, plus NUL (RFC 5322 forbids it);
- no string may hold a lone surrogate: it is not Unicode, so it cannot be
  encoded as UTF-8 for Firestore, Gmail or a log line.
"""

from __future__ import annotations

import re
from typing import Any

from shared.http.answers import ApiError, has_lone_surrogate, invalid

# Pragmatic addr-spec: what Gmail accepts for a recipient, without comments or quoted local parts.
_ADDRESS = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                      r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")

# email.policy.EmailPolicy.header_store_parse refuses a value that str.splitlines() splits in two, and
# these are exactly the characters splitlines() treats as line ends (tests/unit/test_validate.py derives
# the set from Python itself). A value *ending* in one slips through that check and breaks the header, so
# they are refused anywhere in the value.
HEADER_LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_HEADER_UNSAFE = re.compile("[" + re.escape(HEADER_LINE_BREAKS) + "\x00]")

# Firestore's document id rules (firebase.google.com/docs/firestore/quotas#collections_documents_and_fields):
# valid UTF-8, at most 1,500 bytes, no "/", not "." or "..", not matching __.*__ (reserved).
MAX_ID_BYTES = 1500
_RESERVED_ID = re.compile(r"__.*__", re.DOTALL)


def header_injection(field: str) -> ApiError:
    return ApiError(400, "header_injection",
                    f"{field}: line breaks (CR, LF, VT, FF, FS, GS, RS, NEL, U+2028, U+2029) and NUL are not "
                    "allowed in a header value", field=field)


def is_header_safe(value: str) -> bool:
    return _HEADER_UNSAFE.search(value) is None


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
    if has_lone_surrogate(value):
        raise invalid(field, "contains a lone surrogate (not valid Unicode)")
    if header and not is_header_safe(value):
        raise header_injection(field)
    return value


def check_id(field: str, value: Any) -> str:
    """A Firestore document id the CRM chose (or the sync wrote), refused exactly where Firestore would."""
    if not isinstance(value, str):
        raise invalid(field, "must be a string")
    if not value:
        raise invalid(field, "must not be empty")
    if has_lone_surrogate(value):
        raise invalid(field, "contains a lone surrogate (not valid Unicode)")
    if len(value.encode("utf-8")) > MAX_ID_BYTES:
        raise invalid(field, f"must be at most {MAX_ID_BYTES} bytes of UTF-8")
    if "/" in value:
        raise invalid(field, "must not contain '/'")
    if value in (".", ".."):
        raise invalid(field, "must not be '.' or '..'")
    if _RESERVED_ID.fullmatch(value):
        raise invalid(field, "must not start and end with '__' (reserved by Firestore)")
    return value


def require_id(body: dict[str, Any], field: str) -> str:
    value = body.get(field)
    if value is None:
        raise invalid(field, "is required")
    return check_id(field, value)


def optional_id(body: dict[str, Any], field: str) -> str | None:
    value = body.get(field)
    return None if value is None else check_id(field, value)


def is_address(value: str) -> bool:
    return len(value) <= 254 and _ADDRESS.fullmatch(value) is not None  # fullmatch: "$" admits a final "\n"


def require_address(field: str, value: Any) -> str:
    if not isinstance(value, str):
        raise invalid(field, "must be a string")
    if has_lone_surrogate(value):
        raise invalid(field, "contains a lone surrogate (not valid Unicode)")
    if not is_header_safe(value):
        raise header_injection(field)
    if not is_address(value.strip()):
        raise invalid(field, f"{value[:100]!r} is not a valid email address")
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
