"""R3 update, R14 one Gmail in several accounts, R4 disconnect, R5 re-auth, resync — through the local stack."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.e2e.oauth_steps import connect, crm_for, docs, email_sync, seed_user

pytestmark = pytest.mark.e2e

OLD = "rep.old@gmail.test"
NEW = "rep.new@gmail.test"
SHARED = "shared.rep@gmail.test"


@pytest.fixture
def crm(stack: Any, clean: Any, firestore_db: Any) -> Any:
    seed_user(firestore_db, "acme", "alice")
    seed_user(firestore_db, "globex", "bob")
    return crm_for(stack)


def mailbox_doc(db: Any, address: str) -> dict[str, Any]:
    from shared.crm import paths

    snap = db.document(f"sync_mailboxes/{paths.mailbox_id(address)}").get()
    assert snap.exists, address
    data: dict[str, Any] = snap.to_dict()
    return data


def token_doc_exists(db: Any, address: str) -> bool:
    from shared.crm import paths

    return bool(db.document(f"sync_tokens/{paths.mailbox_id(address)}").get().exists)


def refresh_is_refused(stack: Any, refresh_token: str) -> bool:
    """Ask the simulator's token endpoint, as google-auth would, whether the token still works."""
    resp = requests.post(f"{stack.simulator_url}/token", timeout=30, data={
        "grant_type": "refresh_token", "refresh_token": refresh_token,
        "client_id": stack.secrets.client_id, "client_secret": stack.secrets.client_secret})
    return resp.status_code == 400 and resp.json()["error"] == "invalid_grant"


def stored_token(address: str) -> str:
    from shared.crm import paths
    from shared.crm.mailboxes import load_refresh_token

    token = load_refresh_token(paths.mailbox_id(address))
    assert token
    return token


def deliver(sim: Any, address: str, subject: str) -> None:
    sim.deliver(address, f"From: someone@example.com\r\nTo: {address}\r\nSubject: {subject}\r\n\r\nhi\r\n".encode())


# --------------------------------------------------------------------------- R3

def test_r3_connecting_another_gmail_replaces_the_old_one(crm: Any, stack: Any, sim_client: Any, firestore_db: Any,
                                                          shared_env: Any) -> None:
    connect(crm, sim_client, "acme", "alice", OLD)
    old_token = stored_token(OLD)

    assert connect(crm, sim_client, "acme", "alice", NEW) == {"status": "connected"}

    assert crm.status("acme", "alice")["address"] == NEW
    (link,) = docs(firestore_db, "sync_links").values()
    assert link["address"] == NEW
    assert mailbox_doc(firestore_db, OLD)["status"] == "disconnected"
    assert not token_doc_exists(firestore_db, OLD)
    assert sim_client.mailbox(OLD)["watch"] is None
    assert refresh_is_refused(stack, old_token)
    assert sim_client.mailbox(NEW)["watch"] is not None


def test_r3_old_gmail_still_used_by_another_crm_user_keeps_its_watch(crm: Any, sim_client: Any,
                                                                       firestore_db: Any) -> None:
    connect(crm, sim_client, "acme", "alice", OLD)
    connect(crm, sim_client, "globex", "bob", OLD)

    connect(crm, sim_client, "acme", "alice", NEW)

    assert mailbox_doc(firestore_db, OLD)["status"] == "connected"
    assert token_doc_exists(firestore_db, OLD)
    assert sim_client.mailbox(OLD)["watch"] is not None
    assert crm.status("globex", "bob")["address"] == OLD


# --------------------------------------------------------------------------- R14

