"""Hostile inputs the OpenAPI document cannot describe, as Hypothesis strategies.

JSON Schema generation (schemathesis) produces values of the right and the
wrong types; what broke the functions before issue 15 lies between: ids that
are strings but not Firestore ids, strings that are not Unicode (lone
surrogates), characters Python's `email` treats as line breaks, bodies that
are JSON but nest 100,000 deep, and mail that is RFC 822 only in name.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import strategies as st

from shared.http.validate import HEADER_LINE_BREAKS

# Values that each broke (or would break) something below validation.
HOSTILE_STRINGS: tuple[str, ...] = (
    "", " ", ".", "..", "__x__", "____", "a/b", "/", "../x", "acme/../globex",
    "\ud800", "a\udc00b", "\udfff\ud800",
    *(f"a{c}b" for c in HEADER_LINE_BREAKS), "a\x00b", "Re: x\n", "x\r\nBcc: victim@evil.test",
    "x" * 1501, "é" * 751, "😀" * 400, "x" * 20_000,
    "=?utf-8?b?/w==?=", "=?unknown-8bit?q?=FF?=", "\ufeff", "\u202e", "\x7f", "\t",
    "NaN", "null", "0", "-1", "1e400", "<script>", "' OR 1=1 --", "%00", "%2F", "\\", "gm_", "ab_",
)


# Hypothesis' characters() leaves out surrogates (category Cs); a JSON body can still carry them.
_ANY_CHARACTER = st.one_of(st.characters(), st.integers(0xD800, 0xDFFF).map(chr), st.sampled_from(HEADER_LINE_BREAKS))


def hostile_strings(extra: tuple[str, ...] = ()) -> st.SearchStrategy[str]:
    """A known-hostile value, a world value, or random text including surrogates and control characters."""
    return st.one_of(
        st.sampled_from(HOSTILE_STRINGS + extra),
        st.text(_ANY_CHARACTER, max_size=40),
        st.builds(lambda a, c, b: a + c + b, st.text(max_size=8), st.sampled_from([*HEADER_LINE_BREAKS, "\x00"]),
                  st.text(max_size=8)),
    )


def mutate_json(body: Any, data: st.DataObject, extra: tuple[str, ...]) -> Any:
    """Replace one string/leaf somewhere in a JSON body by a hostile value (or add a hostile field)."""
    if not isinstance(body, dict):
        return body
    paths: list[tuple[Any, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for k in list(node):
                paths.append((node, k))
                walk(node[k])
        elif isinstance(node, list):
            for i in range(len(node)):
                paths.append((node, i))
                walk(node[i])

    walk(body)
    if not paths or data.draw(st.integers(0, 9), label="add field") == 0:
        key = data.draw(st.sampled_from(["accountId", "userId", "contactId", "subject", "text", "html",
                                         "replyToMessageId", "idempotencyKey", "returnUrl", "cc", "to",
                                         "attachments", "x"]), label="field")
        body[key] = data.draw(hostile_values(extra), label="value")
        return body
    parent, key = data.draw(st.sampled_from(paths), label="where")
    parent[key] = data.draw(hostile_values(extra), label="value")
    return body


# Bodies that fit every request limit but not, together, one Firestore document (1 MiB): 150,000 emoji
# are 600 kB of UTF-8 each (issue 15, finding 2).
HUGE_TEXTS = ("😀" * 150_000, "日本語" * 100_000, "x" * 900_000)


def huge_bodies(body: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
    body["text"] = data.draw(st.sampled_from(HUGE_TEXTS), label="huge text")
    if data.draw(st.booleans(), label="huge html too"):
        body["html"] = "<p>" + data.draw(st.sampled_from(HUGE_TEXTS), label="huge html") + "</p>"
    return body


def hostile_values(extra: tuple[str, ...]) -> st.SearchStrategy[Any]:
    strings = hostile_strings(extra)
    return st.one_of(
        strings,
        st.lists(strings, max_size=3),
        st.sampled_from([None, True, 0, -1, 2**70, 1.5, [], {}, [[[]]], {"a": {"b": {}}}]),
        st.builds(lambda s: [{"filename": s, "mimeType": s, "contentBase64": base64.b64encode(b"x").decode()}],
                  strings),
        st.builds(lambda n: ["a@x.example"] * n, st.sampled_from([51, 1000])),
    )


# --------------------------------------------------------------------------- raw bodies (not from a dict)

def deep(depth: int, kind: str) -> bytes:
    if kind == "array":
        return b"[" * depth + b"]" * depth
    if kind == "object":
        return b'{"a":' * depth + b"1" + b"}" * depth
    return b'{"accountId": "acme", "subject": ' + b"[" * depth + b"]" * depth + b"}"


def raw_json_bodies(example: dict[str, Any]) -> st.SearchStrategy[tuple[str, bytes]]:
    """(Content-Type, body) pairs that are not what a JSON encoder would produce."""
    good = json.dumps(example).encode()
    fixed: list[tuple[str, bytes]] = [
        ("application/json", deep(100_000, "array")),
        ("application/json", deep(100_000, "object")),
        ("application/json", deep(50_000, "inner")),
        ("application/json", deep(33, "object")),
        ("application/json", b'{"a": NaN}'),
        ("application/json", b'{"accountId": Infinity}'),
        ("application/json", b'{"subject": "\\ud800"}'),
        ("application/json", good[:-1] + b', "subject": "\xed\xa0\x80"}'),  # CESU-8 surrogate bytes
        ("application/json", good[:-1] + b', "subject": "\xff\xfe"}'),  # not UTF-8
        ("application/json", b"\xef\xbb\xbf" + good),  # UTF-8 BOM
        ("application/json", good.decode().encode("utf-16")),
        ("application/json", good.decode().encode("utf-32")),
        ("application/json", b'{"accountId": ' + b"9" * 5000 + b"}"),
        ("application/json", b"[]"), ("application/json", b'"x"'), ("application/json", b"null"),
        ("application/json", b""), ("application/json", b"{"), ("application/json", good + b"x"),
        ("application/json", b'{"accountId": "acme", "accountId": 7}'),
        ("application/json; charset=latin-1", good),
        ("text/plain", good), ("application/x-www-form-urlencoded", b"accountId=acme&userId=alice"),
        ("", good), ("application/json", b"{" + b'"k": 1,' * 50_000 + b'"z": 0}'),
    ]
    return st.one_of(
        st.sampled_from(fixed),
        st.tuples(st.just("application/json"), st.binary(max_size=200)),
        st.tuples(st.sampled_from(["application/json", "application/jsonx", "APPLICATION/JSON"]),
                  st.just(good)),
    )


def raw_other_bodies() -> st.SearchStrategy[tuple[str, bytes]]:
    """(Content-Type, body) for a non-JSON body: the wrong type, no type, nothing, or random bytes."""
    return st.one_of(
        st.tuples(st.sampled_from(["message/rfc822", "MESSAGE/RFC822; charset=utf-8", "text/plain", "",
                                   "application/json", "multipart/form-data; boundary=x"]),
                  st.sampled_from([b"", b"From: a@b.example\r\nTo: c@d.example\r\n\r\nhi", b"{}", b"\x00" * 10])),
        st.tuples(st.just("message/rfc822"), st.binary(max_size=300)),
    )


# --------------------------------------------------------------------------- hostile RFC 822 copies

_NAMES = st.sampled_from(["", "Alice", '"Doe, John"', "=?utf-8?q?J=C3=B6rg?=", "=?bogus?b?AAAA?=", "\xe9t\xe9"])
_DATES = st.sampled_from([
    "Tue, 05 Mar 2024 10:00:00 +0000", "31 Dec 9999 23:59:59 -0500", "Fri, 31 Dec 9999 23:59:59 +1400",
    "Mon, 01 Jan 0001 00:00:00 +0000", "1 Jan 1970 00:00:00 -9959", "yesterday", "", "Tue, 99 Foo 2024 99:99:99",
    "Thu, 01 Jan 2099 00:00:00 +0000", "Sat, 29 Feb 2023 10:00:00 +0000", "9" * 100,
])
_CHARSETS = st.sampled_from(["utf-8", "us-ascii", "iso-8859-1", "x-unknown", "utf-7", "", '"', "utf-16"])


def _addr(world_addresses: tuple[str, ...]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(world_addresses),
        st.builds(lambda n, a: f"{n} <{a}>" if n else a, _NAMES, st.sampled_from(world_addresses)),
        st.sampled_from(["", "undisclosed-recipients:;", "<>", "@", "a@", "a@b", "x" * 300 + "@x.example",
                         "Group: a@x.example, b@x.example;", "a@x.example, , ,", "\xff@x.example"]),
        st.emails().map(str),
    )


@st.composite
def rfc822_messages(draw: st.DrawFn, world_addresses: tuple[str, ...]) -> bytes:
    """A copy an inbound-mail service might hand over: mostly plausible, always a little hostile."""
    if draw(st.integers(0, 19)) == 0:
        return draw(st.binary(max_size=400))
    addr = _addr(world_addresses)
    headers: list[bytes] = []

    def add(name: str, value: str | bytes) -> None:
        raw = value if isinstance(value, bytes) else value.encode("utf-8", "surrogateescape")
        headers.append(name.encode() + b": " + raw)

    if draw(st.booleans()) or draw(st.booleans()):
        add("From", draw(addr))
    for name in ("To", "Cc", "Bcc"):
        if draw(st.integers(0, 2)) > 0:
            if draw(st.integers(0, 39)) == 0:  # a thousand recipients (Python's parser takes seconds on them)
                add(name, ", ".join(f"r{i}@client.test" for i in range(1000)))
            else:
                add(name, ", ".join(draw(addr) for _ in range(draw(st.integers(1, 3)))))
    if draw(st.booleans()):
        add("Subject", draw(st.one_of(st.text(max_size=60), hostile_strings()).map(
            lambda s: s.encode("utf-8", "surrogatepass"))))
    if draw(st.booleans()):
        add("Date", draw(_DATES))
    if draw(st.booleans()):
        add("Message-ID", draw(st.sampled_from(["<a@b>", "<offer-1@corp.example>", "", "<" + "x" * 2000 + ">",
                                                "no-brackets", "<a@b> <c@d>"])))
    if draw(st.booleans()):
        add("In-Reply-To", draw(st.sampled_from(["<a@b>", "garbage", "<" * 50])))
    headers.append(b"MIME-Version: 1.0")
    body = draw(_bodies())
    if draw(st.integers(0, 9)) == 0:
        headers.append(b"X-Broken " + draw(st.binary(max_size=30)))  # a header line without a colon
    return b"\r\n".join(headers) + b"\r\n" + body


@st.composite
def _bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["plain", "html", "alternative", "nested", "many", "attachment", "broken",
                                 "huge", "empty"]))
    charset = draw(_CHARSETS)
    text = draw(st.text(max_size=200)).encode("utf-8", "surrogatepass")
    if kind == "plain":
        return f"Content-Type: text/plain; charset={charset}\r\n\r\n".encode() + text
    if kind == "html":
        return f"Content-Type: text/html; charset={charset}\r\nContent-Transfer-Encoding: quoted-printable" \
               "\r\n\r\n<p>=FF=E9=\r\n".encode() + text
    if kind == "alternative":
        return (b'Content-Type: multipart/alternative; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n'
                + text + b"\r\n--b\r\nContent-Type: text/html\r\n\r\n<b>x</b>\r\n--b--\r\n")
    if kind == "nested":
        depth = draw(st.sampled_from([5, 50, 500]))
        head = b"".join(f'Content-Type: multipart/mixed; boundary="n{i}"\r\n\r\n--n{i}\r\n'.encode()
                        for i in range(depth))
        tail = b"".join(f"\r\n--n{i}--\r\n".encode() for i in reversed(range(depth)))
        return head + b"Content-Type: text/plain\r\n\r\ndeep" + tail
    if kind == "many":
        n = draw(st.sampled_from([10, 2000]))
        parts = b"".join(b"--m\r\nContent-Type: text/plain\r\n\r\npart\r\n" for _ in range(n))
        return b'Content-Type: multipart/mixed; boundary="m"\r\n\r\n' + parts + b"--m--\r\n"
    if kind == "attachment":
        name = draw(st.sampled_from(["a.pdf", "=?utf-8?q?=E2=82=AC.pdf?=", "../../etc/passwd", "", "x" * 500]))
        return (b'Content-Type: multipart/mixed; boundary="a"\r\n\r\n--a\r\nContent-Type: text/plain\r\n\r\nhi\r\n'
                b"--a\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
                + f'Content-Disposition: attachment; filename="{name}"\r\n\r\n'.encode()
                + draw(st.sampled_from([b"JVBERi0=", b"!!!not base64", b""])) + b"\r\n--a--\r\n")
    if kind == "broken":
        return draw(st.sampled_from([
            b'Content-Type: multipart/mixed; boundary="never"\r\n\r\nno boundary ever\r\n',
            b"Content-Type: multipart/mixed\r\n\r\n--\r\n--\r\n",
            b"Content-Type: text/plain; charset=\"\r\nContent-Transfer-Encoding: base64\r\n\r\n@@@@",
            b"Content-Type: message/rfc822\r\n\r\nFrom: inner@x.example\r\n\r\ninner",
            b"Content-Type: /\r\n\r\nx",
        ]))
    if kind == "huge":
        return b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + "日本語".encode() * draw(
            st.sampled_from([1000, 400_000]))
    return b"\r\n"
