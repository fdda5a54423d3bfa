"""R24: connecting is bound to the browser that opens the authorization URL first.

The CRM's `authorizationUrl` leads to `oauth_browser`'s `/start`, a page whose
"Continue to Google" button (a POST) sets a short-lived session cookie and
redirects to Google — a GET alone binds nothing, so a mail link scanner that
opens the URL first does not lock the rep out; `/callback` accepts
Google's redirect only from the browser that carries that cookie. Each browser
here is its own cookie jar (devstack.rep_browser.RepBrowser).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from devstack.rep_browser import RepBrowser, consent_in_browser
from tests.e2e.oauth_steps import (
    RETURN_URL,
    assert_nothing_stored,
    consent,
    crm_for,
    docs,
    follow_callback,
    outcome,
    seed_user,
)

pytestmark = pytest.mark.e2e

GMAIL = "rep.browser@gmail.test"
ATTACKER_GMAIL = "mallory@gmail.test"


@pytest.fixture
def crm(stack: Any, clean: Any, firestore_db: Any) -> Any:
    seed_user(firestore_db, "acme", "alice")
    return crm_for(stack)


def set_cookie_header(resp: requests.Response) -> str:
    header = resp.headers.get("Set-Cookie", "")
    assert header, f"no cookie set: {resp.status_code} {resp.headers}"
    return header


def test_r24_the_browser_that_opened_the_url_connects(crm: Any, sim_client: Any, firestore_db: Any) -> None:
    browser, callback = consent(crm, sim_client, "acme", "alice", GMAIL)
    assert outcome(follow_callback(callback, browser)) == {"status": "connected"}
    assert crm.status("acme", "alice")["address"] == GMAIL


def test_r24_start_sets_a_short_lived_http_only_lax_cookie_and_redirects_to_google(crm: Any, stack: Any) -> None:
    resp = RepBrowser().click_continue(crm.start("acme", "alice"))
    assert resp.status_code == 302
    assert resp.headers["Location"].startswith(f"{stack.simulator_url}/o/oauth2/v2/auth?")
    assert resp.headers["Cache-Control"] == "no-store"
    attrs = [a.strip().lower() for a in set_cookie_header(resp).split(";")]
    assert "httponly" in attrs and "samesite=lax" in attrs and "path=/" in attrs
    assert "secure" not in attrs  # plain-http localhost only; production cookies are Secure (unit spec)
    max_age = next(int(a.split("=")[1]) for a in attrs if a.startswith("max-age="))
    assert 0 < max_age <= 600


def test_r24_callback_in_another_browser_fails_with_session_mismatch_and_stores_nothing(
        crm: Any, sim_client: Any, firestore_db: Any) -> None:
    _reps_browser, callback = consent(crm, sim_client, "acme", "alice", ATTACKER_GMAIL)

    resp = follow_callback(callback, RepBrowser())  # the callback URL replayed in a browser that never opened /start

    assert outcome(resp) == {"status": "error", "reason": "session_mismatch"}
    assert_nothing_stored(firestore_db)
    assert sim_client.mailbox(ATTACKER_GMAIL)["activeTokens"] == 0  # the code was never redeemed
    assert sim_client.mailbox(ATTACKER_GMAIL)["watch"] is None


def test_r24_a_foreign_callback_does_not_spend_the_state_of_the_reps_browser(
        crm: Any, sim_client: Any, firestore_db: Any) -> None:
    browser, callback = consent(crm, sim_client, "acme", "alice", GMAIL)
    assert outcome(follow_callback(callback, RepBrowser()))["reason"] == "session_mismatch"

    assert outcome(follow_callback(callback, browser)) == {"status": "connected"}


def test_r24_url_opened_in_a_second_browser_is_sent_back_with_session_mismatch(
        crm: Any, sim_client: Any, firestore_db: Any) -> None:
    url = crm.start("acme", "alice")
    RepBrowser().open(url)  # the rep's browser opened it first

    resp = RepBrowser().click_continue(url)

    assert outcome(resp) == {"status": "error", "reason": "session_mismatch"}
    assert "Set-Cookie" not in resp.headers
    assert_nothing_stored(firestore_db)


def test_r24_the_same_browser_may_open_the_url_again(crm: Any, sim_client: Any) -> None:
    url = crm.start("acme", "alice")
    browser = RepBrowser()
    first = browser.open(url)
    again = browser.open(url)  # a reload, or the rep went back from Google's page
    assert again == first
    callback = sim_client.consent(again, GMAIL)
    assert outcome(follow_callback(callback, browser)) == {"status": "connected"}


def test_r24_callback_deletes_the_session_cookie(crm: Any, sim_client: Any) -> None:
    browser, callback = consent(crm, sim_client, "acme", "alice", GMAIL)
    assert browser.session.cookies  # set by /start
    resp = follow_callback(callback, browser)
    assert outcome(resp) == {"status": "connected"}
    assert "max-age=0" in set_cookie_header(resp).lower()
    assert not browser.session.cookies


def test_r24_two_connect_tabs_in_one_browser_do_not_overwrite_each_other(
        crm: Any, sim_client: Any, firestore_db: Any) -> None:
    seed_user(firestore_db, "acme", "bob")
    browser = RepBrowser()
    first = sim_client.consent(browser.open(crm.start("acme", "alice")), GMAIL)
    second = sim_client.consent(browser.open(crm.start("acme", "bob")), "rep.other@gmail.test")
    assert outcome(follow_callback(second, browser)) == {"status": "connected"}
    assert outcome(follow_callback(first, browser)) == {"status": "connected"}


def test_r24_replayed_callback_is_refused_in_any_browser(crm: Any, sim_client: Any, firestore_db: Any) -> None:
    browser, callback = consent(crm, sim_client, "acme", "alice", GMAIL)
    assert outcome(follow_callback(callback, browser)) == {"status": "connected"}
    stored = {col: docs(firestore_db, col) for col in ("sync_tokens", "sync_links")}

    assert outcome(follow_callback(callback, browser))["reason"] == "state_used"
    assert outcome(follow_callback(callback, RepBrowser()))["reason"] in ("state_used", "session_mismatch")
    assert {col: docs(firestore_db, col) for col in ("sync_tokens", "sync_links")} == stored
    assert sim_client.mailbox(GMAIL)["activeTokens"] == 1


def test_r24_start_with_a_forged_state_is_400_and_sets_no_cookie(crm: Any, stack: Any) -> None:
    resp = RepBrowser().get(f"{stack.function_url('oauth_browser')}/start?state=forged.state")
    assert (resp.status_code, resp.json()["error"]) == (400, "invalid_state")
    assert "Set-Cookie" not in resp.headers and "Location" not in resp.headers


def test_authorization_url_is_the_public_start_route_not_google(crm: Any, stack: Any) -> None:
    url = urlsplit(crm.start("acme", "alice"))
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{stack.function_url('oauth_browser')}/start"
    assert set(parse_qs(url.query)) == {"state"}


def test_browser_routes_answer_their_methods_only_and_the_crm_routes_are_not_there(crm: Any, stack: Any) -> None:
    base = stack.function_url("oauth_browser")
    for method, route in (("PUT", "/start"), ("POST", "/callback")):
        resp = requests.request(method, f"{base}{route}", timeout=30)
        assert (resp.status_code, resp.json()["error"]) == (405, "method_not_allowed")
    for route in ("/connect", "/status", "/disconnect", "/resync"):
        assert requests.get(f"{base}{route}", timeout=30).status_code == 404
    assert requests.get(f"{crm.oauth_url}/callback", timeout=30).status_code == 404  # moved to oauth_browser


def test_return_url_of_a_refused_start_is_the_signed_one(crm: Any) -> None:
    url = crm.start("acme", "alice", return_url=RETURN_URL + "?tab=gmail")
    RepBrowser().open(url)
    loc = RepBrowser().click_continue(url).headers["Location"]
    assert loc == RETURN_URL + "?tab=gmail&status=error&reason=session_mismatch"


# ---- issue 23: a GET of the authorization URL binds nothing (mail link scanners open every URL first)


def scanner_opens(url: str) -> requests.Response:
    """A mail link scanner: fetches the URL (HEAD, then GET, as Safe Links and friends do), clicks nothing."""
    scanner = RepBrowser()
    scanner.session.head(url, allow_redirects=False, timeout=30)
    return scanner.get(url)


def test_r24_a_link_scanner_opening_the_url_first_does_not_lock_the_rep_out(
        crm: Any, sim_client: Any, firestore_db: Any) -> None:
    url = crm.start("acme", "alice")
    for _ in range(2):
        seen = scanner_opens(url)
        assert seen.status_code == 200 and "Set-Cookie" not in seen.headers

    browser, callback = consent_in_browser(sim_client, url, GMAIL)  # the rep, after the scanners

    assert outcome(follow_callback(callback, browser)) == {"status": "connected"}
    assert crm.status("acme", "alice")["address"] == GMAIL


def test_r24_start_page_is_inert_and_only_its_button_continues(crm: Any, stack: Any) -> None:
    url = crm.start("acme", "alice")
    page = RepBrowser().get(url)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert f"form-action 'self' {stack.simulator_url}" in csp  # the POST's redirect goes on to Google only
    assert page.headers["Cache-Control"] == "no-store" and page.headers["Referrer-Policy"] == "no-referrer"
    assert "<script" not in page.text.lower()
    assert 'method="post"' in page.text and "data-oauth-start" in page.text


def test_r24_continue_posted_from_another_site_is_refused_and_binds_nothing(
        crm: Any, stack: Any, sim_client: Any) -> None:
    url = crm.start("acme", "alice")
    state = parse_qs(urlsplit(url).query)["state"][0]
    forged = RepBrowser().session.post(f"{stack.function_url('oauth_browser')}/start", data={"state": state},
                                       headers={"Sec-Fetch-Site": "cross-site"}, allow_redirects=False, timeout=30)
    assert (forged.status_code, forged.json()["error"]) == (403, "cross_site_request")
    assert "Set-Cookie" not in forged.headers
    browser, callback = consent_in_browser(sim_client, url, GMAIL)
    assert outcome(follow_callback(callback, browser)) == {"status": "connected"}
