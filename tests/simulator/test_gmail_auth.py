"""Bearer tokens on the Gmail endpoints: 401 for unknown, expired or revoked tokens; scopes (403)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests
from google.auth.exceptions import RefreshError
from googleapiclient.errors import HttpError

from simulator.app import BackgroundServer
from tests.simulator.conftest import READ, SEND, b64, credentials, gmail_service, rfc822

REP = "rep@example.com"
METADATA = "https://www.googleapis.com/auth/gmail.metadata"


def profile(sim: str, auth: str | None) -> requests.Response:
    headers = {"Authorization": auth} if auth is not None else {}
    return requests.get(f"{sim}/gmail/v1/users/me/profile", headers=headers, timeout=5)


def test_unknown_token_is_401_with_googles_body_and_challenge(sim: str) -> None:
    resp = profile(sim, "Bearer ya29.not-a-token")
    assert resp.status_code == 401
    err = resp.json()["error"]
    assert err["status"] == "UNAUTHENTICATED" and err["errors"][0]["reason"] == "authError"
    assert err["errors"][0]["location"] == "Authorization"
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


def test_missing_token_is_401_required(sim: str) -> None:
    resp = profile(sim, None)
    assert resp.status_code == 401 and resp.json()["error"]["errors"][0]["reason"] == "required"


def test_expired_token_is_401(sim: str, token_for: Callable[..., str]) -> None:
    requests.put(f"{sim}/sim/settings", json={"accessTokenTtlSeconds": 0}, timeout=5).raise_for_status()
    assert profile(sim, f"Bearer {token_for(REP)}").status_code == 401


def test_client_refreshes_an_expired_token_and_retries(sim: str, sim_server: BackgroundServer) -> None:
    requests.put(f"{sim}/sim/settings", json={"accessTokenTtlSeconds": 0}, timeout=5).raise_for_status()
    creds = credentials(sim_server, REP)
    old = creds.token
    requests.put(f"{sim}/sim/settings", json={"accessTokenTtlSeconds": 3600}, timeout=5).raise_for_status()
    gmail = gmail_service(sim, creds)
    assert gmail.users().getProfile(userId="me").execute()["emailAddress"] == REP
    assert creds.token != old


def test_revoked_mailbox_answers_401_and_refresh_fails_invalid_grant(sim: str, sim_server: BackgroundServer) -> None:
    creds = credentials(sim_server, REP)
    gmail = gmail_service(sim, creds)
    gmail.users().getProfile(userId="me").execute()
    revoked = requests.post(f"{sim}/sim/mailboxes/{REP}/revoke", timeout=5).json()["revoked"]
    assert revoked >= 1
    assert profile(sim, f"Bearer {creds.token}").status_code == 401
    with pytest.raises(RefreshError) as err:
        gmail.users().getProfile(userId="me").execute()
    assert "invalid_grant" in str(err.value)
    assert requests.get(f"{sim}/sim/mailboxes/{REP}", timeout=5).json()["activeTokens"] == 0


def test_send_only_token_cannot_read(sim: str, token_for: Callable[..., str]) -> None:
    gmail = gmail_service(sim, token_for(REP, (SEND,)))
    with pytest.raises(HttpError) as err:
        gmail.users().messages().list(userId="me").execute()
    assert err.value.resp.status == 403
    assert err.value.error_details[0]["reason"] == "insufficientPermissions"


def test_read_only_token_cannot_send(sim: str, token_for: Callable[..., str]) -> None:
    gmail = gmail_service(sim, token_for(REP, (READ,)))
    with pytest.raises(HttpError) as err:
        gmail.users().messages().send(userId="me", body={"raw": b64(rfc822(REP, "a@b.example", "x"))}).execute()
    assert err.value.resp.status == 403


def test_send_only_token_can_send(sim: str, token_for: Callable[..., str]) -> None:
    gmail = gmail_service(sim, token_for(REP, (SEND,)))
    sent = gmail.users().messages().send(userId="me", body={"raw": b64(rfc822(REP, "a@b.example", "x"))}).execute()
    assert sent["labelIds"] == ["SENT"]


def test_metadata_scope_refuses_full_format(sim: str, token_for: Callable[..., str]) -> None:
    gmail = gmail_service(sim, token_for(REP, (METADATA,)))
    sent_id = gmail_service(sim, token_for(REP, (SEND,))).users().messages().send(
        userId="me", body={"raw": b64(rfc822(REP, "a@b.example", "x"))}
    ).execute()["id"]
    assert gmail.users().messages().get(userId="me", id=sent_id, format="metadata").execute()["id"] == sent_id
    with pytest.raises(HttpError) as err:
        gmail.users().messages().get(userId="me", id=sent_id, format="full").execute()
    assert err.value.resp.status == 403


def test_gmail_answers_only_after_auth(sim: str) -> None:
    """Faults and quota apply to authenticated calls only: an anonymous call is 401 even under 100 % errors."""
    requests.put(f"{sim}/sim/faults", json={"methods": {"*": {"errorRate": 1, "codes": [503]}}}, timeout=5)
    assert profile(sim, "Bearer nope").status_code == 401
