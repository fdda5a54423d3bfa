"""The subset of Gmail's search syntax (`q`) that messages.list understands here.

Terms are ANDed; a leading `-` negates one. Supported: `after:` / `before:`
(a date `YYYY/MM/DD`, midnight Pacific time as at Gmail, or epoch seconds),
`newer_than:` / `older_than:` (`Nd`, `Nh`, `Nm`, `Ny`), `from:`, `to:` (To, Cc
and Bcc, as Gmail), `cc:`, `bcc:`, `subject:`, `in:` / `label:` (inbox, sent,
trash, spam, anywhere, unread, starred, or a label id), `is:unread|read|starred`,
`rfc822msgid:`, `has:attachment`, and bare words or "quoted phrases" (matched
in subject, addresses and text). Anything else is a 400, never a silent match.
"""

from __future__ import annotations

import datetime as dt
import re
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from simulator.mime import ParsedMessage, message_ids

_PACIFIC = ZoneInfo("America/Los_Angeles")
_SPAN = {"d": 86400, "h": 3600, "m": 30 * 86400, "y": 365 * 86400}


class QueryError(ValueError):
    pass


@dataclass(frozen=True)
class Candidate:
    parsed: ParsedMessage
    label_ids: tuple[str, ...]
    internal_date: int  # ms


Predicate = Callable[[Candidate], bool]


def compile_query(q: str, now: float | None = None) -> tuple[Predicate, bool]:
    """A predicate for `q`, and whether the query itself reaches into spam/trash (`in:anywhere`, `in:trash`)."""
    try:
        tokens = shlex.split(q)
    except ValueError as exc:
        raise QueryError(f"Invalid query: {exc}") from None
    now = time.time() if now is None else now
    preds: list[Predicate] = []
    reaches_bin = False
    for tok in tokens:
        neg = tok.startswith("-") and len(tok) > 1
        if neg:
            tok = tok[1:]
        op, sep, arg = tok.partition(":")
        if sep and op.lower() in ("in", "label") and arg.lower() in ("anywhere", "trash", "spam"):
            reaches_bin = True
        pred = _term(op.lower(), arg, now) if sep and arg else _words(tok)
        preds.append(_negate(pred) if neg else pred)
    return (lambda c: all(p(c) for p in preds)), reaches_bin


def _negate(pred: Predicate) -> Predicate:
    return lambda c: not pred(c)


def _date_ms(arg: str) -> int:
    if arg.isdigit():
        return int(arg) * 1000
    m = re.fullmatch(r"(\d{4})[/-](\d{1,2})[/-](\d{1,2})", arg)
    if not m:
        raise QueryError(f"Invalid date in query: {arg}")
    day = dt.datetime(int(m[1]), int(m[2]), int(m[3]), tzinfo=_PACIFIC)
    return int(day.timestamp() * 1000)


def _label_pred(arg: str) -> Predicate:
    name = arg.upper().replace("-", "_")
    if name == "ANYWHERE":
        return lambda c: True
    if name == "READ":
        return lambda c: "UNREAD" not in c.label_ids
    if name in ("PERSONAL", "SOCIAL", "PROMOTIONS", "UPDATES", "FORUMS"):
        name = "CATEGORY_" + name
    return lambda c: name in c.label_ids or arg in c.label_ids


def _term(op: str, arg: str, now: float) -> Predicate:
    if op == "after":
        ms = _date_ms(arg)
        return lambda c: c.internal_date >= ms
    if op == "before":
        ms = _date_ms(arg)
        return lambda c: c.internal_date < ms
    if op in ("newer_than", "older_than"):
        m = re.fullmatch(r"(\d+)([dhmy])", arg.lower())
        if not m:
            raise QueryError(f"Invalid {op} value: {arg}")
        cut = int((now - int(m[1]) * _SPAN[m[2]]) * 1000)
        return (lambda c: c.internal_date >= cut) if op == "newer_than" else (lambda c: c.internal_date < cut)
    if op in ("from", "to", "cc", "bcc"):
        headers = {"from": ("From",), "to": ("To", "Cc", "Bcc"), "cc": ("Cc",), "bcc": ("Bcc",)}[op]
        needle = arg.lower()
        if needle == "me":
            raise QueryError("'me' in from:/to: is not supported by the simulator; use the address")
        return lambda c: any(needle in a for a in c.parsed.addresses(*headers)) or any(
            needle in v.lower() for h in headers for v in c.parsed.header_all(h)
        )
    if op == "subject":
        needle = arg.lower()
        return lambda c: needle in c.parsed.subject.lower()
    if op in ("in", "label", "is"):
        return _label_pred(arg)
    if op == "rfc822msgid":
        want = arg.strip().strip("<>")
        return lambda c: any(i.strip("<>") == want for i in message_ids(c.parsed.header("Message-ID")))
    if op == "has" and arg.lower() == "attachment":
        return lambda c: bool(c.parsed.attachments)
    raise QueryError(f"Unsupported search operator: {op}:")


def _words(phrase: str) -> Predicate:
    needle = phrase.lower()

    def match(c: Candidate) -> bool:
        p = c.parsed
        hay = " ".join([p.subject, p.text, *(v for n in ("From", "To", "Cc") for v in p.header_all(n))])
        return needle in hay.lower()

    return match
