"""R16 Auto BCC through the local stack: the webhook logs copies under the recipient contact."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from shared.crm import paths
from tests.e2e.bcc_steps import snapshot
from tests.e2e.oauth_steps import connect, crm_for, docs, seed_contact, seed_user

pytestmark = pytest.mark.e2e

GMAIL = "rep.one@gmail.test"
CLIENT = "Ann.Buyer@Client.example"


@pytest.fixture
def rep(stack: Any, clean: Any, firestore_db: Any, sim_client: Any) -> dict[str, str]:
    """A connected rep: their Auto BCC address and the webhook's URL and key."""
    seed_user(firestore_db, "acme", "alice", email="alice@acme.example")
    seed_user(firestore_db, "acme", "carol", email="carol@acme.example")
    crm = crm_for(stack)
    assert connect(crm, sim_client, "acme", "alice", GMAIL) == {"status": "connected"}
    return {"bcc": crm.status("acme", "alice")["autoBccAddress"], "url": stack.function_url("auto_bcc"),
            "key": stack.secrets.inbound_api_key}


def copy(rep: dict[str, str], to: str = CLIENT, cc: str = "", msgid: str = "<offer-1@corp.example>",
         subject: str = "Our offer", sender: str = GMAIL, date: str = "Tue, 05 Mar 2024 10:00:00 +0000") -> bytes:
    headers = [f"From: Alice <{sender}>", f"To: {to}", f"Bcc: {rep['bcc']}", f"Subject: {subject}",
               f"Date: {date}", "MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8"]
    if cc:
        headers.append(f"Cc: {cc}")
    if msgid:
        headers.append(f"Message-ID: {msgid}")
    return ("\r\n".join(headers) + "\r\n\r\nPlease find our offer below.\r\n").encode()


def post(rep: dict[str, str], body: bytes, to: str | None = None, key: str | None = None,
         content_type: str = "message/rfc822") -> requests.Response:
    return requests.post(rep["url"], params={"to": to or rep["bcc"]}, data=body, timeout=60,
                         headers={"Authorization": f"Bearer {key or rep['key']}", "Content-Type": content_type})


