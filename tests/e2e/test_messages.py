"""R32 and R33 through the local stack: mail kept whole, and the CRM's changes made in Gmail.

R32: a contact's mail with a 3 MB body and a 200 KB attachment syncs; the
`messages` function's GET /body gives the body whole and `attachments` the
bytes, both from Cloud Storage (the emulator), and both still do after the rep
disconnected (no Gmail call). R33: two reps of one account got the same mail;
the CRM marks it read, starred, then trashed through POST /modify, and each
change shows in both reps' simulated mailboxes, with one `message.updated`
(the modify's own) and none when Gmail reports the change back. A connection
made before 0.3 (a gmail.readonly grant) reports gmail.modify missing and is
refused 409 `missing_scopes`.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.e2e.oauth_steps import crm_for
from tests.e2e.sync_steps import connect_rep, mail, messages_of, seed_contact, wait_for, wait_synced

pytestmark = pytest.mark.e2e

ALICE = "alice.rep@gmail.test"
BOB = "bob.rep@gmail.test"
CARLA = "carla@client.test"
MODIFY = "https://www.googleapis.com/auth/gmail.modify"
READONLY = "https://www.googleapis.com/auth/gmail.readonly"
SEND = "https://www.googleapis.com/auth/gmail.send"
BODY = ("Grüße aus Köln ✓ " * 150_000)[:2_350_000]  # 3.0 MB of UTF-8, multi-byte characters
ATTACHMENT = bytes(range(256)) * 800  # 200 KB, binary


def _crm(stack: Any, method: str, function: str, path: str, **kw: Any) -> requests.Response:
    return requests.request(method, stack.function_url(function) + path, timeout=120,
                            headers={"Authorization": f"Bearer {stack.secrets.crm_api_key}"}, **kw)


def _only_message(firestore_db: Any) -> tuple[dict[str, str], dict[str, Any]]:
    ((path, msg),) = wait_for(lambda: list(messages_of(firestore_db, "acme").items()), what="the synced mail")
    conversation_id, message_id = path.split("/")
    return {"accountId": "acme", "conversationId": conversation_id, "messageId": message_id}, msg


def test_r32_a_3mb_body_and_200kb_attachment_read_back_whole_before_and_after_disconnect(
        stack: Any, clean: Any, firestore_db: Any, sim_client: Any) -> None:
    connect_rep(stack, sim_client, firestore_db, "acme", "alice", ALICE, "alice@acme.test")
    seed_contact(firestore_db, "acme", "carla", CARLA)
    sim_client.deliver(ALICE, mail(f"Carla <{CARLA}>", ALICE, "The whole story", BODY,
                                   attachments=[("data.bin", "application/octet-stream", ATTACHMENT)]))
    wait_synced(firestore_db, sim_client, ALICE, timeout=60)
    ids, msg = _only_message(firestore_db)
    assert msg["truncated"] is True and len(msg["text"].encode()) < len(BODY.encode())  # a preview on the document
    assert msg["stored"]["text"]["bytes"] == len(BODY.encode()) + 1  # the MIME body ends with a line break
    (att,) = msg["attachments"]
    assert att["storageObject"].startswith("accounts/acme/")

    def read_back() -> None:
        body = _crm(stack, "GET", "messages", "/body", params=ids)
        assert body.status_code == 200, body.text
        assert body.json()["text"].rstrip("\n") == BODY
        got = _crm(stack, "GET", "attachments", "/", params={**ids, "attachmentId": att["gmailAttachmentId"]})
        assert got.status_code == 200, got.text
        assert got.content == ATTACHMENT

    kept = sim_client.stats()["calls"][ALICE].get("attachments.get")  # the sync's own fetch
    read_back()
    assert crm_for(stack).disconnect("acme", "alice").status_code == 200
    read_back()
    assert sim_client.stats()["calls"][ALICE].get("attachments.get") == kept  # reading back asked Gmail nothing


def _two_reps_got_it(stack: Any, firestore_db: Any, sim_client: Any) -> dict[str, str]:
    seed_contact(firestore_db, "acme", "carla", CARLA)
    connect_rep(stack, sim_client, firestore_db, "acme", "alice", ALICE, "alice@acme.test")
    connect_rep(stack, sim_client, firestore_db, "acme", "bob", BOB, "bob@acme.test")
    raw = mail(f"Carla <{CARLA}>", ALICE, "For both of you", "Hi both", cc=[BOB])
    sim_client.deliver(ALICE, raw)
    sim_client.deliver(BOB, raw)
    for rep in (ALICE, BOB):
        wait_synced(firestore_db, sim_client, rep)
    path = wait_for(lambda: sorted(messages_of(firestore_db, "acme")), what="the synced mail")[0]
    conversation_id, message_id = path.split("/")
    return {"accountId": "acme", "conversationId": conversation_id, "messageId": message_id}


def _labels(sim_client: Any, rep: str) -> set[str]:
    (m,) = [m for m in sim_client.messages(rep) if "SENT" not in m.get("labelIds", [])]
    return set(m.get("labelIds") or [])


def _settled_updates(stack: Any, firestore_db: Any, sim_client: Any) -> list[dict[str, Any]]:
    """The message.updated events once both mailboxes synced Gmail's report of the change."""
    for rep in (ALICE, BOB):
        wait_synced(firestore_db, sim_client, rep)
    return [e for e in stack.crm_events(10, timeout=3) if e.get("type") == "message.updated"]


