"""R1 connect through the local stack, and everything the oauth function must refuse.

Real clients only: the CRM's HTTP calls, the simulator's headless consent,
the Firestore emulator read directly, the simulator's admin API for what
Google would show (watch, live tokens).
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
import requests

from devstack.rep_browser import RepBrowser
from shared.connect.oauth_state import new_claims, sign_state
from tests.e2e.oauth_steps import (
    MODIFY,
    RETURN_URL,
    SEND,
    SYNC_COLLECTIONS,
    all_documents,
    assert_nothing_stored,
    connect,
    consent,
    crm_for,
    docs,
    email_sync,
    follow_callback,
    outcome,
    seed_user,
)

pytestmark = pytest.mark.e2e

GMAIL = "rep.one@gmail.test"


@pytest.fixture
def crm(stack: Any, clean: Any, firestore_db: Any) -> Any:
    seed_user(firestore_db, "acme", "alice")
    return crm_for(stack)


def stored_refresh_token(shared_env: Any, address: str) -> str:
    from shared.crm import paths
    from shared.crm.mailboxes import load_refresh_token

    token = load_refresh_token(paths.mailbox_id(address))
    assert token
    return token


# --------------------------------------------------------------------------- R1 happy path

def test_r1_connect_marks_user_connected_with_watch_and_one_token(crm: Any, stack: Any, sim_client: Any,
                                                                  firestore_db: Any) -> None:
    assert connect(crm, sim_client, "acme", "alice", GMAIL) == {"status": "connected"}

    status = crm.status("acme", "alice")
    assert status["status"] == "connected"
    assert status["address"] == GMAIL
    assert status["autoBccAddress"].endswith("@bcc.localhost")
    assert status["connectedAt"]
    sync = email_sync(firestore_db, "acme", "alice")
    assert (sync["status"], sync["address"], sync["autoBccAddress"]) == ("connected", GMAIL, status["autoBccAddress"])

    google = sim_client.mailbox(GMAIL)
    assert google["watch"]["topicName"] == f"projects/{stack.project_id}/topics/gmail-watch"
    # every change, not only INBOX: all but the categories the account skips (shared/sync/watch_filter.py)
    assert google["watch"]["labelFilterBehavior"] == "exclude"
    assert google["watch"]["labelIds"] == ["CATEGORY_FORUMS", "CATEGORY_PROMOTIONS", "CATEGORY_SOCIAL"]
    assert google["activeTokens"] == 1


def test_r2_cursor_starts_at_the_mailbox_history_at_connection(crm: Any, sim_client: Any, firestore_db: Any) -> None:
    sim_client.create_mailbox(GMAIL)
    sim_client.deliver(GMAIL, b"From: old@example.com\r\nTo: rep.one@gmail.test\r\nSubject: before\r\n\r\nold\r\n")
    before = sim_client.mailbox(GMAIL)["historyId"]

    connect(crm, sim_client, "acme", "alice", GMAIL)

    (mailbox,) = docs(firestore_db, "sync_mailboxes").values()
    assert int(mailbox["historyId"]) >= int(before)
    assert mailbox["lastSyncedInternalDate"] > 0


def test_r1_connection_event_is_published(crm: Any, stack: Any, sim_client: Any) -> None:
    connect(crm, sim_client, "acme", "alice", GMAIL)
    events = [e for e in stack.crm_events(1) if e["type"] == "connection.status"]
    assert events and events[0]["status"] == "connected"
    assert (events[0]["accountId"], events[0]["userId"], events[0]["address"]) == ("acme", "alice", GMAIL)


def test_refresh_token_is_stored_encrypted_only(crm: Any, sim_client: Any, firestore_db: Any,
                                                shared_env: Any) -> None:
    connect(crm, sim_client, "acme", "alice", GMAIL)
    token = stored_refresh_token(shared_env, GMAIL)
    blob = json.dumps(all_documents(firestore_db), default=str)
    assert "sync_tokens/" in blob  # the scan saw the token document …
    assert token not in blob  # … and the token is nowhere in clear
    assert base64.b64encode(token.encode()).decode() not in blob


def test_refresh_token_never_reaches_the_function_log(crm: Any, stack: Any, sim_client: Any,
                                                      shared_env: Any) -> None:
    connect(crm, sim_client, "acme", "alice", GMAIL)
    token = stored_refresh_token(shared_env, GMAIL)
    crm.status("acme", "alice")
    assert crm.disconnect("acme", "alice").status_code == 200
    logs = {p.name: p.read_text(errors="replace") for p in stack.log_dir.glob("function-*.log")}
    assert "gmail connected" in logs["function-oauth_browser.log"]  # the logs we read are the functions'
    for name, text in logs.items():
        assert token not in text, name


# --------------------------------------------------------------------------- consent outcomes

def test_r1_unticked_send_permission_fails_with_missing_scopes_and_stores_nothing(
        crm: Any, sim_client: Any, firestore_db: Any) -> None:
    assert connect(crm, sim_client, "acme", "alice", GMAIL, scopes=MODIFY) == {
        "status": "error", "reason": "missing_scopes"}
    assert_nothing_stored(firestore_db)
    assert sim_client.mailbox(GMAIL)["watch"] is None


def test_r1_unticked_read_permission_fails_with_missing_scopes(crm: Any, sim_client: Any, firestore_db: Any) -> None:
    assert connect(crm, sim_client, "acme", "alice", GMAIL, scopes=SEND)["reason"] == "missing_scopes"
    assert_nothing_stored(firestore_db)


def test_r1_denied_consent_fails_with_access_denied(crm: Any, sim_client: Any, firestore_db: Any) -> None:
    assert connect(crm, sim_client, "acme", "alice", GMAIL, scopes="none") == {
        "status": "error", "reason": "access_denied"}
    assert_nothing_stored(firestore_db)


# --------------------------------------------------------------------------- state

def _callback_with_state(crm: Any, sim_client: Any, state: str) -> requests.Response:
    """A genuine code from the simulator, presented with the given state by the rep's own browser."""
    browser, cb = consent(crm, sim_client, "acme", "alice", GMAIL)
    parts = requests.models.PreparedRequest()
    parts.prepare_url(cb.split("?")[0], {"code": _query(cb)["code"], "state": state})
    return follow_callback(str(parts.url), browser)