def messages_of(db: Any, account: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for conv in db.collection(f"accounts/{account}/conversations").list_documents():
        out += [(f"{conv.id}/{m.id}", m.to_dict()) for m in conv.collection("messages").stream()]
    return out


def test_r16_copy_creates_the_contact_and_logs_outbound(rep: dict[str, str], stack: Any, firestore_db: Any) -> None:
    resp = post(rep, copy(rep))
    assert resp.status_code == 201, resp.text

    contacts = docs(firestore_db, "accounts/acme/contacts")
    assert [(c["email"], c["source"]) for c in contacts.values()] == [("ann.buyer@client.example", "auto_bcc")]
    ((path, msg),) = messages_of(firestore_db, "acme")
    (contact_id,) = contacts
    assert path == f"{contact_id}/{resp.json()['messageId']}"
    assert resp.json()["messageId"] == paths.message_doc_id("<offer-1@corp.example>", None)  # R25
    assert (msg["direction"], msg["source"], msg["contactId"], msg["userId"]) == (
        "outbound", "auto_bcc", contact_id, "alice")
    assert (msg["from"], msg["to"], msg["bcc"]) == (GMAIL, ["ann.buyer@client.example"], [])
    assert msg["subject"] == "Our offer" and "offer below" in msg["text"]
    assert msg["rfc822MessageId"] == "<offer-1@corp.example>"
    conv = firestore_db.document(f"accounts/acme/conversations/{contact_id}").get().to_dict()
    assert conv["contactId"] == contact_id and conv["lastMessageDirection"] == "outbound"
    events = [e for e in stack.crm_events(2) if e["type"] == "message.synced"]
    assert events and (events[0]["source"], events[0]["contactId"]) == ("auto_bcc", contact_id)


def test_r16_existing_contact_is_used_earliest_first(rep: dict[str, str], firestore_db: Any) -> None:
    seed_contact(firestore_db, "acme", "c-first", "ann.buyer@client.example")
    time.sleep(0.01)
    seed_contact(firestore_db, "acme", "c-second", "ANN.BUYER@client.example")
    assert post(rep, copy(rep)).status_code == 201
    assert set(docs(firestore_db, "accounts/acme/contacts")) == {"c-first", "c-second"}
    ((path, _),) = messages_of(firestore_db, "acme")
    assert path.startswith("c-first/")


def test_r16_colleagues_and_the_auto_bcc_address_are_not_the_contact(rep: dict[str, str], firestore_db: Any) -> None:
    resp = post(rep, copy(rep, to="carol@acme.example", cc="Bo <bo@client.example>"))
    assert resp.status_code == 201
    assert [c["email"] for c in docs(firestore_db, "accounts/acme/contacts").values()] == ["bo@client.example"]


def test_r16_same_copy_twice_is_logged_once(rep: dict[str, str], firestore_db: Any) -> None:
    first, second = post(rep, copy(rep)), post(rep, copy(rep))
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["duplicate"] is True
    assert first.json()["messageId"] == second.json()["messageId"]
    assert len(messages_of(firestore_db, "acme")) == 1


def test_copy_without_message_id_is_still_idempotent(rep: dict[str, str], firestore_db: Any) -> None:
    body = copy(rep, msgid="")
    assert [post(rep, body).status_code for _ in range(2)] == [201, 200]
    assert len(messages_of(firestore_db, "acme")) == 1


def test_unknown_auto_bcc_address_is_404(rep: dict[str, str], firestore_db: Any) -> None:
    for to in ("aaaaaaaaaaaaaaaaaaaaaaaaaa@bcc.localhost", "someone@elsewhere.example"):
        resp = post(rep, copy(rep), to=to)
        assert (resp.status_code, resp.json()["error"]) == (404, "not_found")
    assert messages_of(firestore_db, "acme") == []


def test_wrong_or_missing_inbound_key_is_401(rep: dict[str, str], stack: Any) -> None:
    assert post(rep, copy(rep), key="wrong").status_code == 401
    assert post(rep, copy(rep), key=stack.secrets.crm_api_key).status_code == 401  # the CRM key is not this key
    resp = requests.post(rep["url"], params={"to": rep["bcc"]}, data=copy(rep), timeout=30,
                         headers={"Content-Type": "message/rfc822"})
    assert (resp.status_code, resp.json()["error"]) == (401, "unauthorized")


@pytest.mark.parametrize("body,content_type,status,error", [
    (b"From: x@y.example\r\n\r\nno recipients", "message/rfc822", 400, "malformed_message"),
    (b"", "message/rfc822", 400, "malformed_message"),
    (b"{}", "application/json", 415, "unsupported_media_type"),
])
def test_malformed_input_is_a_clear_4xx_without_writes(rep: dict[str, str], firestore_db: Any, body: bytes,
                                                       content_type: str, status: int, error: str) -> None:
    resp = post(rep, body, content_type=content_type)
    assert (resp.status_code, resp.json()["error"]) == (status, error)
    assert docs(firestore_db, "accounts/acme/contacts") == {}
    assert messages_of(firestore_db, "acme") == []


def test_missing_or_invalid_to_is_400(rep: dict[str, str]) -> None:
    for params in ({}, {"to": "not an address"}):
        resp = requests.post(rep["url"], params=params, data=copy(rep), timeout=30,
                             headers={"Authorization": f"Bearer {rep['key']}", "Content-Type": "message/rfc822"})
        assert (resp.status_code, resp.json()["field"]) == (400, "to")


def test_copy_without_external_recipient_is_422(rep: dict[str, str], firestore_db: Any) -> None:
    resp = post(rep, copy(rep, to="carol@acme.example"))
    assert (resp.status_code, resp.json()["error"]) == (422, "no_recipient")
    assert docs(firestore_db, "accounts/acme/contacts") == {}


def test_copy_above_30_mb_is_413(rep: dict[str, str]) -> None:
    resp = post(rep, copy(rep) + b"x" * (30 * 1024 * 1024))
    assert (resp.status_code, resp.json()["error"]) == (413, "too_large")


def test_r16b_after_disconnect_the_old_gmail_is_refused_and_the_crm_email_accepted(
        rep: dict[str, str], stack: Any, firestore_db: Any) -> None:
    assert crm_for(stack).disconnect("acme", "alice").status_code == 200
    before = snapshot(firestore_db)
    resp = post(rep, copy(rep))  # From: the Gmail that is no longer connected
    assert (resp.status_code, resp.json()["error"]) == (403, "sender_not_user")
    assert snapshot(firestore_db) == before
    assert post(rep, copy(rep, sender="alice@acme.example")).status_code == 201


@pytest.mark.skipif(not (Path(__file__).resolve().parents[2] / "functions" / "gmail_push.py").exists(),
                    reason="needs the sync engine's gmail_push")
def test_r16_later_reply_from_the_new_contact_syncs_as_inbound(rep: dict[str, str], sim_client: Any,
                                                                firestore_db: Any) -> None:
    assert post(rep, copy(rep)).status_code == 201
    (contact_id,) = docs(firestore_db, "accounts/acme/contacts")

    sim_client.deliver(GMAIL, (
        f"From: Ann <ann.buyer@client.example>\r\nTo: {GMAIL}\r\nSubject: Re: Our offer\r\n"
        "In-Reply-To: <offer-1@corp.example>\r\nReferences: <offer-1@corp.example>\r\n"
        "Message-ID: <reply-1@client.example>\r\n\r\nLooks good.\r\n").encode())

    deadline = time.monotonic() + 30
    inbound: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not inbound:
        inbound = [m for p, m in messages_of(firestore_db, "acme") if m["direction"] == "inbound"]
        time.sleep(0.2)
    assert inbound, "the reply did not sync"
    assert (inbound[0]["contactId"], inbound[0]["source"]) == (contact_id, "gmail")
    assert len(messages_of(firestore_db, "acme")) == 2


# ---- R16b: every CRM user, and only their own mail

def test_r16b_user_who_never_connected_gmail_logs_copies_from_their_crm_email(
        rep: dict[str, str], stack: Any, firestore_db: Any) -> None:
    seed_user(firestore_db, "acme", "olga", email="Olga@Acme.example")  # an Outlook user
    address = crm_for(stack).status("acme", "olga")["autoBccAddress"]
    assert address and address.endswith("@bcc.localhost") and address != rep["bcc"]

    resp = post(rep, copy(rep, sender="olga@acme.example"), to=address)
    assert resp.status_code == 201, resp.text
    ((_, msg),) = messages_of(firestore_db, "acme")
    assert (msg["userId"], msg["from"], msg["source"]) == ("olga", "olga@acme.example", "auto_bcc")
    assert crm_for(stack).status("acme", "olga")["autoBccAddress"] == address  # stable


def test_r16b_connected_user_logs_copies_from_gmail_and_from_crm_email(rep: dict[str, str], firestore_db: Any) -> None:
    assert post(rep, copy(rep, msgid="<a@corp.example>")).status_code == 201
    assert post(rep, copy(rep, msgid="<b@corp.example>", sender="ALICE@acme.example")).status_code == 201
    assert sorted(m["from"] for _, m in messages_of(firestore_db, "acme")) == ["alice@acme.example", GMAIL]


def test_r28_a_copy_from_a_send_as_alias_of_the_connected_gmail_is_the_users_own(
        rep: dict[str, str], stack: Any, sim_client: Any, firestore_db: Any) -> None:
    sim_client.set_send_as(GMAIL, ["alice@sales.acme.example"])
    assert connect(crm_for(stack), sim_client, "acme", "alice", GMAIL) == {"status": "connected"}  # reads aliases
    assert post(rep, copy(rep, sender="Alice@Sales.acme.example")).status_code == 201
    assert [m["from"] for _, m in messages_of(firestore_db, "acme")] == ["alice@sales.acme.example"]


@pytest.mark.parametrize("sender", ["stranger@evil.example", "carol@acme.example", "rep.one@gmail.test.evil.example"])
def test_r16b_copy_from_anyone_else_is_refused_and_creates_nothing(rep: dict[str, str], firestore_db: Any,
                                                                  sender: str) -> None:
    before = snapshot(firestore_db)
    resp = post(rep, copy(rep, sender=sender))
    assert (resp.status_code, resp.json()["error"]) == (403, "sender_not_user")
    assert snapshot(firestore_db) == before


def test_r16b_address_of_a_deleted_user_is_404(rep: dict[str, str], firestore_db: Any) -> None:
    firestore_db.document("accounts/acme/users/alice").delete()
    before = snapshot(firestore_db)
    resp = post(rep, copy(rep))
    assert (resp.status_code, resp.json()["error"]) == (404, "not_found")
    assert snapshot(firestore_db) == before


@pytest.mark.parametrize("date", ["Fri, 31 Dec 9999 23:59:59 -0500", "Fri, 31 Dec 9999 23:59:59 +0000",
                                  "in the future"])
def test_r16b_future_or_absurd_date_is_logged_as_the_arrival_time(rep: dict[str, str], firestore_db: Any,
                                                                 date: str) -> None:
    if date == "in the future":
        date = (datetime.now(UTC) + timedelta(days=3)).strftime("%a, %d %b %Y %H:%M:%S +0000")
    before = datetime.now(UTC) - timedelta(seconds=1)
    resp = post(rep, copy(rep, date=date))
    after = datetime.now(UTC) + timedelta(seconds=1)
    assert resp.status_code == 201, resp.text
    ((_, msg),) = messages_of(firestore_db, "acme")
    assert before <= msg["sentAt"] <= after
    conv = firestore_db.document(f"accounts/acme/conversations/{resp.json()['conversationId']}").get().to_dict()
    assert before <= conv["lastMessageAt"] <= after


def test_r16b_past_date_is_kept(rep: dict[str, str], firestore_db: Any) -> None:
    assert post(rep, copy(rep)).status_code == 201
    ((_, msg),) = messages_of(firestore_db, "acme")
    assert msg["sentAt"] == datetime(2024, 3, 5, 10, 0, tzinfo=UTC)


# ---- R21: blocklisted addresses and domains are never logged

@pytest.mark.parametrize("entry", ["ann.buyer@client.example", "Ann.Buyer@CLIENT.example", "CLIENT.example",
                                   "@client.example", "*.client.example"])
def test_r21_copy_to_a_blocklisted_address_or_domain_is_not_logged(rep: dict[str, str], firestore_db: Any,
                                                                   entry: str) -> None:
    firestore_db.document("accounts/acme/settings/emailSync").set({"blocklist": ["nobody@else.example", entry]})
    before = snapshot(firestore_db)
    resp = post(rep, copy(rep))
    assert (resp.status_code, resp.json()["error"]) == (422, "blocklisted")
    assert snapshot(firestore_db) == before


def test_r21_blocklisted_cc_keeps_the_whole_copy_out(rep: dict[str, str], firestore_db: Any) -> None:
    firestore_db.document("accounts/acme/settings/emailSync").set({"blocklist": ["lawyers.example"]})
    resp = post(rep, copy(rep, cc="Counsel <counsel@eu.lawyers.example>"))
    assert (resp.status_code, resp.json()["error"]) == (422, "blocklisted")
    assert messages_of(firestore_db, "acme") == []


def test_r21_the_reps_own_domain_on_the_list_does_not_keep_their_copies_out(rep: dict[str, str],
                                                                          firestore_db: Any) -> None:
    firestore_db.document("accounts/acme/settings/emailSync").set({"blocklist": ["acme.example", "gmail.test"]})
    assert post(rep, copy(rep, sender="alice@acme.example", cc="carol@acme.example")).status_code == 201


def test_r21_blocklist_of_another_account_does_not_apply(rep: dict[str, str], firestore_db: Any) -> None:
    firestore_db.document("accounts/globex/settings/emailSync").set({"blocklist": ["client.example"]})
    assert post(rep, copy(rep)).status_code == 201


# ---- R20: the copy's attachments are kept with it

def copy_with_attachment(rep: dict[str, str], data: bytes, filename: str = "Angebot März.pdf") -> bytes:
    import base64

    b64 = base64.encodebytes(data).decode()
    return (f"From: {GMAIL}\r\nTo: {CLIENT}\r\nBcc: {rep['bcc']}\r\nSubject: Offer attached\r\n"
            "Message-ID: <att-1@corp.example>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\nSee attached."
            "\r\n--XX\r\nContent-Type: application/pdf\r\n"
            f"Content-Disposition: attachment; filename*=utf-8''{requests.utils.quote(filename)}\r\n"
            f"Content-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--XX--\r\n").encode()


def test_r32_copy_attachment_bytes_are_kept_in_storage_under_the_accounts_prefix(
        rep: dict[str, str], firestore_db: Any, stack: Any) -> None:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    from devstack.storage_emulator import LOCAL_BUCKET

    data = bytes(range(256)) * 9000  # 2.3 MB: a resumable upload in chunks
    resp = post(rep, copy_with_attachment(rep, data))
    assert resp.status_code == 201, resp.text
    ((_, msg),) = messages_of(firestore_db, "acme")
    (att,) = msg["attachments"]
    assert {k: att[k] for k in ("filename", "mimeType", "size", "gmailAttachmentId")} == {
        "filename": "Angebot März.pdf", "mimeType": "application/pdf", "size": len(data), "gmailAttachmentId": "ab_0"}
    assert att["storageObject"].startswith("accounts/acme/")
    bucket = storage.Client(project=stack.project_id, credentials=AnonymousCredentials(),
                            client_options={"api_endpoint": stack.storage_url}).bucket(LOCAL_BUCKET)
    assert bucket.blob(att["storageObject"]).download_as_bytes() == data
    assert docs(firestore_db, "sync_attachments") == {}  # no Firestore chunks where there is a bucket
    assert post(rep, copy_with_attachment(rep, data)).status_code == 200  # a redelivery: the same object
    assert [b.name for b in bucket.list_blobs(prefix="accounts/acme/")].count(att["storageObject"]) == 1


def test_a_copy_written_while_another_writer_holds_its_documents_is_logged_once_not_answered_500(
        rep: dict[str, str], firestore_db: Any) -> None:
    # Firestore answers ABORTED to a write that waited too long for a document another transaction holds
    # ("Transaction lock timeout" on the emulator; contention in production). Every step of a copy is
    # idempotent, so the copy is written again, not refused with a 500 (a CI run saw that 500).
    import threading

    from shared.crm import paths
    from shared.crm.contacts import auto_contact_id

    contact = auto_contact_id(CLIENT)
    held = firestore_db.document(paths.conversation_path("acme", contact) + "/messages/"
                                 + paths.auto_bcc_message_doc_id("<offer-1@corp.example>"))
    tx = firestore_db.transaction()
    tx._begin()
    held.get(transaction=tx)  # the emulator locks what a transaction read
    releaser = threading.Timer(4.0, tx._rollback)
    releaser.start()
    try:
        resp = post(rep, copy(rep))
    finally:
        releaser.join()
    assert resp.status_code == 201, resp.text
    assert len(messages_of(firestore_db, "acme")) == 1
