"""Google OAuth 2.0 on the simulator, driven by the real clients the project uses.

google-auth-oauthlib's Flow (PKCE, offline access) and google-auth's
Credentials.refresh run unchanged against the simulator's /o/oauth2/v2/auth,
/token and /revoke; the headless consent goes through SimClient.consent.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from google.auth.exceptions import RefreshError
from google.auth.transport.requests import Request
from google.oauth2.credentials import Credentials
from google_auth_oauthlib.flow import Flow
from oauthlib.oauth2.rfc6749.errors import InvalidGrantError

from simulator.client import SimClient

READ = "https://www.googleapis.com/auth/gmail.readonly"
SEND = "https://www.googleapis.com/auth/gmail.send"
REP = "rep.flow@example.com"


@pytest.fixture(autouse=True)
def _oauthlib_local_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # The simulator speaks plain http; a partial grant must reach the code (see SPEC §4).
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    monkeypatch.setenv("OAUTHLIB_RELAX_TOKEN_SCOPE", "1")


@pytest.fixture
def oauth_client(sim_server: Any) -> tuple[str, str, str]:
    """(client_id, client_secret, redirect_uri) of a client the simulator's config registers."""
    client = next(c for c in sim_server.ctx.config.oauth_clients if c.redirect_uris)
    return client.client_id, client.client_secret, client.redirect_uris[0]


def make_flow(base: str, oauth_client: tuple[str, str, str], scopes: list[str] | None = None) -> Flow:
    client_id, secret, redirect_uri = oauth_client
    config = {
        "web": {
            "client_id": client_id,
            "client_secret": secret,
            "auth_uri": f"{base}/o/oauth2/v2/auth",
            "token_uri": f"{base}/token",
        }
    }
    return Flow.from_client_config(config, scopes=scopes or [READ, SEND], redirect_uri=redirect_uri)


def connect(sim: str, oauth_client: tuple[str, str, str], scopes: str = "all", user: str = REP) -> Flow:
    flow = make_flow(sim, oauth_client)
    url, _ = flow.authorization_url(access_type="offline", prompt="consent")
    flow.fetch_token(authorization_response=SimClient(sim).consent(url, user, scopes))
    return flow


def credentials_for(sim: str, oauth_client: tuple[str, str, str], refresh_token: str) -> Credentials:
    client_id, secret, _ = oauth_client
    return Credentials(
        token=None, refresh_token=refresh_token, token_uri=f"{sim}/token",
        client_id=client_id, client_secret=secret, scopes=[READ, SEND],
    )


def test_flow_with_pkce_and_offline_access_gets_refresh_token_and_all_scopes(
    sim: str, sim_server: Any, oauth_client: tuple[str, str, str]
) -> None:
    flow = make_flow(sim, oauth_client)
    url, state = flow.authorization_url(access_type="offline", prompt="consent")
    assert "code_challenge_method=S256" in url
    callback = SimClient(sim).consent(url, REP)
    assert parse_qs(urlsplit(callback).query)["state"] == [state]
    token = flow.fetch_token(authorization_response=callback)
    assert set(token["scope"]) == {READ, SEND}
    assert token["refresh_token"].startswith("1//")
    grant = sim_server.ctx.tokens.authenticate(token["access_token"])
    assert grant is not None and grant.address == REP and grant.scopes == {READ, SEND}


def test_partial_grant_token_scope_lacks_the_unticked_scope(
    sim: str, sim_server: Any, oauth_client: tuple[str, str, str]
) -> None:
    token = connect(sim, oauth_client, scopes=READ).oauth2session.token
    assert token["scope"] == [READ]
    assert sim_server.ctx.tokens.authenticate(token["access_token"]).scopes == {READ}


