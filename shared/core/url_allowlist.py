"""Where a browser may be sent back to: `returnUrl` compared by its parsed parts, never by regex search.

A regex `search` of the URL's text cannot be trusted with a URL: the unanchored
`^https://crm\\.example\\.com` admits `https://crm.example.com@evil.test/`
(userinfo `crm.example.com`, host `evil.test`) and
`https://crm.example.com.evil.test/`. So an entry of RETURN_URL_ALLOWLIST
(comma-separated) is a URL prefix, parsed once:

  https://crm.example.com/               that scheme, host and (default) port, any path
  https://crm.example.com:8443/app/      that port, paths under /app/ only
  http://localhost:*/                    any port (the local stack)
  https://                               any https host (the deployment's permissive default)

and a URL is allowed when its scheme, host (exact, case-insensitive) and port
are the entry's and its path starts with the entry's path at a segment
boundary. A URL with userinfo (`user@`), a backslash (browsers read `\\` as
`/`, Python's parser does not), a control character or whitespace, an
unparseable port, or a `.`/`..` path segment is never allowed.

Entries written in the older regex form are read when they are an anchored
literal prefix (`^https://crm\\.acme\\.example/` is `https://crm.acme.example/`);
any other regex is a configuration error, so a deployment cannot silently keep
a list that means something else now.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

ANY_PORT = -1
_DEFAULT_PORTS = {"http": 80, "https": 443}
_REGEX_META = re.compile(r"[\\^$.|?*+()\[\]{}]")
_UNSAFE = re.compile(r"[\x00-\x20\x7f\\]")


class AllowlistError(ValueError):
    """An entry of the allow-list cannot be read as a URL prefix."""


@dataclass(frozen=True)
class UrlRule:
    scheme: str
    host: str | None  # None: any host (the bare `https://` entry)
    port: int  # the port, or ANY_PORT
    path: str  # a prefix; "/" for any path

    def admits(self, scheme: str, host: str, port: int, path: str) -> bool:
        if scheme != self.scheme or (self.host is not None and host != self.host):
            return False
        if self.port != ANY_PORT and port != self.port:
            return False
        if self.path == "/" or path == self.path or path == self.path.rstrip("/"):
            return True
        return path.startswith(self.path if self.path.endswith("/") else self.path + "/")


def _from_legacy_regex(entry: str) -> str:
    """`^https://crm\\.acme\\.example/` -> `https://crm.acme.example/`; any real regex -> AllowlistError."""
    literal = re.sub(r"\\([./:-])", r"\1", entry[1:])
    if _REGEX_META.search(literal.replace(".", "")):
        raise AllowlistError(f"RETURN_URL_ALLOWLIST entry {entry!r} is a regex; write it as a URL prefix "
                             "(https://crm.example.com/, http://localhost:*/)")
    return literal


def parse_rule(entry: str) -> UrlRule:
    text = entry.strip()
    if text.startswith("^"):
        text = _from_legacy_regex(text)
    scheme, sep, rest = text.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in _DEFAULT_PORTS or _UNSAFE.search(rest) or "@" in rest:
        raise AllowlistError(f"RETURN_URL_ALLOWLIST entry {entry!r} must look like https://host[:port|:*]/path")
    if not rest:
        return UrlRule(scheme, None, ANY_PORT, "/")
    authority, slash, path = rest.partition("/")
    host, colon, port_text = authority.rpartition(":") if ":" in authority else (authority, "", "")
    if not host or (colon and not (port_text == "*" or port_text.isdigit())):
        raise AllowlistError(f"RETURN_URL_ALLOWLIST entry {entry!r} has a malformed host or port")
    port = ANY_PORT if port_text == "*" else int(port_text) if port_text else _DEFAULT_PORTS[scheme]
    return UrlRule(scheme, host.strip("[]").lower(), port, "/" + path if slash else "/")


def parse_allowlist(value: str) -> tuple[UrlRule, ...]:
    return tuple(parse_rule(e) for e in value.split(",") if e.strip())


def url_allowed(rules: tuple[UrlRule, ...], url: str) -> bool:
    """Whether `url` falls under one of the rules (see the module doc for what is never allowed)."""
    if _UNSAFE.search(url):
        return False
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname or "@" in parts.netloc:
        return False
    path = parts.path or "/"
    if any(seg in (".", "..") for seg in unquote(path).split("/")):
        return False
    port = port if port is not None else _DEFAULT_PORTS[scheme]
    host = parts.hostname.lower()
    return any(rule.admits(scheme, host, port, path) for rule in rules)
