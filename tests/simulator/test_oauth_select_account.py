"""prompt=select_account (R1b): Google's account chooser before the consent step.

The authorization request may ask for `prompt=consent select_account`
(space-separated, OpenID Connect). The page then first shows "Choose an
account": the accounts signed in to the browser (the simulator's mailboxes)
and "Use another account"; the chosen account comes to the Allow / Deny step.
The headless approval (`sim_user`, SimClient.consent) works whatever the
prompt. A prompt value Google does not know is its 400 invalid_request page.
"""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from google_auth_oauthlib.flow import Flow

from simulator.client import SimClient

READ = "https://www.googleapis.com/auth/gmail.readonly"
SEND = "https://www.googleapis.com/auth/gmail.send"
REP = "rep.chooser@example.com"
OTHER = "second.rep@example.com"


@pytest.fixture
def client(sim_server: Any) -> tuple[str, str, str]:
    c = next(c for c in sim_server.ctx.config.oauth_clients if c.redirect_uris)
    return c.client_id, c.client_secret, c.redirect_uris[0]


def auth_url(sim: str, client: tuple[str, str, str], prompt: str = "consent select_account", **extra: str) -> str:
    params = {
        "client_id": client[0], "redirect_uri": client[2], "response_type": "code",
        "scope": f"{READ} {SEND}", "state": "st-9", "access_type": "offline", "prompt": prompt, **extra,
    }
    return f"{sim}/o/oauth2/v2/auth?" + urlencode(params)


