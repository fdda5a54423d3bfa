"""The simulator's OAuth endpoints on the wire: error pages, the consent page, token/revoke errors, discovery.

What a CRM developer's own OAuth code (not google-auth-oauthlib) sees, so the
answers are checked field by field against Google's.
"""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from simulator.client import SimClient

READ = "https://www.googleapis.com/auth/gmail.readonly"
SEND = "https://www.googleapis.com/auth/gmail.send"
EMAIL = "https://www.googleapis.com/auth/userinfo.email"
REP = "rep.wire@example.com"


@pytest.fixture
def client(sim_server: Any) -> tuple[str, str, str]:
    c = next(c for c in sim_server.ctx.config.oauth_clients if c.redirect_uris)
    return c.client_id, c.client_secret, c.redirect_uris[0]


def auth_url(sim: str, client: tuple[str, str, str], **overrides: str) -> str:
    params = {
        "client_id": client[0], "redirect_uri": client[2], "response_type": "code",
        "scope": f"{READ} {SEND}", "state": "st-1", "access_type": "offline",
    }
    params.update(overrides)
    return f"{sim}/o/oauth2/v2/auth?" + urlencode({k: v for k, v in params.items() if v != ""})


def get(url: str) -> requests.Response:
    return requests.get(url, allow_redirects=False, timeout=10)


def code_for(sim: str, client: tuple[str, str, str], scopes: str = "all", **overrides: str) -> str:
    loc = SimClient(sim).consent(auth_url(sim, client, **overrides), REP, scopes)
    return parse_qs(urlsplit(loc).query)["code"][0]


def exchange(sim: str, client: tuple[str, str, str], code: str, /, **extra: str) -> requests.Response:
    """POST /token for a code; `extra` overrides any form field (also `code`) to provoke errors."""
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": client[2],
            "client_id": client[0], "client_secret": client[1]}
    data.update(extra)
    return requests.post(f"{sim}/token", data=data, timeout=10)


# -- authorization endpoint errors: shown, never redirected --------------------------------


def test_unregistered_redirect_uri_is_an_error_page_not_a_redirect(sim: str, client: tuple[str, str, str]) -> None:
    resp = get(auth_url(sim, client, redirect_uri="http://evil.example/cb") + "&sim_user=a@b.com")
    assert resp.status_code == 400
    assert "Location" not in resp.headers
    assert "redirect_uri_mismatch" in resp.text


def test_redirect_uri_must_match_exactly(sim: str, client: tuple[str, str, str]) -> None:
    resp = get(auth_url(sim, client, redirect_uri=client[2] + "/") + "&sim_user=a@b.com")
    assert resp.status_code == 400 and "redirect_uri_mismatch" in resp.text


def test_unknown_client_is_invalid_client_page(sim: str, client: tuple[str, str, str]) -> None:
    resp = get(auth_url(sim, client, client_id="nobody.apps.googleusercontent.com"))
    assert resp.status_code == 401 and "invalid_client" in resp.text


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"response_type": ""}, "invalid_request"),
        ({"scope": ""}, "invalid_request"),
        ({"scope": "https://www.googleapis.com/auth/drive"}, "invalid_scope"),
        ({"code_challenge": "a" * 43, "code_challenge_method": "S512"}, "invalid_request"),
        ({"code_challenge": "short"}, "invalid_request"),
        ({"access_type": "forever"}, "invalid_request"),
    ],
)
def test_malformed_authorization_request_is_a_400_page(
    sim: str, client: tuple[str, str, str], overrides: dict[str, str], error: str
) -> None:
    resp = get(auth_url(sim, client, **overrides) + "&sim_user=a@b.com")
    assert resp.status_code == 400 and error in resp.text and "Location" not in resp.headers


def test_prompt_none_without_a_session_redirects_interaction_required(sim: str, client: tuple[str, str, str]) -> None:
    resp = get(auth_url(sim, client, prompt="none"))
    assert resp.status_code == 302
    assert parse_qs(urlsplit(resp.headers["Location"]).query) == {"error": ["interaction_required"], "state": ["st-1"]}


def test_headless_sim_scopes_must_be_requested_ones(sim: str, client: tuple[str, str, str]) -> None:
    resp = get(auth_url(sim, client) + "&" + urlencode({"sim_user": REP, "sim_scopes": "https://mail.google.com/"}))
    assert resp.status_code == 400


# -- the consent page --------------------------------------------------------------------------


