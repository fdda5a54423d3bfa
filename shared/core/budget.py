"""Byte budgets: what fits in one Firestore document (R22, R23).

Firestore refuses a document larger than 1 MiB ("maximum entity size"), and it
counts bytes, not characters: 300,000 CJK characters are ~900 KB of UTF-8,
150,000 emoji ~600 KB. A body cut by characters therefore still fails the
write, and for the sync that blocks the mailbox's cursor (issue 15).

This module is the one place that knows how Firestore counts a document
(https://cloud.google.com/firestore/docs/storage-size) and how to cut text at
a UTF-8 character boundary so that a document fits. The sync and the send path
both use it; neither needs to know the arithmetic.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Mapping, Sequence
from typing import Any

MAX_DOCUMENT_BYTES = 1_048_576  # Firestore's limit per document (name + fields + 32)
FIRESTORE_MAX_DOCUMENT_BYTES = MAX_DOCUMENT_BYTES  # the name the sync's fitting (shared/crm/fit.py) uses
# What a writer aims for: the limit less a small margin for fields a writer adds after estimating (a flag,
# a timestamp). The Firestore emulator counts exactly like document_size (tests/e2e/test_budget_firestore.py:
# an estimate of 1,048,576 is accepted, one byte more is refused).
DEFAULT_TARGET_BYTES = MAX_DOCUMENT_BYTES - 4096

_DOCUMENT_OVERHEAD = 32
_NAME_OVERHEAD = 16


_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(value: str) -> str:
    """`value` with lone surrogates (which UTF-8 cannot encode, so neither can Firestore) replaced by U+FFFD."""
    return _SURROGATE.sub("\ufffd", value)


def utf8_len(s: str) -> int:
    """Bytes of `s` in UTF-8 (lone surrogates counted as 3 bytes, as `surrogatepass` encodes them)."""
    return len(s.encode("utf-8", "surrogatepass"))


def cut_utf8(s: str, max_bytes: int) -> str:
    """The longest prefix of `s` whose UTF-8 encoding has at most `max_bytes` bytes.

    Never splits a character: a multi-byte sequence that does not fit whole is dropped whole.
    """
    if max_bytes <= 0:
        return ""
    if len(s) * 4 <= max_bytes:  # every code point is at most 4 bytes: no need to encode
        return s
    data = s.encode("utf-8", "surrogatepass")
    if len(data) <= max_bytes:
        return s
    end = max_bytes
    while end > 0 and (data[end] & 0xC0) == 0x80:  # data[end] continues a character that starts before it
        end -= 1
    return data[:end].decode("utf-8", "surrogatepass")


def string_size(s: str) -> int:
    """Firestore: a string is its UTF-8 bytes plus one."""
    return utf8_len(s) + 1


def name_size(path: str) -> int:
    """Firestore: a document name is each collection and document id (string size) plus 16."""
    return sum(string_size(part) for part in path.strip("/").split("/") if part) + _NAME_OVERHEAD


def value_size(value: Any) -> int:
    """Firestore's storage size of one field value."""
    if value is None or isinstance(value, bool):
        return 1
    if isinstance(value, int | float | _dt.datetime | _dt.date):
        return 8
    if isinstance(value, str):
        return string_size(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return len(value)
    if isinstance(value, Mapping):
        return sum(string_size(str(k)) + value_size(v) for k, v in value.items())
    if isinstance(value, Sequence):
        return sum(value_size(v) for v in value)
    path = getattr(value, "path", None)  # a DocumentReference
    if isinstance(path, str):
        return name_size(path)
    if hasattr(value, "latitude") and hasattr(value, "longitude"):  # a GeoPoint
        return 16
    return 8  # sentinels (SERVER_TIMESTAMP) become timestamps


def document_size(path: str, data: Mapping[str, Any]) -> int:
    """Firestore's storage size of the document at `path` with these fields."""
    return name_size(path) + value_size(data) + _DOCUMENT_OVERHEAD


def fit_strings(path: str, data: Mapping[str, Any], cuttable: Sequence[str],
                target: int = DEFAULT_TARGET_BYTES) -> tuple[dict[str, Any], bool]:
    """`data` with the string fields named in `cuttable` cut so the document fits in `target` bytes.

    Returns (document, truncated). The fields share the room fairly: a field smaller than its share
    keeps all of it, and what it leaves goes to the others (so a short text next to a huge html stays
    whole). A field that must go entirely becomes "" (still a string, so readers need no new case).
    If the other fields alone do not fit, every cuttable field is emptied and truncated is True; the
    caller decides whether such a document can still be written (document_size tells it).
    """
    doc = dict(data)
    if document_size(path, doc) <= target:
        return doc, False
    names = [n for n in cuttable if isinstance(doc.get(n), str)]
    sizes = {n: utf8_len(doc[n]) for n in names}
    fixed = document_size(path, {**doc, **{n: "" for n in names}})
    room = max(0, target - fixed)
    shares: dict[str, int] = {}
    pending = sorted(names, key=lambda n: sizes[n])
    while pending:
        share = room // len(pending)
        n = pending.pop(0)
        shares[n] = min(sizes[n], share)
        room -= shares[n]
    for n in names:
        if shares[n] < sizes[n]:
            doc[n] = cut_utf8(doc[n], shares[n])
    return doc, True