def _query(url: str) -> dict[str, str]:
    from urllib.parse import parse_qs, urlsplit

    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_forged_state_is_refused_with_400_and_no_redirect(crm: Any, sim_client: Any, firestore_db: Any) -> None:
    resp = _callback_with_state(crm, sim_client, "forged.state")
    assert resp.status_code == 400
    assert resp.json()["error"] == "invalid_state"
    assert "Location" not in resp.headers
    assert_nothing_stored(firestore_db)


def test_state_signed_with_another_key_is_refused(crm: Any, sim_client: Any, firestore_db: Any) -> None:
    claims = new_claims("acme", "alice", "http://localhost:1/evil", time.time())
    resp = _callback_with_state(crm, sim_client, sign_state(b"not-the-key" * 3, claims))
    assert (resp.status_code, resp.json()["error"]) == (400, "invalid_state")
    assert_nothing_stored(firestore_db)


def test_tampered_state_is_refused(crm: Any, sim_client: Any, firestore_db: Any) -> None:
    browser, cb = consent(crm, sim_client, "acme", "alice", GMAIL)
    state = _query(cb)["state"]
    payload, mac = state.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body[4] = "http://localhost:1/elsewhere"  # redirect the rep somewhere else
    forged = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    resp = follow_callback(cb.replace(state, f"{forged}.{mac}"), browser)
    assert (resp.status_code, resp.json()["error"]) == (400, "invalid_state")
    assert_nothing_stored(firestore_db)


def test_missing_state_is_refused(crm: Any, stack: Any) -> None:
    resp = follow_callback(f"{stack.function_url('oauth_browser')}/callback?code=4/abc")
    assert (resp.status_code, resp.json()["error"]) == (400, "invalid_state")


def test_expired_state_redirects_with_state_expired_and_stores_nothing(crm: Any, stack: Any, sim_client: Any,
                                                                       firestore_db: Any) -> None:
    # A state we signed eleven minutes ago (the key is the stack's own oauth-state-key).
    claims = new_claims("acme", "alice", RETURN_URL, time.time() - 660)
    key = base64.b64decode(stack.secrets.oauth_state_key)
    resp = _callback_with_state(crm, sim_client, sign_state(key, claims))
    assert outcome(resp) == {"status": "error", "reason": "state_expired"}
    assert_nothing_stored(firestore_db)


def test_state_past_its_stored_expiry_is_refused(crm: Any, sim_client: Any, firestore_db: Any) -> None:
    from datetime import UTC, datetime, timedelta

    browser, cb = consent(crm, sim_client, "acme", "alice", GMAIL)
    (state_id,) = docs(firestore_db, "sync_oauth_states")
    firestore_db.document(f"sync_oauth_states/{state_id}").update(
        {"expiresAt": datetime.now(UTC) - timedelta(seconds=1)})
    assert outcome(follow_callback(cb, browser)) == {"status": "error", "reason": "state_expired"}
    assert_nothing_stored(firestore_db)