class _Form(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.inputs: list[dict[str, str]] = []
        self.buttons: list[dict[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.action = a.get("action", "")
        elif tag == "input":
            self.inputs.append(a)
        elif tag == "button":
            self.buttons.append(a)


def consent_form(sim: str, client: tuple[str, str, str], **overrides: str) -> _Form:
    resp = get(auth_url(sim, client, **overrides))
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/html")
    form = _Form()
    form.feed(resp.text)
    return form


def submit(sim: str, form: _Form, decision: str, user: str, granted: list[str]) -> requests.Response:
    fields = [(i["name"], i["value"]) for i in form.inputs if i.get("type") == "hidden"]
    fields += [("sim_user", user), ("decision", decision)] + [("granted", s) for s in granted]
    return requests.post(sim + form.action, data=fields, allow_redirects=False, timeout=10)


def test_consent_page_lists_each_requested_scope_with_a_checkbox_and_allow_deny(
    sim: str, client: tuple[str, str, str]
) -> None:
    form = consent_form(sim, client)
    boxes = {i["value"] for i in form.inputs if i.get("type") == "checkbox"}
    assert boxes == {READ, SEND}
    assert {b["value"] for b in form.buttons} == {"allow", "deny"}


def test_consent_page_allow_with_one_box_unticked_grants_only_the_other(
    sim: str, sim_server: Any, client: tuple[str, str, str]
) -> None:
    resp = submit(sim, consent_form(sim, client), "allow", REP, [READ])
    assert resp.status_code == 302
    query = parse_qs(urlsplit(resp.headers["Location"]).query)
    assert query["state"] == ["st-1"]
    token = exchange(sim, client, query["code"][0]).json()
    assert token["scope"] == READ


def test_consent_page_deny_redirects_access_denied(sim: str, client: tuple[str, str, str]) -> None:
    resp = submit(sim, consent_form(sim, client), "deny", "", [])
    assert parse_qs(urlsplit(resp.headers["Location"]).query) == {"error": ["access_denied"], "state": ["st-1"]}


def test_consent_page_escapes_what_it_echoes(sim: str, client: tuple[str, str, str]) -> None:
    resp = get(auth_url(sim, client, state="'><script>x()</script>", login_hint='"><i>pwn'))
    assert resp.status_code == 200
    assert "<script>x()" not in resp.text and "<i>pwn" not in resp.text


# -- token endpoint ----------------------------------------------------------------------------


def test_token_answer_has_googles_fields(sim: str, client: tuple[str, str, str]) -> None:
    resp = exchange(sim, client, code_for(sim, client))
    body = resp.json()
    assert resp.status_code == 200 and resp.headers["Cache-Control"].startswith("no-cache")
    assert set(body) == {"access_token", "expires_in", "refresh_token", "scope", "token_type"}
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert set(body["scope"].split()) == {READ, SEND}


def test_client_secret_basic_authenticates_like_client_secret_post(sim: str, client: tuple[str, str, str]) -> None:
    basic = base64.b64encode(f"{client[0]}:{client[1]}".encode()).decode()
    resp = requests.post(
        f"{sim}/token",
        data={"grant_type": "authorization_code", "code": code_for(sim, client), "redirect_uri": client[2]},
        headers={"Authorization": f"Basic {basic}"},
        timeout=10,
    )
    assert resp.status_code == 200 and resp.json()["access_token"].startswith("ya29.")


def test_online_access_gets_no_refresh_token(sim: str, client: tuple[str, str, str]) -> None:
    body = exchange(sim, client, code_for(sim, client, access_type="online")).json()
    assert "refresh_token" not in body


@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        ({"client_secret": "wrong"}, 401, "invalid_client"),
        ({"client_id": "nobody"}, 401, "invalid_client"),
        ({"client_id": ""}, 400, "invalid_request"),
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
        ({"code": ""}, 400, "invalid_request"),
        ({"code": "4/0forged"}, 400, "invalid_grant"),
        ({"redirect_uri": "http://elsewhere.example/cb"}, 400, "redirect_uri_mismatch"),
    ],
)
def test_token_errors_are_googles(
    sim: str, client: tuple[str, str, str], change: dict[str, str], status: int, error: str
) -> None:
    resp = exchange(sim, client, code_for(sim, client), **change)
    assert resp.status_code == status
    assert resp.json()["error"] == error and isinstance(resp.json()["error_description"], str)


def test_refresh_token_grant_with_missing_token_is_invalid_request(sim: str, client: tuple[str, str, str]) -> None:
    resp = requests.post(f"{sim}/token", data={"grant_type": "refresh_token", "client_id": client[0],
                                              "client_secret": client[1]}, timeout=10)
    assert (resp.status_code, resp.json()["error"]) == (400, "invalid_request")


# -- revoke --------------------------------------------------------------------------------------


def test_revoke_unknown_token_is_400_invalid_token(sim: str) -> None:
    resp = requests.post(f"{sim}/revoke", data={"token": "1//unknown"}, timeout=10)
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_token"


def test_revoking_an_access_token_kills_the_refresh_token_too(sim: str, client: tuple[str, str, str]) -> None:
    body = exchange(sim, client, code_for(sim, client)).json()
    assert requests.post(f"{sim}/revoke", params={"token": body["access_token"]}, timeout=10).status_code == 200
    resp = requests.post(f"{sim}/token", data={"grant_type": "refresh_token", "refresh_token": body["refresh_token"],
                                              "client_id": client[0], "client_secret": client[1]}, timeout=10)
    assert resp.status_code == 400
    assert resp.json() == {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}


# -- discovery, userinfo, tokeninfo ------------------------------------------------------------


def test_openid_configuration_points_at_the_simulator(sim: str) -> None:
    doc = requests.get(f"{sim}/.well-known/openid-configuration", timeout=10).json()
    for key, path in [("authorization_endpoint", "/o/oauth2/v2/auth"), ("token_endpoint", "/token"),
                      ("revocation_endpoint", "/revoke"), ("userinfo_endpoint", "/oauth2/v3/userinfo")]:
        assert doc[key] == sim + path
        assert requests.options(doc[key], timeout=10).status_code < 500
    assert "S256" in doc["code_challenge_methods_supported"]


def test_short_email_scope_is_reported_as_userinfo_email_and_userinfo_returns_the_address(
    sim: str, client: tuple[str, str, str]
) -> None:
    body = exchange(sim, client, code_for(sim, client, scope=f"openid email {READ}")).json()
    assert set(body["scope"].split()) == {"openid", EMAIL, READ}
    auth = {"Authorization": f"Bearer {body['access_token']}"}
    v3 = requests.get(f"{sim}/oauth2/v3/userinfo", headers=auth, timeout=10).json()
    assert v3["email"] == REP and v3["email_verified"] is True and re.fullmatch(r"\d{21}", v3["sub"])
    v2 = requests.get(f"{sim}/oauth2/v2/userinfo", headers=auth, timeout=10).json()
    assert v2["email"] == REP and v2["id"] == v3["sub"]


def test_userinfo_without_email_scope_has_no_address(sim: str, client: tuple[str, str, str]) -> None:
    token = exchange(sim, client, code_for(sim, client)).json()["access_token"]
    body = requests.get(f"{sim}/oauth2/v3/userinfo", headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
    assert "email" not in body and "sub" in body


def test_userinfo_with_bad_token_is_401(sim: str) -> None:
    resp = requests.get(f"{sim}/oauth2/v3/userinfo", headers={"Authorization": "Bearer ya29.bad"}, timeout=10)
    assert resp.status_code == 401


def test_tokeninfo_reports_scope_and_lifetime(sim: str, client: tuple[str, str, str]) -> None:
    token = exchange(sim, client, code_for(sim, client, scope=f"email {READ}")).json()["access_token"]
    info = requests.get(f"{sim}/tokeninfo", params={"access_token": token}, timeout=10).json()
    assert set(info["scope"].split()) == {EMAIL, READ}
    assert info["email"] == REP and info["aud"] == client[0]
    assert 3590 <= int(info["expires_in"]) <= 3600
    bad = requests.get(f"{sim}/tokeninfo", params={"access_token": "ya29.bad"}, timeout=10)
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_token"


def test_every_gmail_scope_of_the_discovery_document_can_be_requested(sim: str, client: tuple[str, str, str]) -> None:
    from simulator.oauth import gmail_scopes

    scopes = sorted(gmail_scopes())
    assert "https://www.googleapis.com/auth/gmail.modify" in scopes and "https://mail.google.com/" in scopes
    body = exchange(sim, client, code_for(sim, client, scope=" ".join(scopes))).json()
    assert sorted(body["scope"].split()) == scopes
