"""Issue 23: an Auto BCC copy whose relay says its From domain failed authentication is refused.

The relay's verdict is the topmost Authentication-Results (or the one of the configured authserv-id), else
the highest ARC-Authentication-Results; headers a sender wrote below it are never read."""

from __future__ import annotations

import pytest

from shared.auto_bcc.message import parse_copy
from shared.auto_bcc.sender_auth import judge, relay_results

REP = "acme.example"


def verdict(*auth: str, arc: tuple[str, ...] = (), authserv: str | None = None) -> bool:
    return judge(relay_results(list(auth), list(arc), authserv), REP).refused


@pytest.mark.parametrize("header", [
    "mx.relay.test; spf=pass smtp.mailfrom=evil.test; dkim=none; dmarc=fail (p=reject) header.from=acme.example",
    "mx.relay.test; dmarc=fail header.from=acme.example",
    "mx.relay.test;\r\n dkim=fail (bad signature) header.d=acme.example;\r\n spf=fail smtp.mailfrom=acme.example",
    "mx.relay.test; spf=softfail smtp.mailfrom=acme.example; dkim=none",
])
def test_relay_verdict_failing_the_from_domain_refuses_the_copy(header: str) -> None:
    assert verdict(header)


@pytest.mark.parametrize("header", [
    "mx.relay.test; spf=pass smtp.mailfrom=acme.example; dkim=pass header.d=acme.example; dmarc=pass "
    "header.from=acme.example",
    "mx.relay.test; spf=fail smtp.mailfrom=bounce.esp.test; dkim=pass header.d=mail.acme.example",  # aligned DKIM
    "mx.relay.test; spf=pass smtp.mailfrom=acme.example; dkim=fail header.d=acme.example",  # aligned SPF
    "mx.relay.test; spf=none; dkim=none; dmarc=none",  # the domain publishes nothing: judged by From
    "mx.relay.test; spf=temperror smtp.mailfrom=acme.example; dkim=fail header.d=acme.example",  # undecided
    "mx.relay.test; none",
])
def test_relay_verdict_that_does_not_fail_the_from_domain_keeps_the_copy(header: str) -> None:
    assert not verdict(header)


def test_copy_without_any_verdict_is_judged_by_its_from_alone() -> None:
    assert not verdict()


def test_a_forged_pass_below_the_relays_fail_is_not_read() -> None:
    relay = "mx.relay.test; dmarc=fail header.from=acme.example"
    forged = "mx.relay.test; dmarc=pass header.from=acme.example"
    assert verdict(relay, forged)


def test_with_an_authserv_id_only_that_relays_verdict_counts() -> None:
    forged = "mx.relay.test; dmarc=pass header.from=acme.example"
    relay = "inbound.ses.test; dmarc=fail header.from=acme.example"
    assert verdict(forged, relay, authserv="inbound.ses.test")
    assert not verdict(relay, authserv="mx.other.test")  # no verdict of the configured relay


def test_arc_verdict_of_the_highest_instance_counts_without_authentication_results() -> None:
    arc = ("i=1; mx.first.test; dmarc=pass header.from=acme.example",
           "i=2; mx.second.test; dmarc=fail header.from=acme.example")
    assert verdict(arc=arc)


def test_parsed_copy_carries_the_verdicts_top_to_bottom() -> None:
    raw = (b"Authentication-Results: mx.relay.test; dmarc=fail header.from=acme.example\r\n"
           b"Authentication-Results: forged.test; dmarc=pass\r\n"
           b"ARC-Authentication-Results: i=1; mx.relay.test; spf=pass\r\n"
           b"From: rep@acme.example\r\nTo: carla@client.test\r\nSubject: x\r\n\r\nbody\r\n")
    copy = parse_copy(raw)
    assert copy.auth_results == ["mx.relay.test; dmarc=fail header.from=acme.example", "forged.test; dmarc=pass"]
    assert copy.arc_results == ["i=1; mx.relay.test; spf=pass"]