def test_replayed_state_is_refused_and_changes_nothing(crm: Any, sim_client: Any, firestore_db: Any) -> None:
    browser, cb = consent(crm, sim_client, "acme", "alice", GMAIL)
    assert outcome(follow_callback(cb, browser)) == {"status": "connected"}
    token_doc = docs(firestore_db, "sync_tokens")

    assert outcome(follow_callback(cb, browser)) == {"status": "error", "reason": "state_used"}
    assert docs(firestore_db, "sync_tokens") == token_doc
    assert sim_client.mailbox(GMAIL)["activeTokens"] == 1


def test_state_is_bound_to_its_return_url_and_keeps_its_query(crm: Any, sim_client: Any) -> None:
    browser, cb = consent(crm, sim_client, "acme", "alice", GMAIL, return_url=RETURN_URL + "?tab=gmail")
    resp = follow_callback(cb, browser)
    assert resp.headers["Location"] == RETURN_URL + "?tab=gmail&status=connected"


# --------------------------------------------------------------------------- /connect input

def test_return_url_off_the_allow_list_is_refused(crm: Any, firestore_db: Any) -> None:
    for bad in ("https://evil.example/cb", "http://localhost.evil.example/x", "javascript:alert(1)", "/relative"):
        resp = crm.post("/connect", {"accountId": "acme", "userId": "alice", "returnUrl": bad})
        assert resp.status_code == 400, bad
        assert resp.json()["error"] in ("return_url_not_allowed", "invalid_request")
    assert docs(firestore_db, "sync_oauth_states") == {}


def _google_query(crm: Any) -> dict[str, str]:
    """The query of the consent URL at Google that the CRM's authorization URL leads the browser to."""
    return _query(RepBrowser().open(crm.start("acme", "alice")))


def test_authorization_url_asks_offline_consent_with_pkce(crm: Any) -> None:
    q = _google_query(crm)
    assert (q["access_type"], q["code_challenge_method"]) == ("offline", "S256")
    assert "consent" in q["prompt"].split()
    assert set(q["scope"].split()) == {MODIFY, SEND}  # 0.3 (R33): gmail.modify includes reading
    assert len(q["code_challenge"]) == 43
    assert q["redirect_uri"].endswith("/callback")


def test_r1b_consent_request_offers_googles_account_chooser(crm: Any) -> None:
    assert _google_query(crm)["prompt"] == "consent select_account"


@pytest.mark.parametrize("route,method", [("/connect", "POST"), ("/disconnect", "POST"), ("/status", "GET"),
                                          ("/resync", "POST")])
@pytest.mark.parametrize("key", [None, "wrong-key"])
def test_crm_routes_require_the_api_key(crm: Any, firestore_db: Any, route: str, method: str,
                                         key: str | None) -> None:
    body = {"accountId": "acme", "userId": "alice", "returnUrl": RETURN_URL}
    headers = {} if key is None else {"Authorization": f"Bearer {key}"}
    resp = requests.request(method, f"{crm.oauth_url}{route}", headers=headers, timeout=30,
                            **({"json": body} if method == "POST" else {"params": body}))
    assert resp.status_code == 401
    assert resp.json()["error"] == "unauthorized"
    assert docs(firestore_db, "sync_oauth_states") == {}


def test_malformed_json_is_refused(crm: Any, firestore_db: Any) -> None:
    resp = requests.post(f"{crm.oauth_url}/connect", data=b'{"accountId": "acme",', timeout=30,
                         headers={**crm.headers(), "Content-Type": "application/json"})
    assert (resp.status_code, resp.json()["error"]) == (400, "malformed_json")
    assert docs(firestore_db, "sync_oauth_states") == {}


@pytest.mark.parametrize("body,field", [
    ({"accountId": 7, "userId": "alice", "returnUrl": RETURN_URL}, "accountId"),
    ({"accountId": "acme", "userId": ["alice"], "returnUrl": RETURN_URL}, "userId"),
    ({"accountId": "acme", "userId": "alice", "returnUrl": {"u": 1}}, "returnUrl"),
    ({"accountId": "acme", "userId": "alice"}, "returnUrl"),
    ({"accountId": "acme/../x", "userId": "alice", "returnUrl": RETURN_URL}, "accountId"),
])
def test_wrong_types_are_refused_naming_the_field(crm: Any, firestore_db: Any, body: dict[str, Any],
                                                  field: str) -> None:
    resp = crm.post("/connect", body)
    assert resp.status_code == 400
    assert resp.json()["field"] == field
    assert docs(firestore_db, "sync_oauth_states") == {}