class Forms(HTMLParser):
    """Each form of a page: its method, action, hidden fields, other inputs and buttons."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append({"method": a.get("method", "get").lower(), "action": a["action"], "id": a.get("id"),
                               "hidden": [], "inputs": [], "buttons": []})
        elif tag == "input" and self.forms:
            kind = "hidden" if a.get("type") == "hidden" else "inputs"
            self.forms[-1][kind].append(a)
        elif tag == "button" and self.forms:
            self.forms[-1]["buttons"].append(a)


def page(url: str) -> tuple[requests.Response, list[dict[str, Any]]]:
    resp = requests.get(url, allow_redirects=False, timeout=10)
    parser = Forms()
    parser.feed(resp.text)
    return resp, parser.forms


def follow(sim: str, form: dict[str, Any], **fields: str) -> requests.Response:
    data = [(h["name"], h["value"]) for h in form["hidden"]] + list(fields.items())
    if form["method"] == "post":
        return requests.post(sim + form["action"], data=data, allow_redirects=False, timeout=10)
    return requests.get(sim + form["action"], params=data, allow_redirects=False, timeout=10)


def chooser(sim: str, client: tuple[str, str, str]) -> dict[str, dict[str, Any]]:
    resp, forms = page(auth_url(sim, client))
    assert resp.status_code == 200 and "Choose an account" in resp.text
    return {f["id"]: f for f in forms}


def consent_after_choosing(sim: str, client: tuple[str, str, str], **choice: str) -> dict[str, Any]:
    form_id = "accounts" if "account" in choice else "another"
    value = choice.get("account") or choice["typed"]
    resp = follow(sim, chooser(sim, client)[form_id], sim_account=value)
    assert resp.status_code == 200
    parser = Forms()
    parser.feed(resp.text)
    (form,) = parser.forms
    assert form["method"] == "post"
    return form


@pytest.fixture
def two_accounts(sim: str) -> None:
    for address in (REP, OTHER):
        SimClient(sim).create_mailbox(address)


def test_select_account_shows_the_chooser_before_consent(
    sim: str, client: tuple[str, str, str], two_accounts: None
) -> None:
    forms = chooser(sim, client)
    assert {b["value"] for b in forms["accounts"]["buttons"]} == {REP, OTHER}
    assert [i["name"] for i in forms["another"]["inputs"]] == ["sim_account"]
    assert not any(b.get("value") in ("allow", "deny") for f in forms.values() for b in f["buttons"])


def test_choosing_a_signed_in_account_then_allow_authorizes_that_account(
    sim: str, sim_server: Any, client: tuple[str, str, str], two_accounts: None
) -> None:
    form = consent_after_choosing(sim, client, account=OTHER)
    assert {"name": "sim_user", "value": OTHER, "type": "hidden"} in form["hidden"]
    assert {b["value"] for b in form["buttons"]} == {"allow", "deny"}
    resp = follow(sim, form, decision="allow", granted=READ)
    query = parse_qs(urlsplit(resp.headers["Location"]).query)
    assert resp.status_code == 302 and query["state"] == ["st-9"]
    token = requests.post(f"{sim}/token", data={
        "grant_type": "authorization_code", "code": query["code"][0], "redirect_uri": client[2],
        "client_id": client[0], "client_secret": client[1]}, timeout=10).json()
    assert sim_server.ctx.tokens.authenticate(token["access_token"]).address == OTHER


def test_use_another_account_takes_a_typed_address_and_creates_its_mailbox(
    sim: str, client: tuple[str, str, str], two_accounts: None
) -> None:
    form = consent_after_choosing(sim, client, typed="New.Person@Example.com")
    assert {"name": "sim_user", "value": "new.person@example.com", "type": "hidden"} in form["hidden"]
    resp = follow(sim, form, decision="allow", granted=READ)
    assert "code" in parse_qs(urlsplit(resp.headers["Location"]).query)
    assert "new.person@example.com" in SimClient(sim).mailboxes()


def test_deny_after_choosing_an_account_redirects_access_denied(
    sim: str, client: tuple[str, str, str], two_accounts: None
) -> None:
    resp = follow(sim, consent_after_choosing(sim, client, account=REP), decision="deny")
    assert parse_qs(urlsplit(resp.headers["Location"]).query) == {"error": ["access_denied"], "state": ["st-9"]}


def test_chooser_carries_the_authorization_request_through(
    sim: str, client: tuple[str, str, str], two_accounts: None
) -> None:
    hidden = {h["name"]: h["value"] for h in chooser(sim, client)["accounts"]["hidden"]}
    assert hidden["prompt"] == "consent select_account" and hidden["state"] == "st-9"
    assert hidden["client_id"] == client[0] and hidden["redirect_uri"] == client[2]


def test_without_select_account_the_consent_page_comes_first(sim: str, client: tuple[str, str, str]) -> None:
    resp, forms = page(auth_url(sim, client, prompt="consent"))
    assert resp.status_code == 200 and "Choose an account" not in resp.text
    assert any(b.get("value") == "allow" for b in forms[0]["buttons"])


def test_headless_consent_works_with_prompt_consent_select_account(
    sim: str, sim_server: Any, client: tuple[str, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    flow = Flow.from_client_config(
        {"web": {"client_id": client[0], "client_secret": client[1], "auth_uri": f"{sim}/o/oauth2/v2/auth",
                 "token_uri": f"{sim}/token"}},
        scopes=[READ, SEND], redirect_uri=client[2],
    )
    url, _ = flow.authorization_url(access_type="offline", prompt="consent select_account")
    assert "prompt=consent+select_account" in url
    token = flow.fetch_token(authorization_response=SimClient(sim).consent(url, REP))
    assert token["refresh_token"]
    assert sim_server.ctx.tokens.authenticate(token["access_token"]).address == REP


def test_chosen_account_must_be_an_email_address(sim: str, client: tuple[str, str, str]) -> None:
    resp = requests.get(auth_url(sim, client) + "&sim_account=not-an-address", allow_redirects=False, timeout=10)
    assert resp.status_code == 400 and "invalid_request" in resp.text


@pytest.mark.parametrize("prompt", ["select_acount", "consent login", "none consent", "none select_account"])
def test_unknown_or_conflicting_prompt_is_googles_invalid_request_page(
    sim: str, client: tuple[str, str, str], prompt: str
) -> None:
    for url in (auth_url(sim, client, prompt=prompt), auth_url(sim, client, prompt=prompt, sim_user=REP)):
        resp = requests.get(url, allow_redirects=False, timeout=10)
        assert resp.status_code == 400 and "Location" not in resp.headers
        assert "invalid_request" in resp.text and "Invalid parameter value for prompt" in resp.text