def test_partial_grant_without_relaxed_scope_raises_scope_changed_warning(
    sim: str, oauth_client: tuple[str, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The pitfall SPEC §4 names: the OAuth callback must handle this, not answer 500.
    monkeypatch.delenv("OAUTHLIB_RELAX_TOKEN_SCOPE")
    flow = make_flow(sim, oauth_client)
    url, _ = flow.authorization_url(access_type="offline", prompt="consent")
    with pytest.raises(Warning, match="Scope has changed"):
        flow.fetch_token(authorization_response=SimClient(sim).consent(url, REP, READ))


def test_denied_consent_redirects_with_access_denied_and_state(
    sim: str, oauth_client: tuple[str, str, str]
) -> None:
    flow = make_flow(sim, oauth_client)
    url, state = flow.authorization_url(access_type="offline", prompt="consent")
    query = parse_qs(urlsplit(SimClient(sim).consent(url, REP, "none")).query)
    assert query == {"error": ["access_denied"], "state": [state]}


def test_consent_creates_the_mailbox(sim: str, sim_server: Any, oauth_client: tuple[str, str, str]) -> None:
    connect(sim, oauth_client, user="New.Rep@Example.com")
    assert SimClient(sim).mailbox("new.rep@example.com")["address"] == "new.rep@example.com"


def test_authorization_code_is_single_use(sim: str, oauth_client: tuple[str, str, str]) -> None:
    flow = make_flow(sim, oauth_client)
    url, _ = flow.authorization_url(access_type="offline", prompt="consent")
    callback = SimClient(sim).consent(url, REP)
    flow.fetch_token(authorization_response=callback)
    with pytest.raises(InvalidGrantError):
        flow.fetch_token(authorization_response=callback)


def test_wrong_code_verifier_is_refused(sim: str, oauth_client: tuple[str, str, str]) -> None:
    flow = make_flow(sim, oauth_client)
    url, _ = flow.authorization_url(access_type="offline", prompt="consent")
    callback = SimClient(sim).consent(url, REP)
    flow.code_verifier = "x" * 64
    with pytest.raises(InvalidGrantError, match="Invalid code verifier"):
        flow.fetch_token(authorization_response=callback)


def test_missing_code_verifier_is_refused_when_a_challenge_was_sent(
    sim: str, oauth_client: tuple[str, str, str]
) -> None:
    flow = make_flow(sim, oauth_client)
    url, _ = flow.authorization_url(access_type="offline", prompt="consent")
    callback = SimClient(sim).consent(url, REP)
    flow.code_verifier = None
    with pytest.raises(InvalidGrantError, match="Missing code verifier"):
        flow.fetch_token(authorization_response=callback)


def test_credentials_refresh_gets_a_new_working_access_token(
    sim: str, sim_server: Any, oauth_client: tuple[str, str, str]
) -> None:
    flow = connect(sim, oauth_client)
    creds = credentials_for(sim, oauth_client, flow.credentials.refresh_token)
    creds.refresh(Request())
    assert creds.token and creds.token != flow.credentials.token
    assert creds.expiry is not None and not creds.expired
    assert sim_server.ctx.tokens.authenticate(creds.token).address == REP


def test_refresh_after_revoke_raises_refresh_error_with_invalid_grant(
    sim: str, oauth_client: tuple[str, str, str]
) -> None:
    flow = connect(sim, oauth_client)
    refresh_token = flow.credentials.refresh_token
    resp = requests.post(f"{sim}/revoke", data={"token": refresh_token}, timeout=10)
    assert (resp.status_code, resp.json()) == (200, {})
    creds = credentials_for(sim, oauth_client, refresh_token)
    with pytest.raises(RefreshError) as err:
        creds.refresh(Request())
    assert err.value.args[1] == {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}


def test_refresh_after_password_change_raises_invalid_grant(sim: str, oauth_client: tuple[str, str, str]) -> None:
    flow = connect(sim, oauth_client)
    assert SimClient(sim).revoke(REP) >= 2  # the refresh token and the access token
    with pytest.raises(RefreshError, match="invalid_grant"):
        credentials_for(sim, oauth_client, flow.credentials.refresh_token).refresh(Request())


def test_expired_access_token_stops_authenticating_and_refresh_replaces_it(
    sim: str, sim_server: Any, oauth_client: tuple[str, str, str]
) -> None:
    SimClient(sim).settings(accessTokenTtlSeconds=1)
    flow = connect(sim, oauth_client)
    token = flow.credentials.token
    tokens = sim_server.ctx.tokens
    deadline = time.monotonic() + 5
    while tokens.authenticate(token) is not None:
        assert time.monotonic() < deadline, "access token did not expire"
        time.sleep(0.05)
    creds = credentials_for(sim, oauth_client, flow.credentials.refresh_token)
    creds.refresh(Request())
    assert tokens.authenticate(creds.token) is not None


def test_second_offline_consent_without_prompt_consent_gets_no_new_refresh_token(
    sim: str, oauth_client: tuple[str, str, str]
) -> None:
    # Google's rule: the refresh token comes with the first consent, or when the app forces consent.
    connect(sim, oauth_client)
    flow = make_flow(sim, oauth_client)
    url, _ = flow.authorization_url(access_type="offline")
    token = flow.fetch_token(authorization_response=SimClient(sim).consent(url, REP))
    assert "refresh_token" not in token
    again = connect(sim, oauth_client)  # prompt=consent
    assert again.credentials.refresh_token


def test_refresh_with_wrong_client_secret_is_invalid_client(sim: str, oauth_client: tuple[str, str, str]) -> None:
    flow = connect(sim, oauth_client)
    client_id, _, _ = oauth_client
    creds = Credentials(
        token=None, refresh_token=flow.credentials.refresh_token, token_uri=f"{sim}/token",
        client_id=client_id, client_secret="wrong",
    )
    with pytest.raises(RefreshError, match="invalid_client"):
        creds.refresh(Request())


def gmail_for(sim: str, creds: Credentials) -> Any:
    import google_auth_httplib2
    import httplib2
    from googleapiclient.discovery import build_from_document

    from shared.gmail.service import discovery_document

    http = google_auth_httplib2.AuthorizedHttp(creds, http=httplib2.Http(timeout=10))
    return build_from_document(discovery_document(sim), http=http)


def test_gmail_answers_401_to_an_expired_token_and_the_client_refreshes_and_retries(
    sim: str, sim_server: Any, oauth_client: tuple[str, str, str]
) -> None:
    SimClient(sim).settings(accessTokenTtlSeconds=1)
    flow = connect(sim, oauth_client)
    stale = flow.credentials.token
    SimClient(sim).settings(accessTokenTtlSeconds=3600)  # for the token the client will refresh to
    deadline = time.monotonic() + 5
    while sim_server.ctx.tokens.authenticate(stale) is not None:
        assert time.monotonic() < deadline, "access token did not expire"
        time.sleep(0.05)
    # expiry unknown to the client: it sends the dead token, gets 401, refreshes, retries.
    creds = credentials_for(sim, oauth_client, flow.credentials.refresh_token)
    creds.token = stale
    profile = gmail_for(sim, creds).users().getProfile(userId="me").execute()
    assert profile["emailAddress"] == REP
    assert creds.token != stale


def test_gmail_call_after_password_change_fails_with_invalid_grant(
    sim: str, oauth_client: tuple[str, str, str]
) -> None:
    flow = connect(sim, oauth_client)
    creds = credentials_for(sim, oauth_client, flow.credentials.refresh_token)
    creds.token = flow.credentials.token
    gmail = gmail_for(sim, creds)
    assert gmail.users().getProfile(userId="me").execute()["emailAddress"] == REP
    SimClient(sim).revoke(REP)
    with pytest.raises(RefreshError, match="invalid_grant"):
        gmail.users().getProfile(userId="me").execute()
