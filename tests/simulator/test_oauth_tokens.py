"""The simulator's TokenStore: the rules of Google's codes and tokens, on a fake clock."""

from __future__ import annotations

import base64
import hashlib

import pytest

from simulator.tokens import CODE_TTL_SECONDS, Grant, OAuthError, TokenStore

READ = "https://www.googleapis.com/auth/gmail.readonly"
SEND = "https://www.googleapis.com/auth/gmail.send"
CB = "http://127.0.0.1:1/callback"
GRANT = Grant(address="rep@example.com", scopes=frozenset({READ, SEND}), client_id="client-1")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(clock: Clock) -> TokenStore:
    return TokenStore(access_ttl_seconds=3600, clock=clock)


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def connect(store: TokenStore, offline: bool = True) -> tuple[str, str | None]:
    code = store.issue_code(GRANT, CB, offline=offline)
    issued = store.redeem_code(code, "client-1", CB, None)
    return issued.access_token, issued.refresh_token


def test_access_token_authenticates_to_its_grant(store: TokenStore) -> None:
    access, _ = connect(store)
    assert store.authenticate(access) == GRANT


def test_unknown_access_token_is_rejected(store: TokenStore) -> None:
    assert store.authenticate("ya29.not-a-token") is None


def test_access_token_expires_after_ttl(store: TokenStore, clock: Clock) -> None:
    access, _ = connect(store)
    clock.now += 3599
    assert store.authenticate(access) is not None
    clock.now += 1
    assert store.authenticate(access) is None


def test_ttl_change_applies_to_tokens_issued_afterwards(store: TokenStore, clock: Clock) -> None:
    old, refresh = connect(store)
    store.access_ttl_seconds = 5
    assert refresh is not None
    new = store.refresh(refresh, "client-1")
    assert new.expires_in == 5
    clock.now += 5
    assert store.authenticate(new.access_token) is None
    assert store.authenticate(old) is not None


def test_offline_code_exchange_returns_refresh_token_online_does_not(store: TokenStore) -> None:
    assert connect(store, offline=True)[1] is not None
    assert connect(store, offline=False)[1] is None


def test_code_is_single_use(store: TokenStore) -> None:
    code = store.issue_code(GRANT, CB)
    store.redeem_code(code, "client-1", CB, None)
    with pytest.raises(OAuthError) as err:
        store.redeem_code(code, "client-1", CB, None)
    assert err.value.error == "invalid_grant"


def test_code_expires_after_ten_minutes(store: TokenStore, clock: Clock) -> None:
    code = store.issue_code(GRANT, CB)
    clock.now += CODE_TTL_SECONDS
    with pytest.raises(OAuthError) as err:
        store.redeem_code(code, "client-1", CB, None)
    assert err.value.error == "invalid_grant"


def test_code_is_bound_to_its_redirect_uri(store: TokenStore) -> None:
    code = store.issue_code(GRANT, CB)
    with pytest.raises(OAuthError) as err:
        store.redeem_code(code, "client-1", CB + "x", None)
    assert err.value.error == "redirect_uri_mismatch"


def test_code_is_bound_to_its_client(store: TokenStore) -> None:
    code = store.issue_code(GRANT, CB)
    with pytest.raises(OAuthError) as err:
        store.redeem_code(code, "client-2", CB, None)
    assert err.value.error == "invalid_grant"


def test_pkce_s256_verifier_must_match_challenge(store: TokenStore) -> None:
    verifier = "v" * 64
    code = store.issue_code(GRANT, CB, code_challenge=s256(verifier), code_challenge_method="S256")
    with pytest.raises(OAuthError) as err:
        store.redeem_code(code, "client-1", CB, "w" * 64)
    assert (err.value.error, err.value.description) == ("invalid_grant", "Invalid code verifier.")
    good = store.issue_code(GRANT, CB, code_challenge=s256(verifier), code_challenge_method="S256")
    assert store.redeem_code(good, "client-1", CB, verifier).access_token


def test_pkce_challenge_requires_a_verifier(store: TokenStore) -> None:
    code = store.issue_code(GRANT, CB, code_challenge=s256("v" * 64), code_challenge_method="S256")
    with pytest.raises(OAuthError) as err:
        store.redeem_code(code, "client-1", CB, None)
    assert err.value.description == "Missing code verifier."


def test_pkce_plain_compares_verbatim(store: TokenStore) -> None:
    code = store.issue_code(GRANT, CB, code_challenge="p" * 43, code_challenge_method="plain")
    assert store.redeem_code(code, "client-1", CB, "p" * 43).access_token


def test_refresh_after_revoke_is_invalid_grant_as_google_says(store: TokenStore) -> None:
    _, refresh = connect(store)
    assert refresh is not None
    assert store.revoke(refresh)
    with pytest.raises(OAuthError) as err:
        store.refresh(refresh, "client-1")
    assert err.value.body() == {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}
    assert err.value.status == 400


def test_revoking_refresh_token_kills_its_access_tokens(store: TokenStore) -> None:
    access, refresh = connect(store)
    assert refresh is not None
    second = store.refresh(refresh, "client-1").access_token
    store.revoke(refresh)
    assert store.authenticate(access) is None
    assert store.authenticate(second) is None


