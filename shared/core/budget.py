"""Byte budgets for Firestore documents (1 MiB each): UTF-8 cuts and a document size estimate.

Firestore counts BYTES: a body of 300,000 CJK characters is about 900 KB of
UTF-8, so a cut by characters does not keep a document under the limit. The
size estimate follows Firestore's published storage-size rules (document
name, field names, values: strings are their UTF-8 length + 1, numbers and
timestamps 8, booleans and nulls 1, arrays and maps the sum of their parts,
32 bytes per document), which is what the 1 MiB limit is measured in.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

FIRESTORE_MAX_DOCUMENT_BYTES = 1_048_576
_DOC_OVERHEAD = 32
_NAME_OVERHEAD = 16
_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(value: str) -> str:
    """`value` with lone surrogates (which UTF-8 cannot encode) replaced by U+FFFD."""
    return _SURROGATE.sub("\ufffd", value)


def utf8_len(value: str) -> int:
    return len(value.encode("utf-8", "surrogatepass"))


def cut_utf8(value: str, max_bytes: int) -> str:
    """The longest prefix of `value` whose UTF-8 encoding fits in `max_bytes`, cut at a character boundary."""
    encoded = value.encode("utf-8", "surrogatepass")
    if len(encoded) <= max_bytes:
        return value
    return encoded[:max(0, max_bytes)].decode("utf-8", "ignore")


def value_size(value: Any) -> int:
    """Storage size of one Firestore value."""
    if value is None or isinstance(value, bool):
        return 1
    if isinstance(value, int | float | datetime | date):
        return 8
    if isinstance(value, str):
        return utf8_len(value) + 1
    if isinstance(value, bytes | bytearray):
        return len(value)
    if isinstance(value, dict):
        return sum(utf8_len(str(k)) + 1 + value_size(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return sum(value_size(v) for v in value)
    return 16  # geo points, references and sentinels: small


def document_size(data: dict[str, Any], path: str = "") -> int:
    """Storage size of a document with these fields at `path` (`coll/doc/coll/doc`), as Firestore counts it."""
    name = sum(utf8_len(part) + 1 for part in path.split("/") if part) + _NAME_OVERHEAD
    return name + value_size(data) + _DOC_OVERHEAD
