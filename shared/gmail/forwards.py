"""R29: is a message a forward? Read from its headers and its subject prefix, never from its body.

Why not the body: a reply routinely quotes a forwarded block ("---------- Forwarded
message ---------", Outlook's "-----Original Message-----"), so reading the body
calls replies forwards. What a mail client does write when the rep forwards:

- the subject prefix, in the client's language (Outlook, Gmail, Apple Mail,
  Thunderbird localise it): the **first** prefix decides, so `AW: WG: Angebot`
  is a reply (to a forward) and `WG: AW: Angebot` a forward of a reply;
- Thunderbird's `X-Forwarded-Message-Id`, and RFC 5322's `Resent-*` fields of a
  redirected ("bounced") message;
- a forward "as attachment" carries the original as a `message/rfc822` part
  (the MIME structure, not quoted text): a forward unless the subject says reply.

Prefixes may carry a counter (`Fwd[2]:`, `RE(3):`), a space before the colon
(French `TR :`) or a full-width colon (U+FF1A, Chinese `转发`); leading `[tags]` (`[EXTERNAL]`)
are skipped; the old `[Fwd: subject]` form counts. `VS:` is a forward (Danish,
Norwegian `videresend`) although Finnish Outlook writes it for a reply: the spec
chose, and docs/SYNC_RULES.md says so.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Literal

# Forward prefixes, case-folded: English and the common clients' languages.
FORWARD_PREFIXES = frozenset({
    "fwd", "fw", "fwrd",  # English (Gmail, Outlook, Apple Mail, Thunderbird)
    "wg",  # German: Weitergeleitet
    "tr",  # French: Transféré
    "rv",  # Spanish: Reenviado
    "enc",  # Portuguese: Encaminhado
    "i",  # Italian: Inoltrato
    "vs",  # Danish, Norwegian: Videresendt
    "vb",  # Swedish: Vidarebefordrat
    "vl",  # Finnish: Välitetty
    "doorst",  # Dutch: Doorgestuurd
    "pd",  # Polish: Przekaż dalej
    "př",  # Czech: Přeposlat
    "továbbítás",  # Hungarian
    "i̇lt", "ilt",  # Turkish: İlet
    "trs",  # Indonesian: Terusan
    "yml",  # Welsh: Ymlaen
    "fs",  # Icelandic: Framsent
    "προώθηση", "πρθ",  # Greek
    "пересл", "пересылка",  # Russian
    "הועבר",  # Hebrew
    "转发", "轉寄", "轉發",  # Chinese
    "転送",  # Japanese
    "전달",  # Korean
})

# Reply prefixes, case-folded: when one of these comes first, the message is a reply.
REPLY_PREFIXES = frozenset({
    "re", "aw", "sv", "antw", "odp", "res", "r", "rif", "ref", "réf", "ynt", "vá", "atb", "bls", "svar",
    "απ", "σχετ", "отв", "ответ", "השב", "回复", "回覆", "答复", "返信", "답장", "odg", "atsk",
})

_PREFIX = re.compile(r"\s*([^\s:\uff1a\[\]()]{1,12}?)\s*(?:\[\d+\]|\(\d+\)|\^\d+)?\s*[:\uff1a]")
_TAG = re.compile(r"\s*\[[^\]]{0,80}\]")
_BRACKETED_FORWARD = re.compile(r"\s*\[\s*(fwd?|fw)\s*:", re.IGNORECASE)
FORWARD_HEADERS = ("x-forwarded-message-id", "resent-from", "resent-message-id")

Kind = Literal["forward", "reply"]


def leading_prefix(subject: str) -> Kind | None:
    """What the subject's first prefix says: `forward`, `reply`, or None (no prefix we know)."""
    s = subject or ""
    if _BRACKETED_FORWARD.match(s):
        return "forward"
    for _ in range(5):  # `[EXTERNAL] [Ticket 12] FW: …`: skip a few tags, no more
        tag = _TAG.match(s)
        if tag is None:
            break
        s = s[tag.end():]
    m = _PREFIX.match(s)
    if m is None:
        return None
    word = m.group(1).casefold()
    if word in FORWARD_PREFIXES:
        return "forward"
    if word in REPLY_PREFIXES:
        return "reply"
    return None


def is_forward_subject(subject: str) -> bool:
    """The subject's first prefix is a forward prefix (any language we know)."""
    return leading_prefix(subject) == "forward"


def is_forward(subject: str, headers: Mapping[str, str], has_attached_message: bool) -> bool:
    """R29: a forward by its subject prefix, a forwarding header, or an attached message under a subject
    that does not say reply. `headers`: lower-cased names. The body is never read."""
    kind = leading_prefix(subject)
    if kind == "forward":
        return True
    if any(headers.get(h) for h in FORWARD_HEADERS):
        return True
    return has_attached_message and kind != "reply"