def test_r14_same_gmail_in_two_accounts_is_one_mailbox_with_two_links(crm: Any, sim_client: Any,
                                                                        firestore_db: Any) -> None:
    connect(crm, sim_client, "acme", "alice", SHARED)
    first = mailbox_doc(firestore_db, SHARED)
    deliver(sim_client, SHARED, "between the two connects")

    connect(crm, sim_client, "globex", "bob", SHARED)

    assert len(docs(firestore_db, "sync_mailboxes")) == 1
    assert len(docs(firestore_db, "sync_tokens")) == 1
    assert sorted((ln["accountId"], ln["userId"]) for ln in docs(firestore_db, "sync_links").values()) == [
        ("acme", "alice"), ("globex", "bob")]
    # One cursor, not restarted: a restart re-stamps connectedAt and resets the cursor to getProfile's
    # historyId; the sync itself may advance the cursor past the message delivered in between.
    after = mailbox_doc(firestore_db, SHARED)
    assert after["connectedAt"] == first["connectedAt"]
    assert int(after["historyId"]) >= int(first["historyId"])
    assert sim_client.mailbox(SHARED)["watch"] is not None
    assert crm.status("acme", "alice")["status"] == crm.status("globex", "bob")["status"] == "connected"
    assert crm.status("acme", "alice")["autoBccAddress"] != crm.status("globex", "bob")["autoBccAddress"]


# --------------------------------------------------------------------------- R4

def test_r4_disconnecting_one_of_two_links_keeps_the_watch(crm: Any, sim_client: Any, firestore_db: Any) -> None:
    connect(crm, sim_client, "acme", "alice", SHARED)
    connect(crm, sim_client, "globex", "bob", SHARED)

    assert crm.disconnect("acme", "alice").json() == {"status": "disconnected"}

    assert crm.status("acme", "alice")["status"] == "disconnected"
    assert email_sync(firestore_db, "acme", "alice")["status"] == "disconnected"
    assert crm.status("globex", "bob")["status"] == "connected"
    assert sim_client.mailbox(SHARED)["watch"] is not None
    assert token_doc_exists(firestore_db, SHARED)
    assert mailbox_doc(firestore_db, SHARED)["status"] == "connected"


def test_r4_disconnecting_the_last_link_stops_the_watch_and_revokes_the_token(
        crm: Any, stack: Any, sim_client: Any, firestore_db: Any, shared_env: Any) -> None:
    connect(crm, sim_client, "acme", "alice", SHARED)
    token = stored_token(SHARED)
    auto_bcc = crm.status("acme", "alice")["autoBccAddress"]

    assert crm.disconnect("acme", "alice").status_code == 200

    assert sim_client.mailbox(SHARED)["watch"] is None
    assert sim_client.mailbox(SHARED)["activeTokens"] == 0
    assert refresh_is_refused(stack, token)
    assert docs(firestore_db, "sync_tokens") == {}
    assert docs(firestore_db, "sync_links") == {}
    assert mailbox_doc(firestore_db, SHARED)["status"] == "disconnected"
    # 0.2 (R16b): a disconnected user keeps their Auto BCC address; every other field is null (0.3: no
    # missing scopes).
    assert crm.status("acme", "alice") == {"status": "disconnected", "address": None, "autoBccAddress": auto_bcc,
                                          "connectedAt": None, "lastSyncAt": None, "lastError": None,
                                          "missingScopes": []}
    events = [e for e in stack.crm_events(2) if e["type"] == "connection.status"]
    assert [e["status"] for e in events] == ["connected", "disconnected"]


def test_r4_disconnect_is_idempotent(crm: Any, sim_client: Any, firestore_db: Any) -> None:
    assert crm.disconnect("acme", "alice").status_code == 200  # never connected
    connect(crm, sim_client, "acme", "alice", SHARED)
    assert crm.disconnect("acme", "alice").status_code == 200
    assert crm.disconnect("acme", "alice").status_code == 200
    assert crm.status("acme", "alice")["status"] == "disconnected"
    assert docs(firestore_db, "sync_tokens") == {}


def test_r4_reconnecting_after_disconnect_starts_history_afresh(crm: Any, sim_client: Any, firestore_db: Any) -> None:
    connect(crm, sim_client, "acme", "alice", SHARED)
    crm.disconnect("acme", "alice")
    deliver(sim_client, SHARED, "while disconnected")
    now_history = sim_client.mailbox(SHARED)["historyId"]

    connect(crm, sim_client, "acme", "alice", SHARED)

    assert int(mailbox_doc(firestore_db, SHARED)["historyId"]) >= int(now_history)  # R2, R4: gap not imported


