"""Specs of the OAuth state and Auto BCC address derivation (pure logic, no stack)."""

from __future__ import annotations

import base64
import json

import pytest

from shared.connect.auto_bcc_route import auto_bcc_address, auto_bcc_token, token_from_address
from shared.connect.oauth_state import STATE_TTL_SECONDS, StateError, new_claims, sign_state, verify_state

KEY = b"k" * 32
OTHER_KEY = b"o" * 32


def _state(**kw: str) -> tuple[str, object]:
    claims = new_claims(kw.get("a", "acct1"), kw.get("u", "user1"), kw.get("r", "https://crm.example/back"), 1000)
    return sign_state(KEY, claims), claims


def test_state_round_trip_binds_account_user_and_return_url() -> None:
    state, claims = _state()
    assert verify_state(KEY, state) == claims


def test_state_expires_after_ten_minutes() -> None:
    _, claims = _state()
    assert STATE_TTL_SECONDS == 600
    assert not claims.expired(1000 + 599)  # type: ignore[attr-defined]
    assert claims.expired(1000 + 600)  # type: ignore[attr-defined]


def test_states_are_unique_per_request() -> None:
    assert _state()[0] != _state()[0]


def test_state_signed_with_another_key_is_invalid() -> None:
    claims = new_claims("acct1", "user1", "https://crm.example/back", 1000)
    with pytest.raises(StateError) as err:
        verify_state(KEY, sign_state(OTHER_KEY, claims))
    assert err.value.reason == "invalid_state"
    assert err.value.claims is None


@pytest.mark.parametrize("field_index,value", [(2, "acct2"), (3, "user2"), (4, "https://evil.example/"), (5, 10**10)])
def test_tampered_state_payload_is_invalid(field_index: int, value: object) -> None:
    state, _ = _state()
    payload, mac = state.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body[field_index] = value
    forged = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    with pytest.raises(StateError) as err:
        verify_state(KEY, f"{forged}.{mac}")
    assert err.value.reason == "invalid_state"


@pytest.mark.parametrize("bad", ["", "abc", "abc.", ".abc", "a.b.c", "!!!.???", "x" * 5000, "é.é"])
def test_malformed_state_is_invalid_not_a_crash(bad: str) -> None:
    with pytest.raises(StateError) as err:
        verify_state(KEY, bad)
    assert err.value.reason == "invalid_state"


def test_auto_bcc_address_is_stable_per_user_and_differs_between_users() -> None:
    a = auto_bcc_token(KEY, "acct1", "user1")
    assert a == auto_bcc_token(KEY, "acct1", "user1")
    assert a != auto_bcc_token(KEY, "acct1", "user2")
    assert a != auto_bcc_token(KEY, "acct2", "user1")
    # No ambiguity from concatenation: ("ab","c") and ("a","bc") are different users.
    assert auto_bcc_token(KEY, "ab", "c") != auto_bcc_token(KEY, "a", "bc")
    assert a != auto_bcc_token(OTHER_KEY, "acct1", "user1")


def test_auto_bcc_rotation_generations_give_new_addresses_and_generation_0_keeps_existing_ones() -> None:
    import base64
    import hashlib
    import hmac

    first = auto_bcc_token(KEY, "acct1", "user1", 0)
    # generation 0 is the pre-rotation formula: addresses users already saved keep working
    mac = hmac.new(KEY, b"autobcc\x00acct1\x00user1", hashlib.sha256).digest()
    assert first == base64.b32encode(mac).decode("ascii")[:26].lower()
    generations = {auto_bcc_token(KEY, "acct1", "user1", n) for n in range(5)}
    assert len(generations) == 5
    # no user id (the CRM may put a NUL in one) gives another user's rotated address
    assert auto_bcc_token(KEY, "acct1", "user1", 1) != auto_bcc_token(KEY, "acct1", "user1\x001")
    assert auto_bcc_token(KEY, "acct1", "user1", 1) != auto_bcc_token(KEY, "acct1", "user11", 0)
    assert auto_bcc_token(KEY, "ab", "c", 1) != auto_bcc_token(KEY, "a", "bc", 1)


def test_auto_bcc_token_is_26_lowercase_base32_chars() -> None:
    token = auto_bcc_token(KEY, "acct1", "user1")
    assert len(token) == 26
    assert set(token) <= set("abcdefghijklmnopqrstuvwxyz234567")


def test_auto_bcc_address_parses_back_only_on_our_domain() -> None:
    token = auto_bcc_token(KEY, "acct1", "user1")
    address = auto_bcc_address(token, "BCC.Example.invalid")
    assert address == f"{token}@bcc.example.invalid"
    assert token_from_address(address.upper(), "bcc.example.invalid") == token
    assert token_from_address(f"{token}@other.example", "bcc.example.invalid") is None
    assert token_from_address("short@bcc.example.invalid", "bcc.example.invalid") is None
    assert token_from_address("not an address", "bcc.example.invalid") is None
