"""The sync rules end to end: Gmail (simulator) → watch → Pub/Sub → gmail_push → Firestore.

One behaviour per test, named after the rule. The rep connects through the
real oauth flow; mail enters the simulated mailbox from outside or is sent
from Gmail's UI; the test waits until the mailbox's cursor covers the mail
and reads Firestore as the CRM would.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.e2e.sync_steps import (
    alice_with_carla,
    connect_rep,
    logged_id,
    mail,
    messages_of,
    seed_contact,
    wait_for,
    wait_synced,
)

pytestmark = pytest.mark.e2e

REP = "rep@gmail.test"
CLIENT = "carla@client.test"


@pytest.fixture
def world(clean: Any, firestore_db: Any, sim_client: Any, stack: Any) -> Any:
    return alice_with_carla(stack, sim_client, firestore_db, REP, CLIENT)


def only_message(db: Any, account: str = "acme") -> tuple[str, dict[str, Any]]:
    msgs = messages_of(db, account)
    assert len(msgs) == 1, sorted(msgs)
    return next(iter(msgs.items()))


def test_r7_inbound_from_contact_lands_in_its_conversation(world: Any, sim_client: Any, crm_events: Any) -> None:
    got = sim_client.deliver(REP, mail(f"Carla <{CLIENT}>", REP, "Quote please", "Can you send the quote?"))
    wait_synced(world, sim_client, REP)

    path, doc = only_message(world)
    assert path == f"carla/{logged_id(sim_client, REP, got)}"
    assert (doc["direction"], doc["source"], doc["contactId"], doc["userId"]) == ("inbound", "gmail", "carla", "alice")
    assert (doc["from"], doc["to"], doc["subject"]) == (CLIENT, [REP], "Quote please")
    assert "send the quote" in doc["text"] and doc["gmailThreadId"] == got["threadId"]
    conv = world.document("accounts/acme/conversations/carla").get().to_dict()
    assert conv["contactId"] == "carla" and conv["lastMessageDirection"] == "inbound"
    assert conv["lastMessageSnippet"].startswith("Can you send the quote?")
    events = [e for e in crm_events(1) if e["type"] == "message.synced"]
    logged = logged_id(sim_client, REP, got)
    assert events and (events[0]["messageId"], events[0]["conversationId"]) == (logged, "carla")


def test_r7_rep_only_in_cc_still_syncs(world: Any, sim_client: Any) -> None:
    sim_client.deliver(REP, mail(CLIENT, "someone@else.test", "FYI", cc=[REP]))
    wait_synced(world, sim_client, REP)
    assert only_message(world)[1]["cc"] == [REP]


def test_r11_unknown_sender_is_not_synced_and_no_contact_created(world: Any, sim_client: Any) -> None:
    sim_client.deliver(REP, mail("stranger@nowhere.test", REP, "Buy now"))
    wait_synced(world, sim_client, REP)
    assert messages_of(world, "acme") == {}
    assert [s.id for s in world.collection("accounts/acme/contacts").stream()] == ["carla"]


def test_r11_internal_mail_from_a_colleague_is_not_synced(world: Any, sim_client: Any) -> None:
    world.document("accounts/acme/users/bob").set({"email": "Bob@Acme.test", "name": "Bob"})
    sim_client.deliver(REP, mail("bob@acme.test", REP, "Lunch?"))
    sim_client.send_as_user(REP, mail(REP, "bob@acme.test", "Re: Lunch?"))
    wait_synced(world, sim_client, REP)
    assert messages_of(world, "acme") == {}


def test_r8_reply_from_gmail_is_outbound_in_the_same_conversation(world: Any, sim_client: Any) -> None:
    first = mail(CLIENT, REP, "Contract", message_id="<c1@client.test>")
    got_in = sim_client.deliver(REP, first)
    got_out = sim_client.send_as_user(REP, mail(REP, CLIENT, "Re: Contract", "Signed.", in_reply_to="<c1@client.test>"))
    assert got_out["threadId"] == got_in["threadId"]
    wait_synced(world, sim_client, REP)
    msgs = messages_of(world, "acme")
    assert set(msgs) == {f"carla/{logged_id(sim_client, REP, got_in)}", f"carla/{logged_id(sim_client, REP, got_out)}"}
    out = msgs[f"carla/{logged_id(sim_client, REP, got_out)}"]
    assert (out["direction"], out["from"], out["to"], out["isForward"]) == ("outbound", REP, [CLIENT], False)


def test_r8_forward_from_gmail_is_logged_as_outbound_forward(world: Any, sim_client: Any) -> None:
    sim_client.send_as_user(REP, mail(REP, CLIENT, "Fwd: pricing sheet",
                                      "---------- Forwarded message ---------\nFrom: x@y.test\n"))
    wait_synced(world, sim_client, REP)
    doc = only_message(world)[1]
    assert (doc["direction"], doc["isForward"], doc["contactId"]) == ("outbound", True, "carla")


def test_r12_cc_bcc_logged_under_primary_contact_without_new_contacts(world: Any, sim_client: Any) -> None:
    seed_contact(world, "acme", "dora", "dora@client.test")
    sim_client.send_as_user(REP, mail(REP, ["new.person@client.test", CLIENT], "Kickoff",
                                      cc=["dora@client.test", "cc.stranger@client.test"], bcc=["bcc.person@x.test"]))
    wait_synced(world, sim_client, REP)
    path, doc = only_message(world)
    assert path.startswith("carla/")  # first contact in To order, although Dora (Cc) is one too
    assert doc["cc"] == ["dora@client.test", "cc.stranger@client.test"] and doc["bcc"] == ["bcc.person@x.test"]
    assert sorted(s.id for s in world.collection("accounts/acme/contacts").stream()) == ["carla", "dora"]


def test_r13_duplicate_contacts_first_created_wins(world: Any, sim_client: Any) -> None:
    now = datetime.now(UTC)
    seed_contact(world, "acme", "carla-later", CLIENT.upper(), created=now + timedelta(days=1))
    seed_contact(world, "acme", "carla-first", "Carla@Client.test", created=now - timedelta(days=365))
    sim_client.deliver(REP, mail(CLIENT, REP, "Which one?"))
    wait_synced(world, sim_client, REP)
    assert only_message(world)[0].startswith("carla-first/")


def test_r15_attachment_metadata_is_stored(world: Any, sim_client: Any) -> None:
    pdf = b"%PDF-1.7\n" + b"0" * 4087
    png = b"\x89PNG" + b"1" * 60
    sim_client.deliver(REP, mail(CLIENT, REP, "Files", attachments=[("Angebot.pdf", "application/pdf", pdf),
                                                                      ("pic.png", "image/png", png)]))
    wait_synced(world, sim_client, REP)
    atts = only_message(world)[1]["attachments"]
    assert [(a["filename"], a["mimeType"], a["size"]) for a in atts] == [
        ("Angebot.pdf", "application/pdf", 4096), ("pic.png", "image/png", 64)]
    assert all(a["gmailAttachmentId"] for a in atts)


def test_non_ascii_multipart_bodies_in_any_charset(world: Any, sim_client: Any) -> None:
    sim_client.deliver(REP, mail(CLIENT, REP, "Grüße, déjà vu", "Ça va? Привет, 東京",
                                 html="<p>Ça va? <b>Привет</b>, 東京</p>", charset="utf-8", cte="base64"))
    sim_client.deliver(REP, mail(CLIENT, REP, "Latin-1 QP", "Café crème à 5E? non: 5 EUR",
                                 charset="iso-8859-1", cte="quoted-printable"))
    wait_synced(world, sim_client, REP)
    docs = {d["subject"]: d for d in messages_of(world, "acme").values()}
    assert docs["Grüße, déjà vu"]["text"].strip() == "Ça va? Привет, 東京"
    assert "<b>Привет</b>" in docs["Grüße, déjà vu"]["html"]
    assert docs["Latin-1 QP"]["text"].strip() == "Café crème à 5E? non: 5 EUR"


def test_r2_mail_older_than_the_connection_is_not_imported(clean: Any, firestore_db: Any, sim_client: Any,
                                                          stack: Any) -> None:
    seed_contact(firestore_db, "acme", "carla", CLIENT)
    sim_client.create_mailbox(REP)
    sim_client.deliver(REP, mail(CLIENT, REP, "Before connecting"))
    connect_rep(stack, sim_client, firestore_db, "acme", "alice", REP)
    after = sim_client.deliver(REP, mail(CLIENT, REP, "After connecting"))
    wait_synced(firestore_db, sim_client, REP)
    assert [d["gmailMessageId"] for d in messages_of(firestore_db, "acme").values()] == [after["id"]]


def test_r14_two_accounts_one_gmail_with_and_without_assignment(clean: Any, firestore_db: Any, sim_client: Any,
                                                               stack: Any) -> None:
    db = firestore_db
    seed_contact(db, "acme", "carla", CLIENT)  # unassigned: everyone's
    seed_contact(db, "globex", "carla-g", CLIENT, assigned=["someone-else"])
    seed_contact(db, "initech", "carla-i", CLIENT, assigned=["ian"])
    connect_rep(stack, sim_client, db, "acme", "alice", REP)
    connect_rep(stack, sim_client, db, "globex", "gary", REP)
    connect_rep(stack, sim_client, db, "initech", "ian", REP)
    sim_client.deliver(REP, mail(CLIENT, REP, "Hello all"))
    wait_synced(db, sim_client, REP)
    assert len(messages_of(db, "acme")) == 1
    assert messages_of(db, "globex") == {}  # assigned to another user of that account
    assert len(messages_of(db, "initech")) == 1


def test_r14_thread_claimed_by_a_crm_reply_stops_syncing_to_other_accounts(
        clean: Any, firestore_db: Any, sim_client: Any, stack: Any) -> None:
    from tests.e2e.sync_steps import wait_for as _wait

    db = firestore_db
    seed_contact(db, "acme", "carla", CLIENT)
    seed_contact(db, "globex", "carla-g", CLIENT)
    connect_rep(stack, sim_client, db, "acme", "alice", REP)
    connect_rep(stack, sim_client, db, "globex", "gary", REP)
    first = sim_client.deliver(REP, mail(CLIENT, REP, "Deal", message_id="<deal1@client.test>"))
    wait_synced(db, sim_client, REP)
    assert len(messages_of(db, "acme")) == 1 and len(messages_of(db, "globex")) == 1

    _crm_reply(stack, "globex", "gary", "carla-g", logged_id(sim_client, REP, first))
    _wait(lambda: (db.collection("sync_threads").document(_thread_doc(REP, first["threadId"])).get().to_dict()
                   or {}).get("ownerAccountId") == "globex", 20, "thread claimed by globex")
    reply = sim_client.deliver(REP, mail(CLIENT, REP, "Re: Deal", in_reply_to="<deal1@client.test>"))
    assert reply["threadId"] == first["threadId"]
    wait_synced(db, sim_client, REP)
    assert len(messages_of(db, "acme")) == 1  # the thread belongs to globex now
    globex = messages_of(db, "globex")
    # inbound, CRM reply, inbound reply
    assert f"carla-g/{logged_id(sim_client, REP, reply)}" in globex and len(globex) == 3
    wait_for(lambda: True)


def _thread_doc(address: str, thread_id: str) -> str:
    from shared.crm import paths

    return paths.thread_doc_id(paths.mailbox_id(address), thread_id)


def _crm_reply(stack: Any, account: str, user: str, contact: str, reply_to_message_id: str) -> None:
    import requests

    resp = requests.post(stack.function_url("send_email"), json={
        "accountId": account, "userId": user, "contactId": contact, "subject": "Re: Deal", "text": "Our offer.",
        "replyToMessageId": reply_to_message_id, "idempotencyKey": "reply-1"},
        headers={"Authorization": f"Bearer {stack.secrets.crm_api_key}"}, timeout=60)
    assert resp.status_code == 200, resp.text


def test_r9_crm_send_is_logged_once_and_only_in_the_sending_account(
        clean: Any, firestore_db: Any, sim_client: Any, stack: Any) -> None:
    import requests

    db = firestore_db
    seed_contact(db, "acme", "carla", CLIENT)
    seed_contact(db, "globex", "carla-g", CLIENT)
    connect_rep(stack, sim_client, db, "acme", "alice", REP)
    connect_rep(stack, sim_client, db, "globex", "gary", REP)
    resp = requests.post(stack.function_url("send_email"), json={
        "accountId": "acme", "userId": "alice", "contactId": "carla", "subject": "Offer", "text": "Our offer.",
        "idempotencyKey": "offer-1"}, headers={"Authorization": f"Bearer {stack.secrets.crm_api_key}"}, timeout=60)
    assert resp.status_code == 200, resp.text
    wait_synced(db, sim_client, REP)
    assert list(messages_of(db, "acme")) == [f"carla/{resp.json()['messageId']}"]
    assert messages_of(db, "acme")[f"carla/{resp.json()['messageId']}"]["source"] == "crm"
    assert messages_of(db, "globex") == {}


def test_r10_a_reply_from_another_contact_stays_in_the_threads_conversation(world: Any, sim_client: Any) -> None:
    seed_contact(world, "acme", "dora", "dora@client.test")
    first = sim_client.deliver(REP, mail(CLIENT, REP, "Project", message_id="<p1@client.test>"))
    sim_client.send_as_user(REP, mail(REP, CLIENT, "Re: Project", cc=["dora@client.test"],
                                      in_reply_to="<p1@client.test>", message_id="<p2@gmail.test>"))
    dora = sim_client.deliver(REP, mail("dora@client.test", [REP, CLIENT], "Re: Project",
                                        in_reply_to="<p2@gmail.test>"))
    assert dora["threadId"] == first["threadId"]
    wait_synced(world, sim_client, REP)
    msgs = messages_of(world, "acme")
    assert len(msgs) == 3 and all(path.startswith("carla/") for path in msgs)  # one thread, one conversation
    # the message still names its sender's contact
    assert msgs[f"carla/{logged_id(sim_client, REP, dora)}"]["contactId"] == "dora"


def test_r8b_forward_of_a_logged_thread_to_a_non_contact_is_logged_there(world: Any, sim_client: Any) -> None:
    first = sim_client.deliver(REP, mail(CLIENT, REP, "Specs", "See the specs.", message_id="<s1@client.test>"))
    fwd = sim_client.send_as_user(REP, mail(REP, "engineer@partner.test", "Fwd: Specs",
                                            "---------- Forwarded message ---------\nSee the specs.",
                                            in_reply_to="<s1@client.test>"))
    assert fwd["threadId"] == first["threadId"]
    wait_synced(world, sim_client, REP)
    msgs = messages_of(world, "acme")
    assert set(msgs) == {f"carla/{logged_id(sim_client, REP, first)}", f"carla/{logged_id(sim_client, REP, fwd)}"}
    doc = msgs[f"carla/{logged_id(sim_client, REP, fwd)}"]
    assert (doc["direction"], doc["isForward"], doc["contactId"], doc["to"]) == (
        "outbound", True, "carla", ["engineer@partner.test"])
    assert [s.id for s in world.collection("accounts/acme/contacts").stream()] == ["carla"]  # no contact made


def test_r8b_forward_of_a_logged_thread_to_a_colleague_stays_internal(world: Any, sim_client: Any) -> None:
    world.document("accounts/acme/users/bob").set({"email": "bob@acme.test", "name": "Bob"})
    first = sim_client.deliver(REP, mail(CLIENT, REP, "Specs", message_id="<s2@client.test>"))
    sim_client.send_as_user(REP, mail(REP, "bob@acme.test", "Fwd: Specs", in_reply_to="<s2@client.test>"))
    wait_synced(world, sim_client, REP)
    assert list(messages_of(world, "acme")) == [f"carla/{logged_id(sim_client, REP, first)}"]


def test_r21_mail_from_a_blocked_domain_never_syncs(world: Any, sim_client: Any) -> None:
    seed_contact(world, "acme", "vera", "vera@mail.vendor.test")
    world.document("accounts/acme/settings/emailSync").set({"blocklist": ["Vendor.test", "spy@else.test"]})
    sim_client.deliver(REP, mail("vera@mail.vendor.test", REP, "From a blocked subdomain"))
    sim_client.send_as_user(REP, mail(REP, "vera@mail.vendor.test", "To a blocked subdomain"))
    sim_client.deliver(REP, mail(CLIENT, REP, "With a blocked Cc", cc=["spy@else.test"]))
    allowed = sim_client.deliver(REP, mail(CLIENT, REP, "Allowed"))
    wait_synced(world, sim_client, REP)
    assert list(messages_of(world, "acme")) == [f"carla/{logged_id(sim_client, REP, allowed)}"]


def test_r11b_contact_stored_with_odd_capitalisation_matches(world: Any, sim_client: Any) -> None:
    seed_contact(world, "acme", "cedric", "cEdRiC@Client.TEST")
    got = sim_client.deliver(REP, mail("Cedric <cedric@client.test>", REP, "Hi"))
    sim_client.send_as_user(REP, mail(REP, "CEDRIC@client.test", "Re: Hi"))
    wait_synced(world, sim_client, REP)
    msgs = messages_of(world, "acme")
    assert f"cedric/{logged_id(sim_client, REP, got)}" in msgs and len(msgs) == 2
    assert all(path.startswith("cedric/") for path in msgs)


def test_r11b_contacts_from_before_the_index_are_matched(world: Any, sim_client: Any) -> None:
    from shared.crm import paths

    seed_contact(world, "acme", "cedric", "cEdRiC@Client.TEST")
    # As before the index existed: no entry, no key, no backfill state (a CRM's contacts on upgrade day).
    for col in (paths.CONTACT_INDEX, paths.CONTACT_KEYS, paths.CONTACT_INDEX_STATE):
        for ref in world.collection(col).list_documents():
            ref.delete()
    got = sim_client.deliver(REP, mail("cedric@client.test", REP, "Still me"))
    wait_synced(world, sim_client, REP)
    assert list(messages_of(world, "acme")) == [f"cedric/{logged_id(sim_client, REP, got)}"]
    assert world.collection(paths.CONTACT_INDEX_STATE).document("acme").get().to_dict()["complete"] is True


def test_r11b_a_changed_contact_address_moves_the_match(world: Any, sim_client: Any) -> None:
    from tests.e2e.oauth_steps import wait_contact_indexed

    world.document("accounts/acme/contacts/carla").update({"email": "Carla.New@Client.test"})
    wait_contact_indexed(world, "acme", "carla", "carla.new@client.test")
    sim_client.deliver(REP, mail(CLIENT, REP, "From the old address"))
    new = sim_client.deliver(REP, mail("carla.new@client.test", REP, "From the new address"))
    wait_synced(world, sim_client, REP)
    assert list(messages_of(world, "acme")) == [f"carla/{logged_id(sim_client, REP, new)}"]


def test_r11b_a_deleted_contact_no_longer_matches(world: Any, sim_client: Any) -> None:
    from shared.crm import paths

    world.document("accounts/acme/contacts/carla").delete()
    entry = world.collection(paths.CONTACT_INDEX).document(paths.contact_index_id("acme", CLIENT))
    wait_for(lambda: not entry.get().exists, 20, "index entry removed")
    sim_client.deliver(REP, mail(CLIENT, REP, "Anyone there?"))
    wait_synced(world, sim_client, REP)
    assert messages_of(world, "acme") == {}


def test_r11b_a_contact_write_the_trigger_missed_is_healed_by_the_weekly_check(world: Any, sim_client: Any) -> None:
    from shared.crm import paths
    from tests.e2e.sync_steps import wait_synced as _synced

    seed_contact(world, "acme", "cedric", "Cedric@Client.TEST")
    sim_client.deliver(REP, mail(CLIENT, REP, "First pass: the index is complete"))
    _synced(world, sim_client, REP)
    # The trigger never delivered Cedric's write (say, during the first deploy): no entry, no key.
    world.collection(paths.CONTACT_INDEX).document(paths.contact_index_id("acme", "cedric@client.test")).delete()
    world.collection(paths.CONTACT_KEYS).document(paths.contact_key_id("acme", "cedric")).delete()
    state = world.collection(paths.CONTACT_INDEX_STATE).document("acme")
    state.update({"completedAt": datetime.now(UTC) - timedelta(days=8)})
    got = sim_client.deliver(REP, mail("cedric@client.test", REP, "Found again"))
    _synced(world, sim_client, REP)
    assert f"cedric/{logged_id(sim_client, REP, got)}" in messages_of(world, "acme")
    assert state.get().to_dict()["completedAt"] > datetime.now(UTC) - timedelta(minutes=5)
