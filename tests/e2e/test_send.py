"""send_email through the local stack: what Gmail received, what the CRM logged (R6, R9, R10, R14, R15).

The MIME is checked as the simulator stored it (SimClient.raw_message), the
log in the Firestore emulator, the event on crm-events-tap.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from email import message_from_bytes, policy
from typing import Any

import pytest

from shared.send.request import MAX_CONTENT_BYTES
from tests.e2e.send_steps import (
    ACCOUNT,
    CONTACT,
    CONTACT_EMAIL,
    REP,
    USER,
    World,
    b64,
    drain_sync,
    make_world,
    wait_for,
)

pytestmark = pytest.mark.e2e


@pytest.fixture
def world(stack: Any, clean: Any, firestore_db: Any, sim_client: Any) -> Iterator[World]:
    w = make_world(stack, firestore_db, sim_client)
    yield w
    drain_sync(w)


def parse(raw: bytes) -> Any:
    return message_from_bytes(raw, policy=policy.default)


def test_r9_text_email_goes_out_from_the_connected_address_and_is_logged_once(world: World, crm_events: Any) -> None:
    resp = world.send(key="first")
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert out["messageId"] == f"gm_{out['gmailMessageId']}"

    sent = world.sent()
    assert [m["id"] for m in sent] == [out["gmailMessageId"]]
    assert sent[0]["threadId"] == out["gmailThreadId"]
    m = parse(world.raw(out["gmailMessageId"]))
    assert m["From"].addresses[0].addr_spec == REP
    assert m["From"].addresses[0].display_name == "Alice Rep"
    assert [a.addr_spec for a in m["To"].addresses] == [CONTACT_EMAIL]
    assert m["Message-ID"].endswith("@gmail-crm-sync>")
    assert m.get_content_type() == "text/plain"
    assert "here is our offer" in m.get_content()

    msgs = world.messages()
    assert list(msgs) == [out["messageId"]]
    doc = msgs[out["messageId"]]
    assert (doc["direction"], doc["source"], doc["from"], doc["to"]) == ("outbound", "crm", REP, [CONTACT_EMAIL])
    assert (doc["gmailMessageId"], doc["gmailThreadId"]) == (out["gmailMessageId"], out["gmailThreadId"])
    assert doc["rfc822MessageId"] == m["Message-ID"]
    conv = world.db.document(f"accounts/{ACCOUNT}/conversations/{CONTACT}").get().to_dict()
    assert conv["contactId"] == CONTACT and conv["lastMessageDirection"] == "outbound"

    events = [e for e in crm_events(1) if e["type"] == "message.sent"]
    assert events and events[0]["messageId"] == out["messageId"] and events[0]["accountId"] == ACCOUNT


def test_r9_the_later_gmail_notification_does_not_log_the_send_twice(world: World) -> None:
    from shared.core import paths

    out = world.send().json()
    target = int(world.sim.mailbox(REP)["historyId"])
    mailbox = world.db.document(f"sync_mailboxes/{paths.mailbox_id(REP)}")
    wait_for(lambda: int((mailbox.get().to_dict() or {}).get("historyId") or 0) >= target, 20,
             "gmail_push to sync past the send")
    msgs = world.messages()
    assert list(msgs) == [out["messageId"]]
    assert msgs[out["messageId"]]["source"] == "crm"


def test_r15_text_html_and_attachments_make_the_expected_mime(world: World) -> None:
    pdf = b"%PDF-1.7\n" + os.urandom(2000)
    png = b"\x89PNG\r\n\x1a\n" + os.urandom(500)
    resp = world.send(subject="Angebot für Köln \u2013 東京", html="<p>Hello <b>Carl</b></p>", cc=["boss@client.test"],
                      bcc=["archive@acme.test"], attachments=[
                          {"filename": "Preisübersicht 東京.pdf", "mimeType": "application/pdf",
                           "contentBase64": b64(pdf)},
                          {"filename": "chart.png", "mimeType": "image/png", "contentBase64": b64(png)}])
    assert resp.status_code == 200, resp.text
    raw = world.raw(resp.json()["gmailMessageId"])
    m = parse(raw)
    assert m["Subject"] == "Angebot für Köln \u2013 東京"
    assert b"=?utf-8?" in raw.split(b"\r\n\r\n", 1)[0]  # encoded word, not raw UTF-8 in the header
    assert [a.addr_spec for a in m["Cc"].addresses] == ["boss@client.test"]
    assert m.get_content_type() == "multipart/mixed"
    body, *atts = list(m.iter_parts())
    assert body.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in body.iter_parts()] == ["text/plain", "text/html"]
    assert [(a.get_filename(), a.get_content_type()) for a in atts] == [
        ("Preisübersicht 東京.pdf", "application/pdf"), ("chart.png", "image/png")]
    assert atts[0].get_content() == pdf and atts[1].get_content() == png
    assert b"filename*=utf-8''Preis%C3%BCbersicht" in raw

    doc = world.messages()[resp.json()["messageId"]]
    assert doc["html"] == "<p>Hello <b>Carl</b></p>" and doc["bcc"] == ["archive@acme.test"]
    assert [(a["filename"], a["mimeType"], a["size"]) for a in doc["attachments"]] == [
        ("Preisübersicht 東京.pdf", "application/pdf", len(pdf)), ("chart.png", "image/png", len(png))]


def test_r10_reply_from_the_crm_stays_in_one_gmail_thread_and_one_conversation(world: World) -> None:
    first = world.send(subject="Our offer").json()
    first_raw = parse(world.raw(first["gmailMessageId"]))
    reply = world.send(subject=None, text="Any questions?", replyToMessageId=first["messageId"])
    assert reply.status_code == 200, reply.text
    second = reply.json()
    assert second["gmailThreadId"] == first["gmailThreadId"]
    m = parse(world.raw(second["gmailMessageId"]))
    assert m["Subject"] == "Re: Our offer"
    assert m["In-Reply-To"] == first_raw["Message-ID"]
    assert m["References"] == first_raw["Message-ID"]
    assert {s["threadId"] for s in world.sent()} == {first["gmailThreadId"]}
    msgs = world.messages()
    assert set(msgs) == {first["messageId"], second["messageId"]}
    assert msgs[second["messageId"]]["inReplyTo"] == first_raw["Message-ID"]


def test_r10_crm_reply_to_the_contacts_answer_threads_on_both_sides(world: World) -> None:
    """Contact answers the CRM's email from outside; the sync logs it; the CRM replies to that answer."""
    from email.message import EmailMessage

    first = world.send(subject="Our offer").json()
    ours = parse(world.raw(first["gmailMessageId"]))["Message-ID"]
    answer = EmailMessage()
    answer["From"], answer["To"], answer["Subject"] = CONTACT_EMAIL, REP, "Re: Our offer"
    answer["Message-ID"], answer["In-Reply-To"], answer["References"] = "<carl-1@client.test>", ours, ours
    answer.set_content("Sounds good.")
    inbound = world.sim.deliver(REP, answer.as_bytes())
    assert inbound["threadId"] == first["gmailThreadId"]
    inbound_doc = f"gm_{inbound['id']}"
    wait_for(lambda: inbound_doc in world.messages(), 20, "the sync to log the contact's answer")

    resp = world.send(subject=None, text="Great, contract follows.", replyToMessageId=inbound_doc)
    assert resp.status_code == 200, resp.text
    reply = resp.json()
    assert reply["gmailThreadId"] == first["gmailThreadId"]
    m = parse(world.raw(reply["gmailMessageId"]))
    assert m["Subject"] == "Re: Our offer"
    assert m["In-Reply-To"] == "<carl-1@client.test>"
    assert m["References"] == f"{ours} <carl-1@client.test>"
    assert set(world.messages()) == {first["messageId"], inbound_doc, reply["messageId"]}
    assert {d["gmailThreadId"] for d in world.messages().values()} == {first["gmailThreadId"]}