def test_revoking_access_token_revokes_the_whole_grant(store: TokenStore) -> None:
    access, refresh = connect(store)
    assert refresh is not None
    assert store.revoke(access)
    with pytest.raises(OAuthError):
        store.refresh(refresh, "client-1")


def test_revoke_ends_every_token_of_that_client_for_that_account_only(store: TokenStore) -> None:
    first_access, first = connect(store)
    _, second = connect(store)  # a second consent: another refresh token, same client and account
    other_client = Grant(address=GRANT.address, scopes=GRANT.scopes, client_id="client-2")
    kept = store.redeem_code(store.issue_code(other_client, CB, offline=True), "client-2", CB, None)
    assert first is not None and second is not None
    assert store.revoke(first)
    assert store.authenticate(first_access) is None
    with pytest.raises(OAuthError):
        store.refresh(second, "client-1")
    assert store.authenticate(kept.access_token) is not None
    assert kept.refresh_token is not None and store.refresh(kept.refresh_token, "client-2")


def test_revoking_unknown_or_dead_token_reports_false(store: TokenStore) -> None:
    _, refresh = connect(store)
    assert refresh is not None
    assert store.revoke("1//nope") is False
    store.revoke(refresh)
    assert store.revoke(refresh) is False


def test_revoke_all_is_a_password_change_for_one_mailbox_only(store: TokenStore) -> None:
    access, refresh = connect(store)
    other = Grant(address="other@example.com", scopes=frozenset({READ}), client_id="client-1")
    other_access = store.redeem_code(store.issue_code(other, CB, offline=True), "client-1", CB, None).access_token
    assert store.active_tokens("rep@example.com") == 1
    assert store.revoke_all("REP@example.com") == 2  # one refresh + one access token were live
    assert store.authenticate(access) is None
    assert refresh is not None
    with pytest.raises(OAuthError):
        store.refresh(refresh, "client-1")
    assert store.active_tokens("rep@example.com") == 0
    assert store.authenticate(other_access) is not None


def test_refresh_may_narrow_but_never_widen_scopes(store: TokenStore) -> None:
    _, refresh = connect(store)
    assert refresh is not None
    narrowed = store.refresh(refresh, "client-1", frozenset({READ}))
    assert store.authenticate(narrowed.access_token) == Grant("rep@example.com", frozenset({READ}), "client-1")
    widened = store.refresh(refresh, "client-1", frozenset({READ, "https://mail.google.com/"}))
    assert widened.scopes == frozenset({READ})
    with pytest.raises(OAuthError) as err:
        store.refresh(refresh, "client-1", frozenset({"https://mail.google.com/"}))
    assert err.value.error == "invalid_scope"


def test_refresh_token_belongs_to_its_client(store: TokenStore) -> None:
    _, refresh = connect(store)
    assert refresh is not None
    with pytest.raises(OAuthError) as err:
        store.refresh(refresh, "client-2")
    assert err.value.error == "unauthorized_client"


def test_has_live_refresh_token_tracks_revocation(store: TokenStore) -> None:
    assert not store.has_live_refresh_token("rep@example.com", "client-1")
    _, refresh = connect(store)
    assert store.has_live_refresh_token("rep@example.com", "client-1")
    assert not store.has_live_refresh_token("rep@example.com", "client-2")
    assert refresh is not None
    store.revoke(refresh)
    assert not store.has_live_refresh_token("rep@example.com", "client-1")


def test_reset_forgets_everything(store: TokenStore) -> None:
    access, _ = connect(store)
    store.reset()
    assert store.authenticate(access) is None
    assert store.active_tokens("rep@example.com") == 0


def test_dead_tokens_are_pruned_but_live_ones_survive(store: TokenStore, clock: Clock) -> None:
    _, refresh = connect(store)
    assert refresh is not None
    store.access_ttl_seconds = 1
    for _ in range(1000):
        store.refresh(refresh, "client-1")
    clock.now += 2
    store.access_ttl_seconds = 3600
    live = [store.refresh(refresh, "client-1").access_token for _ in range(1000)]  # triggers a prune
    assert len(store._access) <= 1002
    assert all(store.authenticate(t) is not None for t in live)


def test_concurrent_refresh_authenticate_and_revoke_all_stay_consistent() -> None:
    import threading

    store = TokenStore()
    refresh_tokens = [connect(store)[1] for _ in range(8)]
    errors: list[BaseException] = []
    start = threading.Barrier(9)

    def worker(refresh: str) -> None:
        try:
            start.wait()
            for _ in range(300):
                try:
                    issued = store.refresh(refresh, "client-1")
                except OAuthError as err:  # revoked mid-way: must be Google's answer, nothing else
                    assert err.error == "invalid_grant"
                    return
                store.authenticate(issued.access_token)
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(r,)) for r in refresh_tokens]
    for t in threads:
        t.start()
    start.wait()
    store.revoke_all(GRANT.address)
    for t in threads:
        t.join()
    assert errors == []
    assert store.active_tokens(GRANT.address) == 0
    assert all(store.authenticate(t) is None for t in list(store._access))
