"""R20 through the local stack: the CRM opens the attachments of logged messages.

A contact's mail with an attachment arrives in the rep's simulated Gmail and
syncs; the CRM then calls the `attachments` function with the ids on the
message document and gets the very bytes the contact sent: since 0.3 from
Cloud Storage, where the sync kept them (R32, no Gmail call); a message
logged before 0.3 has no kept bytes and is fetched through the mailbox it
came from (users.messages.attachments.get). An Auto BCC copy's attachment is
served from what auto_bcc stored. Everything else is refused: another
account's ids (404), for a message from before 0.3 a mailbox Google no longer
authorises (409 reauth_required) or a disconnected one (409 not_connected),
bad parameters (400).
"""

from __future__ import annotations

import base64
import time
from typing import Any
from urllib.parse import quote

import pytest
import requests

from tests.e2e.oauth_steps import crm_for, seed_user
from tests.e2e.sync_steps import connect_rep, mail, messages_of, push, seed_contact, wait_for, wait_synced

pytestmark = pytest.mark.e2e

REP = "alice.rep@gmail.test"
CARLA = "carla@client.test"
PDF = b"%PDF-1.7\n" + bytes(range(256)) * 400 + b"\n%%EOF\n"  # binary, ~100 KB
NAME = "Angebot März 2024.pdf"


@pytest.fixture
def world(stack: Any, clean: Any, firestore_db: Any, sim_client: Any) -> dict[str, Any]:
    connect_rep(stack, sim_client, firestore_db, "acme", "alice", REP, "alice@acme.example")
    seed_contact(firestore_db, "acme", "carla", CARLA)
    return {"url": stack.function_url("attachments"), "key": stack.secrets.crm_api_key}


def fetch(world: dict[str, Any], key: str | None = None, **params: str) -> requests.Response:
    return requests.get(world["url"], params=params, timeout=60,
                        headers={"Authorization": f"Bearer {key or world['key']}"})


def synced_attachment(firestore_db: Any, sim_client: Any, data: bytes = PDF) -> dict[str, str]:
    """Carla mails the rep a PDF; once it is synced: the ids the CRM reads off the message."""
    sim_client.deliver(REP, mail(f"Carla <{CARLA}>", REP, "The signed offer", "Attached.",
                                 attachments=[(NAME, "application/pdf", data)]))
    wait_synced(firestore_db, sim_client, REP)
    ((path, msg),) = wait_for(lambda: list(messages_of(firestore_db, "acme").items()), what="the synced mail")
    conversation_id, message_id = path.split("/")
    (att,) = msg["attachments"]
    return {"accountId": "acme", "conversationId": conversation_id, "messageId": message_id,
            "attachmentId": att["gmailAttachmentId"]}


def test_r20_crm_opens_the_attachment_of_a_synced_inbound_message(world: dict[str, Any], firestore_db: Any,
                                                                 sim_client: Any) -> None:
    ids = synced_attachment(firestore_db, sim_client)
    kept = gmail_gets(sim_client)  # the sync's own fetch, keeping the bytes (R32)
    resp = fetch(world, **ids)
    assert resp.status_code == 200, resp.text
    assert resp.content == PDF
    assert resp.headers["Content-Type"] == "application/pdf"
    assert resp.headers["Content-Disposition"] == "attachment; filename*=UTF-8''" + quote(NAME, safe="")
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert gmail_gets(sim_client) == kept  # served from storage: no Gmail call


def gmail_gets(sim_client: Any) -> int:
    """users.messages.attachments.get calls the rep's mailbox has answered so far."""
    return int(sim_client.stats()["calls"][REP].get("attachments.get") or 0)


def test_r20_synced_message_records_the_mailbox_it_came_through(world: dict[str, Any], firestore_db: Any,
                                                               sim_client: Any) -> None:
    from shared.crm import paths

    ids = synced_attachment(firestore_db, sim_client)
    msg = firestore_db.document(f"accounts/acme/conversations/{ids['conversationId']}/messages/"
                                f"{ids['messageId']}").get().to_dict()
    assert msg["mailboxId"] == paths.mailbox_id(REP)