# --------------------------------------------------------------------------- R5

def test_r5_revoked_access_marks_reauth_required_and_reconnect_keeps_the_cursor(
        crm: Any, stack: Any, sim_client: Any, firestore_db: Any, shared_env: Any) -> None:
    from shared.crm import paths
    from shared.crm.mailboxes import read_mailbox
    from shared.gmail.credentials import ReauthRequired, forget_access_token, open_gmail

    connect(crm, sim_client, "acme", "alice", SHARED)
    connect(crm, sim_client, "globex", "bob", SHARED)
    cursor = mailbox_doc(firestore_db, SHARED)["historyId"]
    stack.crm_events(2)  # the two "connected" events

    assert sim_client.revoke(SHARED) >= 1  # the rep changed their Google password
    deliver(sim_client, SHARED, "arrives while access is revoked")
    mailbox_id = paths.mailbox_id(SHARED)
    forget_access_token(mailbox_id)
    with pytest.raises(ReauthRequired):
        open_gmail(read_mailbox(mailbox_id))  # the next Gmail call of any function

    assert crm.status("acme", "alice")["status"] == "reauth_required"
    assert crm.status("globex", "bob")["status"] == "reauth_required"
    events = stack.crm_events(2)
    assert sorted((e["accountId"], e["status"]) for e in events) == [
        ("acme", "reauth_required"), ("globex", "reauth_required")]

    assert connect(crm, sim_client, "acme", "alice", SHARED) == {"status": "connected"}

    assert crm.status("acme", "alice")["status"] == "connected"
    assert crm.status("globex", "bob")["status"] == "connected"  # one mailbox: both links restored
    assert mailbox_doc(firestore_db, SHARED)["historyId"] == cursor  # the gap will be synced
    assert open_gmail(read_mailbox(mailbox_id)).address == SHARED


def test_r5_a_refusal_of_a_token_the_rep_has_since_replaced_leaves_the_new_connection_connected(
        crm: Any, sim_client: Any, firestore_db: Any, shared_env: Any) -> None:
    """A sync pass or a send read the refresh token, the rep connected again meanwhile (a new token), then
    Google refused the old one: the refusal is about a token nobody uses any more."""
    from shared.crm import paths
    from shared.gmail.credentials import mark_reauth_required

    connect(crm, sim_client, "acme", "alice", SHARED)
    old = stored_token(SHARED)
    connect(crm, sim_client, "acme", "alice", SHARED)
    assert stored_token(SHARED) != old

    mark_reauth_required(paths.mailbox_id(SHARED), SHARED, old)

    assert mailbox_doc(firestore_db, SHARED)["status"] == "connected"
    assert crm.status("acme", "alice")["status"] == "connected"


def test_r5_a_refusal_of_the_stored_token_marks_reauth_required(crm: Any, sim_client: Any, firestore_db: Any,
                                                                shared_env: Any) -> None:
    from shared.crm import paths
    from shared.gmail.credentials import mark_reauth_required

    connect(crm, sim_client, "acme", "alice", SHARED)

    mark_reauth_required(paths.mailbox_id(SHARED), SHARED, stored_token(SHARED))

    assert mailbox_doc(firestore_db, SHARED)["status"] == "reauth_required"
    assert crm.status("acme", "alice")["status"] == "reauth_required"


# --------------------------------------------------------------------------- resync

def test_resync_is_accepted_for_a_connected_user(crm: Any, sim_client: Any) -> None:
    connect(crm, sim_client, "acme", "alice", SHARED)
    resp = crm.post("/resync", {"accountId": "acme", "userId": "alice"})
    assert (resp.status_code, resp.json()) == (202, {"status": "queued"})


