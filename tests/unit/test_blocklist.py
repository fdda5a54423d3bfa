"""Specs of the R21 blocklist rule (pure): addresses and whole domains, case-insensitive."""

from __future__ import annotations

import pytest

from shared.sync.blocklist import any_blocked, is_blocked, parse_blocklist

LIST = parse_blocklist(["Boss@Private.example", "b.com", "@Lawyers.Example", "*.wild.example"])


@pytest.mark.parametrize("address", ["boss@private.example", "BOSS@PRIVATE.EXAMPLE", " Boss@private.Example "])
def test_r21_listed_address_is_blocked_whatever_the_case(address: str) -> None:
    assert is_blocked(address, LIST)


def test_r21_listed_address_blocks_only_itself() -> None:
    assert not is_blocked("other@private.example", LIST)


@pytest.mark.parametrize("address", ["x@b.com", "x@B.COM", "x@mail.b.com", "x@a.mail.b.com",
                                     "x@lawyers.example", "x@eu.lawyers.example", "x@wild.example"])
def test_r21_domain_blocks_the_domain_and_its_subdomains(address: str) -> None:
    assert is_blocked(address, LIST)


@pytest.mark.parametrize("address", ["x@bb.com", "x@b.com.evil.example", "x@notb.com", "b.com@ok.example"])
def test_r21_domain_does_not_block_lookalikes(address: str) -> None:
    assert not is_blocked(address, LIST)


@pytest.mark.parametrize("entries", [None, "b.com", {"b.com": 1}, [], ["", "  ", 3, None, "a b.com", "@"]])
def test_r21_missing_or_garbage_settings_block_nothing(entries: object) -> None:
    bl = parse_blocklist(entries)
    assert not bl
    assert not is_blocked("x@b.com", bl)


def test_r21_any_blocked_looks_at_every_address() -> None:
    assert any_blocked(["ann@client.example", "x@mail.b.com"], LIST)
    assert not any_blocked(["ann@client.example"], LIST)
    assert not any_blocked([], LIST)