def test_r20_crm_opens_the_attachment_of_an_auto_bcc_copy(world: dict[str, Any], stack: Any,
                                                         firestore_db: Any) -> None:
    data = bytes(reversed(range(256))) * 5000  # 1.3 MB: two stored chunks
    bcc = crm_for(stack).status("acme", "alice")["autoBccAddress"]
    raw = (f"From: {REP}\r\nTo: {CARLA}\r\nBcc: {bcc}\r\nSubject: Prices\r\nMessage-ID: <p1@gmail.test>\r\n"
           "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=ZZ\r\n\r\n--ZZ\r\n"
           "Content-Type: text/plain\r\n\r\nPrices attached.\r\n--ZZ\r\nContent-Type: text/csv\r\n"
           "Content-Disposition: attachment; filename=\"prices.csv\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
           + base64.encodebytes(data).decode() + "\r\n--ZZ--\r\n").encode()
    logged = requests.post(stack.function_url("auto_bcc"), params={"to": bcc}, data=raw, timeout=60,
                           headers={"Authorization": f"Bearer {stack.secrets.inbound_api_key}",
                                    "Content-Type": "message/rfc822"})
    assert logged.status_code == 201, logged.text
    body = logged.json()
    resp = fetch(world, accountId="acme", conversationId=body["conversationId"], messageId=body["messageId"],
                 attachmentId="ab_0")
    assert resp.status_code == 200, resp.text
    assert resp.content == data
    assert resp.headers["Content-Type"] == "text/csv"
    assert resp.headers["Content-Disposition"] == "attachment; filename*=UTF-8''prices.csv"


def send_from_crm(stack: Any, data: bytes = PDF) -> dict[str, str]:
    """The CRM sends Carla a PDF through send_email; the ids of the message it logged."""
    resp = requests.post(stack.function_url("send_email"), timeout=120,
                         headers={"Authorization": f"Bearer {stack.secrets.crm_api_key}"},
                         json={"accountId": "acme", "userId": "alice", "contactId": "carla", "subject": "Our offer",
                               "text": "Attached.", "idempotencyKey": f"k-{time.monotonic_ns()}",
                               "attachments": [{"filename": NAME, "mimeType": "application/pdf",
                                                "contentBase64": base64.b64encode(data).decode("ascii")}]})
    assert resp.status_code == 200, resp.text
    out = resp.json()
    return {"accountId": "acme", "conversationId": out["conversationId"], "messageId": out["messageId"]}


def logged_attachments(firestore_db: Any, ids: dict[str, str]) -> list[dict[str, Any]]:
    doc = firestore_db.document(f"accounts/acme/conversations/{ids['conversationId']}/messages/"
                                f"{ids['messageId']}").get().to_dict()
    return list(doc["attachments"])


def test_r20_crm_opens_the_attachment_of_a_message_sent_from_the_crm(world: dict[str, Any], stack: Any,
                                                                    firestore_db: Any, sim_client: Any) -> None:
    ids = send_from_crm(stack)
    # Gmail's answer to messages.send has no attachment ids; the sync records them when it sees the message
    (att,) = wait_for(lambda: [a for a in logged_attachments(firestore_db, ids) if a.get("gmailAttachmentId")],
                      what="the sent message's attachment id")
    assert (att["filename"], att["mimeType"], att["size"]) == (NAME, "application/pdf", len(PDF))
    kept = gmail_gets(sim_client)  # 0, or 1 when the sync logged the send first (R18b) and kept its bytes
    resp = fetch(world, **ids, attachmentId=att["gmailAttachmentId"])
    assert resp.status_code == 200, resp.text
    assert resp.content == PDF
    assert resp.headers["Content-Type"] == "application/pdf"
    assert resp.headers["Content-Disposition"] == "attachment; filename*=UTF-8''" + quote(NAME, safe="")
    assert gmail_gets(sim_client) == kept  # R32: served from what was kept when the send was logged


def test_r20_crm_sent_attachment_not_yet_seen_by_the_sync_is_409_pending(world: dict[str, Any], stack: Any,
                                                                        firestore_db: Any, sim_client: Any) -> None:
    sim_client.expire_watch(REP)  # Gmail sends no notification: the sync cannot have seen the sent message
    ids = send_from_crm(stack)
    assert [a.get("gmailAttachmentId") for a in logged_attachments(firestore_db, ids)] == [None]
    resp = fetch(world, **ids, attachmentId="ANGjdJ-any")
    assert (resp.status_code, resp.json()["error"]) == (409, "attachment_pending")
    assert "attachments.get" not in sim_client.stats()["calls"][REP]  # refused before Gmail

    push(stack, {"emailAddress": REP, "historyId": int(sim_client.mailbox(REP)["historyId"])})
    (att,) = wait_for(lambda: [a for a in logged_attachments(firestore_db, ids) if a.get("gmailAttachmentId")],
                      what="the sent message's attachment id")
    ready = fetch(world, **ids, attachmentId=att["gmailAttachmentId"])
    assert ready.status_code == 200 and ready.content == PDF