def test_resync_of_a_user_without_gmail_is_409_not_connected(crm: Any) -> None:
    resp = crm.post("/resync", {"accountId": "acme", "userId": "alice"})
    assert (resp.status_code, resp.json()["error"]) == (409, "not_connected")


def test_resync_syncs_mail_whose_notification_was_lost(crm: Any, sim_client: Any, firestore_db: Any) -> None:
    import time

    from tests.e2e.oauth_steps import seed_contact

    seed_contact(firestore_db, "acme", "c1", "buyer@client.example")
    connect(crm, sim_client, "acme", "alice", SHARED)
    sim_client.set_faults({"seed": 1, "notifications": {"dropRate": 1.0}})
    try:
        sim_client.deliver(SHARED, f"From: buyer@client.example\r\nTo: {SHARED}\r\nSubject: lost\r\n"
                                   "Message-ID: <lost-1@client.example>\r\n\r\nhello\r\n".encode())
        assert crm.post("/resync", {"accountId": "acme", "userId": "alice"}).status_code == 202
        deadline = time.monotonic() + 30
        found: dict[str, Any] = {}
        while time.monotonic() < deadline and not found:
            found = docs(firestore_db, "accounts/acme/conversations/c1/messages")
            time.sleep(0.2)
    finally:
        sim_client.set_faults({})
    assert [m["subject"] for m in found.values()] == ["lost"]


# --------------------------------------------------------------------------- R5b

def _mail_from_buyer(sim: Any, address: str, subject: str) -> None:
    sim.deliver(address, f"From: buyer@client.example\r\nTo: {address}\r\nSubject: {subject}\r\n"
                         f"Message-ID: <{subject.replace(' ', '-')}@client.example>\r\n\r\nhello\r\n".encode())


def _revoke_and_wait_for_reauth(crm: Any, sim: Any, address: str, account: str, user: str) -> None:
    """The rep's Google password changes, then mail arrives: its notification finds the grant dead (R5)."""
    from tests.e2e.sync_steps import wait_for

    assert sim.revoke(address) >= 1
    _mail_from_buyer(sim, address, "while reauth required")
    wait_for(lambda: crm.status(account, user)["status"] == "reauth_required", what="reauth_required")


def _logged_subjects(db: Any, timeout: float) -> list[str]:
    from tests.e2e.sync_steps import wait_for

    found = wait_for(lambda: docs(db, "accounts/acme/conversations/c1/messages"), timeout=timeout,
                     what="the message in the CRM")
    return [m["subject"] for m in found.values()]


def test_r5b_mail_that_arrived_while_reauth_required_syncs_right_after_reconnect(
        crm: Any, sim_client: Any, firestore_db: Any) -> None:
    from tests.e2e.oauth_steps import seed_contact

    seed_contact(firestore_db, "acme", "c1", "buyer@client.example")
    connect(crm, sim_client, "acme", "alice", SHARED)
    _revoke_and_wait_for_reauth(crm, sim_client, SHARED, "acme", "alice")
    assert docs(firestore_db, "accounts/acme/conversations/c1/messages") == {}

    assert connect(crm, sim_client, "acme", "alice", SHARED) == {"status": "connected"}

    # No new mail, no notification, no sweep, no /resync: the reconnect itself asks for the sync.
    assert _logged_subjects(firestore_db, timeout=15) == ["while reauth required"]


def test_r5b_update_to_a_gmail_that_kept_its_cursor_syncs_the_gap_right_away(
        crm: Any, sim_client: Any, firestore_db: Any) -> None:
    from tests.e2e.oauth_steps import seed_contact

    seed_contact(firestore_db, "acme", "c1", "buyer@client.example")
    connect(crm, sim_client, "globex", "bob", SHARED)
    connect(crm, sim_client, "acme", "alice", OLD)
    _revoke_and_wait_for_reauth(crm, sim_client, SHARED, "globex", "bob")

    assert connect(crm, sim_client, "acme", "alice", SHARED) == {"status": "connected"}  # R3: OLD -> SHARED

    assert _logged_subjects(firestore_db, timeout=15) == ["while reauth required"]
