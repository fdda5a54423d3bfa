"""R22: a message document that fits Firestore's 1 MiB, or a clear reason why none can.

Only the bodies are cut, at a UTF-8 character boundary, with `truncated:
true` (the whole mail stays in Gmail). Everything else of the document
(recipients, attachment metadata, headers) is the record of the message and
is never silently shortened: when it alone exceeds the budget the message is
skipped with reason `too_large` and counted on the mailbox (shared/crm/skipped.py),
so the pass moves on instead of failing forever. Strings are cleaned of lone
surrogates, which UTF-8 and so Firestore cannot hold.

The budget leaves a margin under 1 MiB for fields added at write time
(`createdAt`) and for the estimate's own error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.core.budget import FIRESTORE_MAX_DOCUMENT_BYTES, clean_text, cut_utf8, document_size, utf8_len

MESSAGE_BUDGET = FIRESTORE_MAX_DOCUMENT_BYTES - 16 * 1024
BODIES = ("text", "html")


@dataclass(frozen=True)
class Fitted:
    doc: dict[str, Any] | None  # None: nothing fits (see `reason`)
    truncated: bool = False
    reason: str | None = None


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(str(k)): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def fit_message(doc: dict[str, Any], path: str, budget: int = MESSAGE_BUDGET) -> Fitted:
    """`doc` as it can be stored at `path`: whole, with its bodies cut (`truncated`), or None (`too_large`)."""
    out: dict[str, Any] = _clean(doc)
    if document_size(path, out) <= budget:
        return Fitted(out)
    bodies = {k: out[k] if isinstance(out.get(k), str) else None for k in BODIES}
    bare = {**out, **dict.fromkeys(BODIES, "")}
    room = budget - document_size(path, bare)
    if room < 0:
        return Fitted(None, reason="too_large")
    text, html = bodies["text"] or "", bodies["html"] or ""
    # Text first (it is what the CRM shows and searches); html gets what is left, and at least half when both
    # are long, so a cut message still renders.
    text_room = min(utf8_len(text), max(room // 2, room - utf8_len(html)))
    html_room = room - text_room
    for key, value, limit in (("text", text, text_room), ("html", html, html_room)):
        if bodies[key] is not None:
            out[key] = cut_utf8(value, limit)
    out["truncated"] = True
    over = document_size(path, out) - budget
    if over > 0:  # estimate rounding: shave the larger body
        key = "html" if utf8_len(out.get("html") or "") >= utf8_len(out.get("text") or "") else "text"
        out[key] = cut_utf8(out[key] or "", utf8_len(out[key] or "") - over)
    return Fitted(out, truncated=True)
