"""A corpus of hostile mail: what real mailboxes receive from broken, careless or malicious senders.

Used by the sync's corpus test (tests/e2e/test_sync_hostile.py, R22) and by
Auto BCC's (the same bytes posted as copies): every message here must be
stored, stored cut (`truncated`), or recorded as skipped with a reason, and
must never stop the mail after it. Each entry is raw RFC 822 bytes, built by
hand where the stdlib would refuse to write such a thing, with the outcome
the sync must reach.

`corpus(frm, to)` makes every kind with the given sender and recipient (the
sender must be a contact, or the user's own address for Auto BCC);
`KINDS` lists the kinds in order.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Literal

Outcome = Literal["stored", "truncated", "skipped"]
YEAR_9999_MS = 253_402_300_799_000  # 9999-12-31T23:59:59Z: an internalDate a Date header can carry (import)
EPOCH_MS = 1  # 1970-01-01: what a broken Date header becomes on import


@dataclass(frozen=True)
class HostileMail:
    kind: str
    raw: bytes
    expect: Outcome  # what the sync must make of it
    internal_date_ms: int | None = None  # deliver with this internalDate (imported mail), else arrival time
    note: str = ""


def _head(frm: str, to: str, subject: str, extra: str = "", msgid: str = "") -> bytes:
    lines = [f"From: {frm}", f"To: {to}", f"Subject: {subject}",
             f"Message-ID: <{msgid or subject.replace(' ', '-')[:40]}@hostile.test>",
             "Date: Mon, 02 Jun 2025 10:00:00 +0000", "MIME-Version: 1.0"]
    if extra:
        lines.append(extra)
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def _alternative(frm: str, to: str, subject: str, text: str, html: str, msgid: str) -> bytes:
    b = "ALT-boundary-42"
    head = _head(frm, to, subject, f'Content-Type: multipart/alternative; boundary="{b}"', msgid)
    parts = [
        f"--{b}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n".encode(),
        base64.encodebytes(text.encode("utf-8")).replace(b"\n", b"\r\n"),
        f"\r\n--{b}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n".encode(),
        base64.encodebytes(html.encode("utf-8")).replace(b"\n", b"\r\n"),
        f"\r\n--{b}--\r\n".encode(),
    ]
    return head + b"\r\n" + b"".join(parts)


def _huge_cjk(frm: str, to: str) -> HostileMail:
    cjk = "漢字かなカナ한국어" * 30_000  # 300,000 characters, ~0.9 MB of UTF-8 each as text and as html
    return HostileMail("huge_cjk_bodies", _alternative(frm, to, "Huge CJK", cjk, f"<p>{cjk}</p>", "cjk"),
                       "truncated", note="300,000 CJK characters as text and html (~1.8 MB UTF-8)")


def _huge_emoji(frm: str, to: str) -> HostileMail:
    emoji = "😀🚀👍🏽" * 37_500  # 150,000 code points, 4 bytes each (the skin tone too)
    return HostileMail("huge_emoji_bodies", _alternative(frm, to, "Huge emoji", emoji, emoji, "emoji"), "truncated",
                       note="150,000 four-byte characters as text and html (~1.2 MB)")


def _eight_bit_headers(frm: str, to: str) -> HostileMail:
    head = (f"From: \xc9milie <{frm}>\r\nTo: {to}\r\n").encode("latin-1")
    head += "Subject: Café ünïcödé ☕ raw\r\n".encode() + b"X-Latin1: caf\xe9\r\nMessage-ID: <8bit@hostile.test>\r\n"
    head += b"Content-Type: text/plain\r\n\r\nBody with raw 8-bit: \xe9\xe8\xff\xfe and utf-8 \xc3\xa9\r\n"
    return HostileMail("eight_bit_headers", head, "stored", note="unencoded latin-1 and utf-8 bytes in headers")


def _broken_headers(frm: str, to: str) -> HostileMail:
    raw = (f"From: {frm}\r\nTo: {to}, , <>, \"unterminated <x@y\r\nSubject: =?utf-8?B?broken!!base64?= "
           "=?utf-8?Q?ok=C3=A9?=\r\nThis line has no colon\r\n: empty name\r\nX-Folded:\r\n \r\n\tcontinued\r\n"
           "Message-ID: not-an-id\r\nIn-Reply-To: <<<>>>\r\nReferences: <a@b> garbage <c@d\r\n"
           "Content-Type: text/plain; charset=\r\n\r\nBroken headers.\r\n").encode()
    return HostileMail("broken_headers", raw, "stored", note="no-colon lines, bad encoded words, bad ids")


def _broken_multipart(frm: str, to: str) -> HostileMail:
    head = _head(frm, to, "Broken multipart", 'Content-Type: multipart/mixed; boundary="never-closed"', "brokenmp")
    body = (b"preamble\r\n--never-closed\r\nContent-Type: text/plain\r\n\r\nfirst part\r\n"
            b"--wrong-boundary\r\nContent-Type: text/html\r\n\r\n<p>half\r\n--never-closed\r\n"
            b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n@@not base64@@")
    return HostileMail("broken_multipart", head + b"\r\n" + body, "stored", note="unclosed boundary, bad base64")


def _no_boundary(frm: str, to: str) -> HostileMail:
    head = _head(frm, to, "Multipart without boundary", "Content-Type: multipart/mixed", "nobound")
    return HostileMail("multipart_without_boundary", head + b"\r\nJust text.\r\n", "stored")


def _deep_nesting(frm: str, to: str, depth: int = 60) -> HostileMail:
    body = b"Content-Type: text/plain\r\n\r\ndeep inside\r\n"
    for i in range(depth):
        b = f"n{i}".encode()
        body = (b"Content-Type: multipart/mixed; boundary=\"" + b + b"\"\r\n\r\n--" + b + b"\r\n" + body
                + b"\r\n--" + b + b"--\r\n")
    return HostileMail("deeply_nested_multipart", _head(frm, to, "Deep", msgid="deep") + body, "stored",
                       note=f"{depth} levels of multipart/mixed")


def _many_parts(frm: str, to: str, count: int = 2000) -> HostileMail:
    b = "many"
    parts = [f'--{b}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nintro\r\n'.encode()]
    for i in range(count):
        parts.append(f'--{b}\r\nContent-Type: application/octet-stream\r\n'
                     f'Content-Disposition: attachment; filename="f{i}.bin"\r\n\r\n{i}\r\n'.encode())
    parts.append(f"--{b}--\r\n".encode())
    head = _head(frm, to, "Many parts", f'Content-Type: multipart/mixed; boundary="{b}"', "manyparts")
    return HostileMail("thousands_of_parts", head + b"\r\n" + b"".join(parts), "stored",
                       note=f"{count} attachment parts")


def _too_many_named_parts(frm: str, to: str, count: int = 4000) -> HostileMail:
    b = "named"
    name = "Quarterly-report-final-v2-really-final-" * 6  # ~240 characters per file name
    parts = [f'--{b}\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n'.encode()]
    for i in range(count):
        parts.append(f'--{b}\r\nContent-Type: application/pdf\r\n'
                     f'Content-Disposition: attachment; filename="{name}{i}.pdf"\r\n\r\n%PDF\r\n'.encode())
    parts.append(f"--{b}--\r\n".encode())
    head = _head(frm, to, "Too many attachments", f'Content-Type: multipart/mixed; boundary="{b}"', "toomany")
    return HostileMail("attachment_list_beyond_1_mib", head + b"\r\n" + b"".join(parts), "skipped",
                       note=f"{count} attachments with long names: the metadata alone exceeds 1 MiB")


def _unknown_charset(frm: str, to: str) -> HostileMail:
    head = (f"From: {frm}\r\nTo: {to}\r\nSubject: =?x-klingon-42?Q?qapla=E9?= and =?utf-8?Q?fine?=\r\n"
            "Message-ID: <charset@hostile.test>\r\nContent-Type: text/plain; charset=\"x-klingon-42\"\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\n").encode()
    return HostileMail("unknown_charsets", head + b"nuqneH \xe9\xff\xfe\r\n", "stored")


def _lying_charset(frm: str, to: str) -> HostileMail:
    head = _head(frm, to, "UTF-16 that is not", 'Content-Type: text/plain; charset="utf-16"', "utf16")
    return HostileMail("mislabelled_charset", head + b"\r\nplain ascii, odd length!\r\n", "stored")


def _absurd_date_headers(frm: str, to: str) -> HostileMail:
    raw = _head(frm, to, "Absurd Date header", msgid="date9999").replace(
        b"Date: Mon, 02 Jun 2025 10:00:00 +0000", b"Date: Fri, 31 Dec 9999 23:59:59 -0500")
    return HostileMail("absurd_date_header", raw + b"Content-Type: text/plain\r\n\r\nFrom the future.\r\n", "stored")


def _garbage_date(frm: str, to: str) -> HostileMail:
    raw = _head(frm, to, "Garbage Date", msgid="dategarbage").replace(
        b"Date: Mon, 02 Jun 2025 10:00:00 +0000", b"Date: the day after tomorrow, 99:99")
    return HostileMail("garbage_date_header", raw + b"Content-Type: text/plain\r\n\r\nWhen?\r\n", "stored")


def _imported_far_future(frm: str, to: str) -> HostileMail:
    raw = _head(frm, to, "Imported from year 9999", msgid="import9999") + b"Content-Type: text/plain\r\n\r\nx\r\n"
    return HostileMail("internal_date_year_9999", raw, "stored", internal_date_ms=YEAR_9999_MS,
                       note="internalDate taken from a Date header on import")


def _imported_far_past(frm: str, to: str) -> HostileMail:
    raw = _head(frm, to, "Imported from 1970", msgid="import1970") + b"Content-Type: text/plain\r\n\r\nx\r\n"
    return HostileMail("internal_date_epoch", raw, "stored", internal_date_ms=EPOCH_MS)


def _header_only(frm: str, to: str) -> HostileMail:
    return HostileMail("header_only", f"From: {frm}\r\nTo: {to}\r\nSubject: No body at all".encode(), "stored")


def _empty_body(frm: str, to: str) -> HostileMail:
    return HostileMail("empty_body", f"From: {frm}\r\nTo: {to}\r\n\r\n".encode(), "stored",
                       note="no subject, no body")


def _thousand_recipients(frm: str, to: str) -> HostileMail:
    many = ", ".join(f"Person {i} <person{i}@many.test>" for i in range(1000))
    raw = _head(frm, f"{to}, {many}", "To a thousand people", msgid="thousand")
    return HostileMail("a_thousand_recipients", raw + b"Content-Type: text/plain\r\n\r\nHi all.\r\n", "stored")


def _control_characters(frm: str, to: str) -> HostileMail:
    raw = _head(frm, to, "Control \x0b\x0c\x1b characters", msgid="ctrl")
    body = (b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
            b"NUL\x00 bell\x07 CR\ronly LF\nonly \xed\xa0\x80 (a surrogate)\r\n")
    return HostileMail("control_characters_and_bad_utf8", raw + body, "stored")


def _huge_header(frm: str, to: str) -> HostileMail:
    subject = "Very long subject " * 10_000  # 180 KB subject, folded nowhere
    raw = _head(frm, to, subject, msgid="hugehdr") + b"Content-Type: text/plain\r\n\r\nshort\r\n"
    return HostileMail("huge_header", raw, "stored", note="a 180 KB Subject line")


BUILDERS = (_huge_cjk, _huge_emoji, _eight_bit_headers, _broken_headers, _broken_multipart, _no_boundary,
            _deep_nesting, _many_parts, _too_many_named_parts, _unknown_charset, _lying_charset,
            _absurd_date_headers, _garbage_date, _imported_far_future, _imported_far_past, _header_only,
            _empty_body, _thousand_recipients, _control_characters, _huge_header)


def corpus(frm: str, to: str) -> list[HostileMail]:
    """Every kind of hostile mail, from `frm` to `to` (in KINDS order)."""
    return [build(frm, to) for build in BUILDERS]


KINDS = tuple(m.kind for m in corpus("a@b.test", "c@d.test"))