def test_r14_a_crm_send_claims_the_thread_for_its_account(world: World) -> None:
    from shared.core import paths

    out = world.send().json()
    tm = world.db.document(f"sync_threads/{paths.thread_doc_id(paths.mailbox_id(REP), out['gmailThreadId'])}")
    data = tm.get().to_dict()
    assert data["ownerAccountId"] == ACCOUNT
    assert data["conversations"] == {ACCOUNT: CONTACT}


def test_r14_with_one_gmail_in_two_accounts_a_crm_send_and_its_replies_stay_in_the_sending_account(
        world: World) -> None:
    from email.message import EmailMessage

    from tests.e2e.oauth_steps import connect, crm_for, seed_contact, seed_user

    seed_user(world.db, "globex", "gus")
    seed_contact(world.db, "globex", "carl-at-globex", CONTACT_EMAIL, "Carl")
    assert connect(crm_for(world.stack), world.sim, "globex", "gus", REP)["status"] == "connected"

    sent = world.send(subject="Offer from ACME").json()
    ours = parse(world.raw(sent["gmailMessageId"]))["Message-ID"]
    answer = EmailMessage()
    answer["From"], answer["To"], answer["Subject"] = CONTACT_EMAIL, REP, "Re: Offer from ACME"
    answer["Message-ID"], answer["In-Reply-To"], answer["References"] = "<carl-2@client.test>", ours, ours
    answer.set_content("Interested.")
    inbound = world.sim.deliver(REP, answer.as_bytes())
    wait_for(lambda: f"gm_{inbound['id']}" in world.messages(), 20, "the contact's answer in ACME's conversation")
    drain_sync(world)

    assert set(world.messages()) == {sent["messageId"], f"gm_{inbound['id']}"}
    assert world.messages("globex", "carl-at-globex") == {}


