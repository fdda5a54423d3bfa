"""A small corpus of hostile Auto BCC copies (issue 15): what an inbound-mail webhook may hand us.

`corpus(frm, to, bcc)` gives every kind as raw RFC 822 bytes, sent by `frm`
(the user's own address, so each copy gets past the sender check and reaches
the parser and the document budget) to the contact `to`, with the Auto BCC
address in Bcc. `expect` is the answer class auto_bcc must give: "2xx"
(logged, maybe cut) or "4xx" (refused, nothing written); never a 5xx.
Built by hand where the stdlib would refuse to write such a message.

(Branch `rules` is writing tests/hostile_mail.py for the sync's corpus; the
two can become one generator when both land.)
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Literal

Expect = Literal["2xx", "4xx"]


@dataclass(frozen=True)
class HostileCopy:
    kind: str
    raw: bytes
    expect: Expect


def _head(frm: str, to: str, bcc: str, subject: str, extra: str = "", date: str = "Mon, 02 Jun 2025 10:00:00 +0000",
          msgid: str = "") -> bytes:
    lines = [f"From: {frm}", f"To: {to}", f"Bcc: {bcc}", f"Subject: {subject}",
             f"Message-ID: <{msgid or subject.replace(' ', '-')[:40]}@hostile.test>", f"Date: {date}",
             "MIME-Version: 1.0"]
    if extra:
        lines.append(extra)
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def _alternative(frm: str, to: str, bcc: str, subject: str, text: str, html: str) -> bytes:
    b = "ALT-42"
    b64 = "Content-Transfer-Encoding: base64\r\n\r\n"
    parts = [f"--{b}\r\nContent-Type: text/plain; charset=utf-8\r\n{b64}".encode(), base64.encodebytes(text.encode()),
             f"\r\n--{b}\r\nContent-Type: text/html; charset=utf-8\r\n{b64}".encode(),
             base64.encodebytes(html.encode()), f"\r\n--{b}--\r\n".encode()]
    return _head(frm, to, bcc, subject, f'Content-Type: multipart/alternative; boundary="{b}"') + b"\r\n" + b"".join(
        parts)


def _mixed(frm: str, to: str, bcc: str, subject: str, parts: list[bytes], boundary: str = "MIX") -> bytes:
    body = b"".join(f"--{boundary}\r\n".encode() + p + b"\r\n" for p in parts) + f"--{boundary}--\r\n".encode()
    return _head(frm, to, bcc, subject, f'Content-Type: multipart/mixed; boundary="{boundary}"') + b"\r\n" + body


def _attachment(name: str, data: bytes, cte: str = "base64") -> bytes:
    payload = base64.encodebytes(data) if cte == "base64" else data
    return (f'Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename="{name}"\r\n'
            f"Content-Transfer-Encoding: {cte}\r\n\r\n").encode() + payload


KINDS = (
    "huge_cjk_bodies",
    "huge_emoji_bodies",
    "eight_bit_headers",
    "broken_headers",
    "broken_multipart_no_end",
    "multipart_without_boundary",
    "deep_nesting",
    "thousands_of_parts",
    "too_many_attachments",
    "attachments_above_25_mb",
    "unknown_charset",
    "date_year_9999_minus_5",
    "date_year_0",
    "date_garbage",
    "header_only",
    "empty",
    "no_headers",
    "a_thousand_recipients",
    "five_thousand_recipients",
    "nul_and_lone_cr_in_headers",
    "huge_header_line",
    "huge_message_id",
    "sender_not_the_user",
    "lone_surrogate_escape_in_address",
)


def corpus(frm: str, to: str, bcc: str) -> list[HostileCopy]:
    """Every kind of KINDS, in that order."""
    cjk = "漢字かなカナ한국어" * 30_000  # 300,000 characters, ~0.9 MB of UTF-8 each as text and as html
    emoji = "😀🚀👍🏽" * 37_500  # 150,000 four-byte code points
    nested = "".join(f"--n{i}\r\nContent-Type: multipart/mixed; boundary=n{i + 1}\r\n\r\n" for i in range(2_000))
    many_parts = [b"Content-Type: text/plain\r\n\r\npart " + str(i).encode() for i in range(3_000)]
    recipients = ", ".join(f"r{i}@client.example" for i in range(999))
    crowd = ", ".join(f"r{i}@client.example" for i in range(5_000))
    out = [
        HostileCopy("huge_cjk_bodies", _alternative(frm, to, bcc, "Huge CJK", cjk, f"<p>{cjk}</p>"), "2xx"),
        HostileCopy("huge_emoji_bodies", _alternative(frm, to, bcc, "Huge emoji", emoji, emoji), "2xx"),
        HostileCopy("eight_bit_headers",
                    f"From: \xc9milie <{frm}>\r\nTo: {to}\r\nBcc: {bcc}\r\n".encode("latin-1")
                    + b"Subject: caf\xe9 \xff\xfe\r\nX-Raw: \x80\x81\r\nMessage-ID: <8bit@hostile.test>\r\n"
                    b"Content-Type: text/plain\r\n\r\nraw 8-bit body \xe9\xe8\xff\r\n", "2xx"),
        HostileCopy("broken_headers",
                    (f"From: {frm}\r\nTo: {to}, , <>, \"unterminated <x@y\r\nBcc: {bcc}\r\n"
                     "Subject: =?utf-8?B?broken!!?= =?utf-8?Q?ok=C3=A9?=\r\nno colon here\r\n: empty name\r\n"
                     "Message-ID: not-an-id\r\nIn-Reply-To: <<<>>>\r\nReferences: <a@b> junk <c@d\r\n"
                     "Content-Type: text/plain; charset=\r\n\r\nBroken headers.\r\n").encode(), "2xx"),
        HostileCopy("broken_multipart_no_end",
                    _head(frm, to, bcc, "No end", 'Content-Type: multipart/mixed; boundary="B"')
                    + b"\r\n--B\r\nContent-Type: text/plain\r\n\r\nnever closed\r\n--B\r\nContent-Type: text/html",
                    "2xx"),
        HostileCopy("multipart_without_boundary",
                    _head(frm, to, bcc, "No boundary", "Content-Type: multipart/mixed") + b"\r\nplain text?\r\n",
                    "2xx"),
        HostileCopy("deep_nesting", _head(frm, to, bcc, "Deep", "Content-Type: multipart/mixed; boundary=n0")
                    + b"\r\n" + nested.encode() + b"bottom\r\n", "4xx"),  # the stdlib parser recurses per level
        HostileCopy("thousands_of_parts", _mixed(frm, to, bcc, "Parts", many_parts), "2xx"),
        HostileCopy("too_many_attachments",
                    _mixed(frm, to, bcc, "Attachments", [_attachment(f"f{i}.bin", b"x") for i in range(150)]), "4xx"),
        HostileCopy("attachments_above_25_mb",
                    _mixed(frm, to, bcc, "Big", [_attachment("big.bin", b"\0" * (26 * 1024 * 1024), "binary")]), "4xx"),
        HostileCopy("unknown_charset",
                    _head(frm, to, bcc, "=?x-klingon-42?Q?qapla?=", "Content-Type: text/plain; charset=x-klingon-42")
                    + b"\r\n\xde\xad\xbe\xef\r\n", "2xx"),
        HostileCopy("date_year_9999_minus_5", _head(frm, to, bcc, "Y9999", "Content-Type: text/plain",
                                                    date="Fri, 31 Dec 9999 23:59:59 -0500") + b"\r\nx\r\n", "2xx"),
        HostileCopy("date_year_0", _head(frm, to, bcc, "Y0", "Content-Type: text/plain",
                                         date="Sat, 01 Jan 0000 00:00:00 +1400") + b"\r\nx\r\n", "2xx"),
        HostileCopy("date_garbage", _head(frm, to, bcc, "Garbage date", "Content-Type: text/plain",
                                          date="99 Foo 12345678901234567890 99:99:99 +9999") + b"\r\nx\r\n", "2xx"),
        HostileCopy("header_only", _head(frm, to, bcc, "Header only"), "2xx"),
        HostileCopy("empty", b"", "4xx"),
        HostileCopy("no_headers", b"\r\n\r\njust a body\r\n", "4xx"),
        HostileCopy("a_thousand_recipients", _head(frm, f"{to}, {recipients}", bcc, "Many", "Content-Type: text/plain")
                    + b"\r\nhi all\r\n", "2xx"),
        HostileCopy("five_thousand_recipients", _head(frm, f"{to}, {crowd}", bcc, "Crowd", "Content-Type: text/plain")
                    + b"\r\nbulk\r\n", "4xx"),
        HostileCopy("nul_and_lone_cr_in_headers",
                    f"From: {frm}\r\nTo: {to}\r\nBcc: {bcc}\r\nSubject: a\0b\rc\r\nMessage-ID: <nul@hostile.test>\r\n"
                    "\r\nbody\0with nul\r\n".encode(), "2xx"),
        HostileCopy("huge_header_line",
                    _head(frm, to, bcc, "Long", "X-Long: " + "y" * 2_000_000) + b"\r\nx\r\n", "2xx"),
        HostileCopy("huge_message_id", _head(frm, to, bcc, "Long id", msgid="i" * 100_000) + b"\r\nx\r\n", "2xx"),
        HostileCopy("sender_not_the_user", _head("stranger@evil.example", to, bcc, "Spoof") + b"\r\nx\r\n", "4xx"),
        HostileCopy("lone_surrogate_escape_in_address",
                    f"From: {frm}\r\nTo: \xe9\xe9@client.example\r\nBcc: {bcc}\r\nSubject: s\r\n\r\nx\r\n"
                    .encode("latin-1"), "2xx"),
    ]
    assert tuple(c.kind for c in out) == KINDS
    return out