def test_r33_crm_read_star_trash_show_in_both_reps_mailboxes_with_no_echo_event(
        stack: Any, clean: Any, firestore_db: Any, sim_client: Any) -> None:
    from shared.crm import paths

    ids = _two_reps_got_it(stack, firestore_db, sim_client)
    stack.purge_subscriptions()
    resp = _crm(stack, "POST", "messages", "/modify", json={**ids, "read": True, "starred": True})
    assert resp.status_code == 200, resp.text
    assert sorted(resp.json()["applied"]) == sorted(paths.mailbox_id(r) for r in (ALICE, BOB))
    for rep in (ALICE, BOB):
        assert "UNREAD" not in _labels(sim_client, rep) and "STARRED" in _labels(sim_client, rep)
    (event,) = _settled_updates(stack, firestore_db, sim_client)
    assert (event["messageId"], event["read"], event["starred"]) == (ids["messageId"], True, True)

    resp = _crm(stack, "POST", "messages", "/modify", json={**ids, "trashed": True})
    assert resp.status_code == 200, resp.text
    for rep in (ALICE, BOB):
        assert "TRASH" in _labels(sim_client, rep)
    (event,) = _settled_updates(stack, firestore_db, sim_client)
    assert event["trashed"] is True

    again = _crm(stack, "POST", "messages", "/modify", json={**ids, "trashed": True})  # a retry: same answer
    assert again.status_code == 200 and sorted(again.json()["applied"]) == sorted(resp.json()["applied"])
    assert _settled_updates(stack, firestore_db, sim_client) == []


def _make_connection_pre_03(stack: Any, firestore_db: Any, sim_client: Any, rep: str) -> None:
    """What a 0.2 deployment stored: a refresh token granted gmail.readonly + gmail.send, not gmail.modify."""
    import urllib.parse

    from shared.crm import paths

    client = stack.secrets
    redirect = stack.function_url("oauth_browser") + "/callback"
    url = (f"{stack.simulator_url}/o/oauth2/v2/auth?" + urllib.parse.urlencode({
        "client_id": client.client_id, "redirect_uri": redirect, "response_type": "code",
        "scope": f"{READONLY} {SEND}", "access_type": "offline", "prompt": "consent"}))
    code = urllib.parse.parse_qs(urllib.parse.urlsplit(sim_client.consent(url, rep)).query)["code"][0]
    token = requests.post(f"{stack.simulator_url}/token", timeout=30, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": redirect,
        "client_id": client.client_id, "client_secret": client.client_secret}).json()
    assert set(token["scope"].split()) == {READONLY, SEND}
    from shared.crm.mailboxes import sealed_token  # in the functions' environment (shared_env)

    sealed = sealed_token(paths.mailbox_id(rep), token["refresh_token"], [READONLY, SEND])
    firestore_db.collection("sync_tokens").document(paths.mailbox_id(rep)).set(sealed.to_doc())


def test_r33_a_connection_made_before_03_reports_missing_scope_keeps_syncing_and_is_refused_409(
        stack: Any, clean: Any, shared_env: Any, firestore_db: Any, sim_client: Any) -> None:
    seed_contact(firestore_db, "acme", "carla", CARLA)
    connect_rep(stack, sim_client, firestore_db, "acme", "alice", ALICE, "alice@acme.test")
    _make_connection_pre_03(stack, firestore_db, sim_client, ALICE)
    status = crm_for(stack).status("acme", "alice")
    assert (status["status"], status["missingScopes"]) == ("connected", [MODIFY])

    sim_client.deliver(ALICE, mail(f"Carla <{CARLA}>", ALICE, "Still syncing", "Hello"))
    wait_synced(firestore_db, sim_client, ALICE)
    ids, msg = _only_message(firestore_db)
    resp = _crm(stack, "POST", "messages", "/modify", json={**ids, "read": True})
    assert resp.status_code == 409 and resp.json()["error"] == "missing_scopes"
    after = firestore_db.document(f"accounts/acme/conversations/{ids['conversationId']}/messages/"
                                  f"{ids['messageId']}").get().to_dict()
    assert after["read"] == msg["read"]  # nothing written