def test_r15_a_25_mb_attachment_goes_out_intact(world: World) -> None:
    blob = os.urandom(25 * 1024 * 1024 - 64 * 1024)  # the text part and headers fit in the rest
    resp = world.send(attachments=[{"filename": "big.bin", "mimeType": "application/octet-stream",
                                    "contentBase64": b64(blob)}])
    assert resp.status_code == 200, resp.text
    raw = world.raw(resp.json()["gmailMessageId"])
    assert len(raw) > 33 * 1024 * 1024  # base64 MIME: sent through the media upload (test_send_validation_upload)
    att = next(parse(raw).iter_attachments())
    assert hashlib.sha256(att.get_content()).digest() == hashlib.sha256(blob).digest()


def test_r15_over_25_mb_is_413_too_large_and_nothing_is_sent_or_written(world: World) -> None:
    text = "x" * 100
    one_byte_over = MAX_CONTENT_BYTES - len(text) + 1
    resp = world.send(text=text, attachments=[{"filename": "a.bin", "contentBase64": b64(b"\0" * one_byte_over)}])
    assert resp.status_code == 413
    assert resp.json()["error"] == "too_large"
    assert world.sent() == [] and world.messages() == {}
    assert world.collection("sync_send_slots") == {} and world.collection("sync_idempotency") == {}


@pytest.mark.parametrize("fields", [
    {"subject": "Hi\r\nBcc: victim@evil.test"},
    {"cc": ["x@client.test\r\nBcc: victim@evil.test"]},
    {"attachments": [{"filename": "a.txt\r\nX-Evil: 1", "contentBase64": "eA=="}]},
])
def test_header_injection_is_400_and_nothing_is_sent(world: World, fields: dict[str, Any]) -> None:
    resp = world.send(**fields)
    assert resp.status_code == 400
    assert resp.json()["error"] == "header_injection"
    assert world.sent() == [] and world.collection("sync_idempotency") == {}


def test_another_tenants_ids_are_404_without_a_hint(world: World) -> None:
    world.db.document("accounts/globex/users/gus").set({"email": "gus@globex.test", "name": "Gus"})
    world.db.document("accounts/globex/contacts/gina").set({"email": "gina@globex.test", "name": "Gina"})
    foreign_contact = world.send(contactId="gina")
    missing_contact = world.send(contactId="nobody")
    assert foreign_contact.status_code == missing_contact.status_code == 404
    assert foreign_contact.json() == missing_contact.json()
    assert "globex" not in foreign_contact.text
    foreign_user = world.send(userId="gus")
    assert foreign_user.status_code == 404 and foreign_user.json()["field"] == "userId"
    foreign_reply = world.send(replyToMessageId="gm_doesnotexist")
    assert foreign_reply.status_code == 404
    assert world.sent() == []


def test_a_user_without_gmail_gets_409_not_connected(world: World) -> None:
    world.db.document(f"accounts/{ACCOUNT}/users/bob").set({"email": "bob@acme.test", "name": "Bob"})
    resp = world.send(userId="bob")
    assert resp.status_code == 409 and resp.json()["error"] == "not_connected"


def test_r5_revoked_access_gives_409_reauth_required_and_nothing_is_kept(world: World) -> None:
    world.sim.revoke(REP)
    first = world.send()
    assert first.status_code == 409, first.text
    assert first.json()["error"] == "reauth_required"
    again = world.send()
    assert again.status_code == 409 and again.json()["error"] == "reauth_required"
    assert world.sent() == []
    assert world.collection("sync_send_slots") == {} and world.collection("sync_idempotency") == {}
    user = world.db.document(f"accounts/{ACCOUNT}/users/{USER}").get().to_dict()
    assert user["emailSync"]["status"] == "reauth_required"


