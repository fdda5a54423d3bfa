"""Whether the relay that received an Auto BCC copy says its `From` domain failed authentication. Pure.

Why (issue 23): R16b accepts a copy only when its `From` is the rep's own
address, but `From` is whatever the sender typed. An Auto BCC address sits in
recipients' mail and in logs; whoever learns it could log forged "outbound"
mail under the rep (and create contacts). The inbound relay (SES, SendGrid,
Mailgun, Google) checks SPF, DKIM and DMARC when the mail arrives and writes
its verdict into the copy as an `Authentication-Results` header (RFC 8601),
or an `ARC-Authentication-Results` one (RFC 8617) when it seals the copy.

Which verdict is trusted: a sender can write any header into a message, so
only the relay's own is read. The relay prepends its header above everything
the message already carried, so it is the topmost `Authentication-Results`
(with `AUTO_BCC_AUTHSERV_ID` set, the topmost whose authserv-id is that one:
what a deployment should configure); failing any, the
`ARC-Authentication-Results` of the highest instance `i=`. A forged header
below the relay's is never read. A copy with no verdict at all is judged as
before, by its `From` alone (a relay that passes no verdict cannot be
helped).

The rule, for the `From` domain D (DMARC's, RFC 7489):
- `dmarc=pass` for D: accepted;
- `dmarc=fail` (for D, or naming no domain): refused;
- otherwise, when the verdict has SPF or DKIM results, none of them is an
  aligned pass (`spf=pass` with `smtp.mailfrom` in D, or `dkim=pass` with
  `header.d` in D; relaxed alignment: D or a subdomain, or D a subdomain of
  it), at least one is a `fail`/`softfail`, and none is a `temperror`
  (the relay could not tell): refused;
- anything else (`none`, `neutral`, errors): accepted, by `From` as before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_COMMENT = re.compile(r"\([^()]*\)")
_RESULT = re.compile(r"^\s*([a-z0-9_-]+)\s*=\s*([a-z]+)\b(.*)$", re.IGNORECASE | re.DOTALL)
_PROP = re.compile(r"([a-z0-9_-]+\.[a-z0-9_-]+)\s*=\s*(\"[^\"]*\"|[^\s;]+)", re.IGNORECASE)
_INSTANCE = re.compile(r"^\s*i\s*=\s*(\d+)\s*;", re.IGNORECASE)


@dataclass(frozen=True)
class Result:
    method: str  # spf, dkim, dmarc, …
    result: str  # pass, fail, softfail, none, neutral, temperror, permerror, …
    props: dict[str, str]


@dataclass(frozen=True)
class Verdict:
    refused: bool
    reason: str  # why, safe to show the webhook's operator (no addresses)


def parse(value: str) -> tuple[str, list[Result]]:
    """An Authentication-Results value -> (authserv-id, results). Comments are dropped."""
    text = value
    for _ in range(4):  # nested comments, as far as anyone writes them
        text = _COMMENT.sub(" ", text)
    head, _, rest = text.partition(";")
    authserv = head.strip().split()[0].lower() if head.strip() else ""
    results = []
    for clause in rest.split(";"):
        m = _RESULT.match(clause)
        if not m or m.group(1).lower() in ("reason",):
            continue
        props = {k.lower(): v.strip('"').lower() for k, v in _PROP.findall(m.group(3))}
        results.append(Result(m.group(1).lower(), m.group(2).lower(), props))
    return authserv, results


def relay_results(auth_results: list[str], arc_results: list[str], authserv_id: str | None) -> list[Result] | None:
    """The relay's results (see the module doc for which header), or None when it passed no verdict."""
    wanted = (authserv_id or "").strip().lower()
    for value in auth_results:  # in the order they appear: the topmost first
        authserv, results = parse(value)
        if not wanted or authserv == wanted:
            return results
    best: tuple[int, str] | None = None
    for value in arc_results:
        m = _INSTANCE.match(value)
        if m and (best is None or int(m.group(1)) > best[0]):
            best = (int(m.group(1)), value[m.end():])
    if best is not None:
        authserv, results = parse(best[1])
        if not wanted or authserv == wanted:
            return results
    return None


def _aligned(domain: str, other: str) -> bool:
    other = other.rsplit("@", 1)[-1].strip(".").lower()
    return bool(other) and (other == domain or other.endswith("." + domain) or domain.endswith("." + other))


def judge(results: list[Result] | None, from_domain: str) -> Verdict:
    """The rule of the module doc, for the copy's From domain."""
    if results is None:
        return Verdict(False, "no verdict from the relay")
    domain = from_domain.strip(".").lower()
    dmarc = [r for r in results if r.method == "dmarc"
             and (not r.props.get("header.from") or _aligned(domain, r.props["header.from"]))]
    if any(r.result == "pass" for r in dmarc):
        return Verdict(False, "dmarc=pass")
    if any(r.result == "fail" for r in dmarc):
        return Verdict(True, "the relay's verdict is dmarc=fail for the From domain")
    spf_dkim = [r for r in results if r.method in ("spf", "dkim")]
    if not spf_dkim or any(r.result == "temperror" for r in spf_dkim):
        return Verdict(False, "no decisive SPF/DKIM result")
    for r in spf_dkim:
        if r.method == "spf":
            where = r.props.get("smtp.mailfrom") or r.props.get("smtp.helo")
        else:
            where = r.props.get("header.d") or r.props.get("header.i")
        if r.result == "pass" and where and _aligned(domain, where):
            return Verdict(False, f"{r.method}=pass aligned with the From domain")
    if any(r.result in ("fail", "softfail") for r in spf_dkim):
        return Verdict(True, "the relay's verdict is SPF and DKIM failing for the From domain")
    return Verdict(False, "no failing SPF/DKIM result")