def test_r20_another_tenants_or_unknown_ids_are_404(world: dict[str, Any], firestore_db: Any,
                                                    sim_client: Any) -> None:
    ids = synced_attachment(firestore_db, sim_client)
    kept = gmail_gets(sim_client)
    seed_user(firestore_db, "globex", "bob")
    for params in ({**ids, "accountId": "globex"}, {**ids, "conversationId": "nobody"},
                   {**ids, "messageId": "gm_0000"}, {**ids, "attachmentId": "ANGjdJ-unknown"},
                   {**ids, "attachmentId": "ab_0"}):
        resp = fetch(world, **params)
        assert (resp.status_code, resp.json()["error"]) == (404, "not_found"), params
    assert gmail_gets(sim_client) == kept  # refused before Gmail


def logged_before_03(firestore_db: Any, ids: dict[str, str]) -> None:
    """Make the message as 0.2 logged it: no bytes kept in storage (R32), so they are fetched from Gmail."""
    ref = firestore_db.document(f"accounts/acme/conversations/{ids['conversationId']}/messages/{ids['messageId']}")
    atts = [{k: v for k, v in a.items() if k != "storageObject"} for a in ref.get().to_dict()["attachments"]]
    ref.update({"attachments": atts, "stored": {}})


def test_r20_message_from_before_03_is_fetched_through_its_mailbox(world: dict[str, Any], firestore_db: Any,
                                                                    sim_client: Any) -> None:
    ids = synced_attachment(firestore_db, sim_client)
    logged_before_03(firestore_db, ids)
    kept = gmail_gets(sim_client)
    resp = fetch(world, **ids)
    assert resp.status_code == 200 and resp.content == PDF
    assert gmail_gets(sim_client) == kept + 1  # the live fetch


def test_r20_message_from_before_03_whose_mailbox_needs_reauthentication_is_409(
        world: dict[str, Any], stack: Any, firestore_db: Any, sim_client: Any) -> None:
    ids = synced_attachment(firestore_db, sim_client)
    logged_before_03(firestore_db, ids)
    sim_client.revoke(REP)  # the rep changed their password: Google rejects the refresh token
    resp = fetch(world, **ids)
    assert (resp.status_code, resp.json()["error"]) == (409, "reauth_required")
    assert crm_for(stack).status("acme", "alice")["status"] == "reauth_required"
    again = fetch(world, **ids)  # now known without asking Google
    assert (again.status_code, again.json()["error"]) == (409, "reauth_required")


def test_r20_message_from_before_03_whose_mailbox_disconnected_since_is_409_not_connected(
        world: dict[str, Any], stack: Any, firestore_db: Any, sim_client: Any) -> None:
    ids = synced_attachment(firestore_db, sim_client)
    logged_before_03(firestore_db, ids)
    assert crm_for(stack).disconnect("acme", "alice").status_code == 200
    resp = fetch(world, **ids)
    assert (resp.status_code, resp.json()["error"]) == (409, "not_connected")


@pytest.mark.parametrize("drop,override", [
    ("accountId", {}), ("conversationId", {}), ("messageId", {}), ("attachmentId", {}),
    (None, {"accountId": "a/b"}), (None, {"conversationId": ".."}), (None, {"messageId": "__x__"}),
    (None, {"attachmentId": "a/b"}), (None, {"attachmentId": "x" * 5000}), (None, {"accountId": ""}),
])
def test_r20_bad_parameters_are_400(world: dict[str, Any], drop: str | None, override: dict[str, str]) -> None:
    params = {"accountId": "acme", "conversationId": "carla", "messageId": "gm_1", "attachmentId": "ANGjdJ1"}
    params.update(override)
    if drop:
        del params[drop]
    resp = fetch(world, **params)
    assert (resp.status_code, resp.json()["error"]) == (400, "invalid_request"), params


def test_r20_wrong_key_is_401_and_other_methods_405(world: dict[str, Any], stack: Any) -> None:
    params = {"accountId": "acme", "conversationId": "carla", "messageId": "gm_1", "attachmentId": "A1"}
    assert fetch(world, key=stack.secrets.inbound_api_key, **params).status_code == 401
    assert requests.get(world["url"], params=params, timeout=30).status_code == 401
    resp = requests.post(world["url"], params=params, timeout=30,
                         headers={"Authorization": f"Bearer {world['key']}"})
    assert (resp.status_code, resp.json()["error"]) == (405, "method_not_allowed")


# ---- issue 23: what the answer with bytes may do in a browser, and how much of it is held


@pytest.fixture
def bare(clean: Any, firestore_db: Any) -> dict[str, Any]:
    """The attachments function and a user who never connected Gmail (an Outlook user, R16b)."""
    seed_user(firestore_db, "acme", "alice", "alice@acme.example")
    return {"url": clean.function_url("attachments"), "key": clean.secrets.crm_api_key}