def test_gmail_errors_on_send_are_retried_and_each_email_goes_out_once(world: World) -> None:
    """Gmail answers 429/500/503 to some sends: the function asks Gmail whether the message went out (it did
    not: injected errors are refusals) and retries within its budget; every email is sent exactly once."""
    world.sim.set_faults({"seed": 1, "methods": {"messages.send": {"errorRate": 0.5, "codes": [429, 500, 503]}}})
    responses = [world.send(key=f"flaky-{i}", text=f"message {i}") for i in range(4)]
    world.sim.set_faults({"seed": 0, "methods": {}})
    assert [r.status_code for r in responses] == [200] * 4, [r.text for r in responses]
    ids = sorted(r.json()["gmailMessageId"] for r in responses)
    assert sorted(m["id"] for m in world.sent()) == ids
    assert len(world.messages()) == 4
    # seed 1 draws 429, 500, ok | 500, ok | 429, ok | 503, ok: the simulator counts refused calls too
    assert world.send_calls() == 9


def test_wrong_api_key_is_401(world: World) -> None:
    world.api_key = "wrong"
    assert world.send().status_code == 401


def _thread_mapped_to_carl_with_a_message_from_dora(world: World) -> dict[str, Any]:
    """As R10's sync test sets it up: Carl writes, the rep answers from Gmail with Dora in Cc, Dora answers
    all. One Gmail thread, so one conversation: Carl's. Dora's message sits there with contactId dora."""
    from tests.e2e.oauth_steps import seed_contact
    from tests.e2e.sync_steps import mail, wait_synced

    seed_contact(world.db, ACCOUNT, "dora", "dora@client.test", "Dora")
    first = world.sim.deliver(REP, mail(CONTACT_EMAIL, REP, "Project", message_id="<p1@client.test>"))
    rep = world.sim.send_as_user(REP, mail(REP, CONTACT_EMAIL, "Re: Project", cc=["dora@client.test"],
                                           in_reply_to="<p1@client.test>", message_id="<p2@gmail.test>"))
    dora = world.sim.deliver(REP, mail("dora@client.test", [REP, CONTACT_EMAIL], "Re: Project",
                                       in_reply_to="<p2@gmail.test>", message_id="<p3@client.test>"))
    assert dora["threadId"] == first["threadId"]
    wait_synced(world.db, world.sim, REP)
    msgs = world.messages()
    assert {f"gm_{first['id']}", f"gm_{rep['id']}", f"gm_{dora['id']}"} <= set(msgs)
    assert msgs[f"gm_{dora['id']}"]["contactId"] == "dora"
    assert world.messages(conversation="dora") == {}
    return {"thread": first["threadId"], "dora": dora, "rep": rep}


def test_r10b_a_reply_to_a_contacts_message_in_another_conversation_stays_in_that_thread(world: World) -> None:
    setup = _thread_mapped_to_carl_with_a_message_from_dora(world)
    dora_message = f"gm_{setup['dora']['id']}"

    resp = world.send(contactId="dora", subject=None, text="Thanks Dora, noted.", replyToMessageId=dora_message)
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert out["gmailThreadId"] == setup["thread"]
    assert out["conversationId"] == CONTACT  # the thread's conversation (R10), not a new one for Dora
    m = parse(world.raw(out["gmailMessageId"]))
    assert [a.addr_spec for a in m["To"].addresses] == ["dora@client.test"]
    assert m["Subject"] == "Re: Project"
    assert m["In-Reply-To"] == "<p3@client.test>"
    assert m["References"] == "<p2@gmail.test> <p3@client.test>"  # the parent's References + its Message-ID
    doc = world.messages()[out["messageId"]]
    assert (doc["contactId"], doc["direction"], doc["inReplyTo"]) == ("dora", "outbound", "<p3@client.test>")
    assert world.messages(conversation="dora") == {}


def test_r10b_a_message_the_contact_is_only_copied_on_is_not_theirs_to_reply_to(world: World) -> None:
    setup = _thread_mapped_to_carl_with_a_message_from_dora(world)
    resp = world.send(contactId="dora", subject=None, text="?", replyToMessageId=f"gm_{setup['rep']['id']}")
    assert resp.status_code == 404 and resp.json()["field"] == "replyToMessageId"
    assert world.send_calls() == 0