def test_unknown_user_and_another_tenants_user_are_404(crm: Any, firestore_db: Any) -> None:
    seed_user(firestore_db, "globex", "bob")
    for account, user in (("acme", "nobody"), ("acme", "bob"), ("globex", "alice")):
        resp = crm.post("/connect", {"accountId": account, "userId": user, "returnUrl": RETURN_URL})
        assert (resp.status_code, resp.json()["error"]) == (404, "not_found")
        assert crm.get("/status", {"accountId": account, "userId": user}).status_code == 404
        assert crm.disconnect(account, user).status_code == 404
    assert docs(firestore_db, "sync_oauth_states") == {}


def test_unknown_route_and_wrong_method(crm: Any) -> None:
    assert requests.get(f"{crm.oauth_url}/nope", timeout=30).status_code == 404
    resp = requests.get(f"{crm.oauth_url}/connect", headers=crm.headers(), timeout=30)
    assert (resp.status_code, resp.json()["error"]) == (405, "method_not_allowed")


def test_status_of_a_user_who_never_connected_is_disconnected(crm: Any) -> None:
    assert crm.status("acme", "alice")["status"] == "disconnected"


def test_r16b_status_gives_a_user_who_never_connected_an_auto_bcc_address_that_routes_to_them(
        crm: Any, firestore_db: Any) -> None:
    from shared.connect.auto_bcc_route import token_from_address

    address = crm.status("acme", "alice")["autoBccAddress"]
    assert address and address.endswith("@bcc.localhost")
    token = token_from_address(address, "bcc.localhost")
    assert token  # an address on our domain, in the token format auto_bcc accepts
    route = firestore_db.document(f"sync_auto_bcc/{token}").get().to_dict()
    assert route == {"accountId": "acme", "userId": "alice", "address": address}  # how auto_bcc resolves it
    assert crm.status("acme", "alice")["autoBccAddress"] == address  # stable


def test_r16b_auto_bcc_address_stays_the_same_through_connect_and_disconnect(crm: Any, sim_client: Any) -> None:
    before = crm.status("acme", "alice")["autoBccAddress"]
    connect(crm, sim_client, "acme", "alice", GMAIL)
    assert crm.status("acme", "alice")["autoBccAddress"] == before
    assert crm.disconnect("acme", "alice").status_code == 200
    after = crm.status("acme", "alice")
    assert (after["status"], after["autoBccAddress"]) == ("disconnected", before)


def test_r16b_each_user_gets_their_own_auto_bcc_address(crm: Any, firestore_db: Any) -> None:
    seed_user(firestore_db, "acme", "bob")
    seed_user(firestore_db, "globex", "alice")
    addresses = {crm.status(a, u)["autoBccAddress"] for a, u in (("acme", "alice"), ("acme", "bob"),
                                                                   ("globex", "alice"))}
    assert len(addresses) == 3


# --------------------------------------------------------------------------- failures after consent

@pytest.mark.parametrize("method", ["gmail.users.getProfile", "gmail.users.watch"])
def test_gmail_failure_during_callback_leaves_nothing_behind(crm: Any, sim_client: Any, firestore_db: Any,
                                                             method: str) -> None:
    sim_client.set_faults({"seed": 1, "methods": {method: {"errorRate": 1.0, "codes": [400]}}})
    try:
        assert connect(crm, sim_client, "acme", "alice", GMAIL) == {"status": "error", "reason": "gmail_unavailable"}
    finally:
        sim_client.set_faults({})
    assert_nothing_stored(firestore_db)
    google = sim_client.mailbox(GMAIL)
    assert google["watch"] is None
    assert google["activeTokens"] == 0  # the abandoned grant was revoked


def test_user_deleted_during_consent_leaves_nothing_behind(crm: Any, sim_client: Any, firestore_db: Any) -> None:
    browser, callback = consent(crm, sim_client, "acme", "alice", GMAIL)
    firestore_db.document("accounts/acme/users/alice").delete()

    assert outcome(follow_callback(callback, browser)) == {"status": "error", "reason": "user_not_found"}

    for col in SYNC_COLLECTIONS:
        assert docs(firestore_db, col) == {}
    assert sim_client.mailbox(GMAIL)["watch"] is None
    assert sim_client.mailbox(GMAIL)["activeTokens"] == 0
