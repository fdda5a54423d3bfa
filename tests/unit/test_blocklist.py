"""R21: the blocklist's matching rule (shared/crm/blocklist.py), one behaviour per test."""

from __future__ import annotations

from shared.crm.blocklist import EMPTY, Blocklist


def test_r21_listed_address_is_blocked_whatever_its_capitalisation() -> None:
    bl = Blocklist.parse(["Spam@Vendor.TEST"])
    assert bl.blocks("spam@vendor.test") and bl.blocks("SPAM@vendor.test")
    assert not bl.blocks("sales@vendor.test")


def test_r21_domain_blocks_its_addresses_and_subdomains() -> None:
    bl = Blocklist.parse(["vendor.test"])
    assert bl.blocks("anyone@vendor.test") and bl.blocks("x@mail.vendor.test") and bl.blocks("x@a.b.vendor.test")


def test_r21_domain_never_blocks_a_look_alike() -> None:
    bl = Blocklist.parse(["vendor.test"])
    assert not bl.blocks("x@notvendor.test") and not bl.blocks("x@vendor.test.evil") and not bl.blocks("x@test")


def test_r21_at_and_wildcard_domain_spellings_mean_the_domain() -> None:
    assert Blocklist.parse(["@vendor.test"]) == Blocklist.parse(["*.vendor.test"]) == Blocklist.parse(["vendor.test"])


def test_r21_junk_entries_are_ignored_not_guessed() -> None:
    bl = Blocklist.parse(["com", "", "  ", "a b@c.test", 42, None, {"x": 1}, "@", "x@", "@@c.test", "ok.test"])
    assert bl == Blocklist(domains=frozenset({"ok.test"}))


def test_r21_a_blocklist_that_is_not_a_list_blocks_nothing() -> None:
    assert Blocklist.parse("vendor.test") is EMPTY and Blocklist.parse(None) is EMPTY
    assert not EMPTY.blocks("x@vendor.test")


def test_r21_first_blocked_skips_the_reps_own_addresses() -> None:
    bl = Blocklist.parse(["acme.test", "spam@vendor.test"])
    assert bl.first_blocked(["rep@acme.test", "carla@client.test"], ignore=["REP@acme.test"]) is None
    assert bl.first_blocked(["carla@client.test", "spam@vendor.test"]) == "spam@vendor.test"