def bcc_copy(stack: Any, filename: str, mime_type: str, data: bytes) -> dict[str, str]:
    """Alice Bcc's her Auto BCC address on a mail to Carla with one attachment; the ids to open it."""
    bcc = crm_for(stack).status("acme", "alice")["autoBccAddress"]
    raw = (f"From: alice@acme.example\r\nTo: {CARLA}\r\nBcc: {bcc}\r\nSubject: Page\r\n"
           f"Message-ID: <{filename}@acme.example>\r\nMIME-Version: 1.0\r\n"
           "Content-Type: multipart/mixed; boundary=ZZ\r\n\r\n--ZZ\r\nContent-Type: text/plain\r\n\r\nSee.\r\n"
           f"--ZZ\r\nContent-Type: {mime_type}\r\nContent-Disposition: attachment; filename=\"{filename}\"\r\n"
           "Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(data).decode() + "\r\n--ZZ--\r\n").encode()
    logged = requests.post(stack.function_url("auto_bcc"), params={"to": bcc}, data=raw, timeout=60,
                           headers={"Authorization": f"Bearer {stack.secrets.inbound_api_key}",
                                    "Content-Type": "message/rfc822"})
    assert logged.status_code == 201, logged.text
    body = logged.json()
    return {"accountId": "acme", "conversationId": body["conversationId"], "messageId": body["messageId"],
            "attachmentId": "ab_0"}


@pytest.mark.parametrize("filename,mime_type", [("page.html", "text/html"), ("logo.svg", "image/svg+xml")])
def test_r20_scriptable_attachment_is_served_in_a_csp_sandbox(bare: dict[str, Any], clean: Any, filename: str,
                                                              mime_type: str) -> None:
    data = b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(document.cookie)'><script>fetch('/')</script>"
    resp = fetch(bare, **bcc_copy(clean, filename, mime_type, data))
    assert resp.status_code == 200, resp.text
    assert resp.content == data
    assert resp.headers["Content-Type"] == mime_type  # the sender's type, as the CRM asked
    assert resp.headers["Content-Security-Policy"] == "sandbox"  # a browser that renders it runs no script
    assert resp.headers["X-Content-Type-Options"] == "nosniff"


def stored_message(firestore_db: Any, size: int, mime_type: str = "application/pdf") -> dict[str, str]:
    """An Auto BCC message document naming one stored attachment of `size` bytes (its chunks not written)."""
    firestore_db.document("accounts/acme/conversations/carla/messages/ab_big").set({
        "direction": "outbound", "source": "auto_bcc", "contactId": "carla", "userId": "alice",
        "attachments": [{"filename": "big.bin", "mimeType": mime_type, "size": size, "gmailAttachmentId": "ab_0"}]})
    return {"accountId": "acme", "conversationId": "carla", "messageId": "ab_big", "attachmentId": "ab_0"}


def test_r20_attachment_above_25_mb_is_413_before_any_byte_is_read(bare: dict[str, Any], firestore_db: Any) -> None:
    resp = fetch(bare, **stored_message(firestore_db, 25 * 1024 * 1024 + 1))  # no chunk exists: none is read
    assert (resp.status_code, resp.json()["error"]) == (413, "too_large")


def test_r20_stored_bytes_are_streamed_chunk_by_chunk_not_read_whole_first(bare: dict[str, Any], firestore_db: Any,
                                                                          shared_env: Any) -> None:
    from shared.attachments import store

    data = bytes(range(256)) * 8000  # 2,048,000 bytes: three chunks
    ids = stored_message(firestore_db, len(data))
    store.store("acme", "carla", "ab_big", [store.StoredAttachment("ab_0", data)])
    whole = fetch(bare, **ids)
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["Content-Length"] == str(len(data))

    # the last chunk lost: the answer had started with the first chunk before the last was read, so it
    # is cut short of its Content-Length (a whole-attachment read would have answered 404 first)
    last = store.chunk_ids("acme", "carla", "ab_big", "ab_0", len(data))[-1]
    firestore_db.collection("sync_attachments").document(last).delete()
    import urllib3

    cut = urllib3.PoolManager().request("GET", bare["url"], fields=ids, preload_content=False, retries=False,
                                        headers={"Authorization": f"Bearer {bare['key']}"})
    assert cut.status == 200
    assert cut.headers["Content-Length"] == str(len(data))
    with pytest.raises(urllib3.exceptions.ProtocolError):
        cut.read()
    cut.release_conn()
