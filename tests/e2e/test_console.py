"""The developer console over HTTP (devstack/console/): what it shows and what its controls do.

Each control is checked on the part it drives (the simulator's admin API,
Firestore, the functions), the rendering on the console's own `/fragments`.
The browser-driven walk-through is tests/e2e/test_console_browser.py.
"""

from __future__ import annotations

import email
import email.policy
import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from tests.e2e.oauth_steps import seed_user
from tests.e2e.sync_steps import connect_rep, mail, messages_of, seed_contact, wait_for

pytestmark = pytest.mark.e2e

REP = "rep@example.com"
CLIENT = "carla@client.test"


def act(console: str, action: str, files: Any = None, **form: str) -> requests.Response:
    return requests.post(f"{console}/actions/{action}", data=form, files=files, timeout=30)


def fragments(console: str) -> dict[str, str]:
    resp = requests.get(f"{console}/fragments", timeout=30)
    assert resp.status_code == 200, resp.text
    body: dict[str, str] = resp.json()
    return body


def connected_world(stack: Any, sim: Any, db: Any) -> None:
    connect_rep(stack, sim, db, "acme", "alice", REP)
    seed_contact(db, "acme", "carla", CLIENT)


def synced_message(db: Any, subject: str) -> tuple[str, dict[str, Any]]:
    def probe() -> tuple[str, dict[str, Any]] | None:
        return next(((k, v) for k, v in messages_of(db, "acme").items() if v.get("subject") == subject), None)

    return wait_for(probe, 30, f"the message {subject!r} to sync")


def test_console_url_is_in_endpoints_and_it_is_subscribed_to_crm_events(stack, console):
    assert stack.endpoints["console"] == console
    assert requests.get(f"{console}/health", timeout=10).json() == {"ok": True, "events": "subscribed"}
    page = requests.get(f"{console}/", timeout=30)
    assert page.status_code == 200 and "developer console" in page.text
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]


def test_console_answers_only_its_own_host_and_refuses_cross_site_posts(console):
    port = console.rsplit(":", 1)[1]
    assert requests.get(f"{console}/", headers={"Host": f"attacker.example:{port}"}, timeout=10).status_code == 421
    resp = requests.post(f"{console}/actions/add-user", headers={"Origin": "http://attacker.example"},
                         data={"accountId": "acme", "userId": "mallory", "email": "m@x.test"}, timeout=10)
    assert resp.status_code == 403 and resp.json()["error"] == "cross_site"


def test_console_adds_crm_users_and_contacts_as_the_crm_writes_them(clean, console, firestore_db):
    assert act(console, "add-user", accountId="acme", userId="alice", email="alice@acme.test", name="Alice").ok
    assert act(console, "add-contact", accountId="acme", contactId="carla", email=CLIENT, name="Carla").ok

    assert firestore_db.document("accounts/acme/users/alice").get().to_dict() == {"email": "alice@acme.test",
                                                                                  "name": "Alice"}
    contact = firestore_db.document("accounts/acme/contacts/carla").get().to_dict()
    assert contact["email"] == CLIENT and isinstance(contact["createdAt"], datetime)
    shown = fragments(console)["accounts"]
    assert 'data-user="acme/alice"' in shown and 'data-contact="acme/carla"' in shown


def test_console_refuses_bad_input_with_a_4xx_and_writes_nothing(clean, console, firestore_db):
    resp = act(console, "add-contact", accountId="acme/x", contactId="carla", email=CLIENT)
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_id"
    resp = act(console, "deliver", **{"from": "carla@client.test\r\nBcc: x@y.test", "to": REP, "subject": "s"})
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_address"
    assert act(console, "no-such-thing").status_code == 404
    assert list(firestore_db.collection("accounts").list_documents()) == []


def test_console_shows_mailbox_status_last_sync_error_watch_expiry_and_skips(clean, console, firestore_db):
    from shared.crm import paths

    firestore_db.document(f"sync_mailboxes/{paths.mailbox_id(REP)}").set({
        "address": REP, "status": "reauth_required", "lastSyncAt": datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC),
        "lastError": "Google rejected the stored authorization", "historyId": "4711",
        "watchExpiration": datetime(2026, 3, 11, 5, 6, 7, tzinfo=UTC), "skippedCount": 2,
        "lastSkipped": [{"gmailMessageId": "1a", "reason": "too_large", "at": datetime.now(UTC)}],
    })

    shown = fragments(console)["mailboxes"]

    for text in (REP, "reauth_required", "2026-03-04 05:06:07", "Google rejected the stored authorization",
                 "2026-03-11 05:06:07", ">2</span>", "too_large", "cursor 4711"):
        assert text in shown


def test_console_delivers_mail_from_a_contact_with_an_attachment(clean, console, sim_client):
    sim_client.create_mailbox(REP)

    resp = act(console, "deliver", files={"attachment": ("offer.pdf", b"%PDF-1.4 offer", "application/pdf")},
               **{"from": CLIENT, "name": "Carla Client", "to": REP, "subject": "Offer", "text": "See attached"})

    assert resp.status_code == 200, resp.text
    [msg] = sim_client.messages(REP)
    assert msg["headers"]["From"] == f"Carla Client <{CLIENT}>" and msg["headers"]["Subject"] == "Offer"
    assert "INBOX" in msg["labelIds"] and "UNREAD" in msg["labelIds"]
    parsed = email.message_from_bytes(sim_client.raw_message(REP, msg["id"]), policy=email.policy.default)
    [att] = list(parsed.iter_attachments())
    assert (att.get_filename(), att.get_content_type(), att.get_content()) == ("offer.pdf", "application/pdf",
                                                                                b"%PDF-1.4 offer")


def test_console_reply_from_gmail_threads_and_syncs_as_outbound(clean, console, sim_client, firestore_db):
    connected_world(clean, sim_client, firestore_db)
    sim_client.deliver(REP, mail(CLIENT, REP, "Quote please", "Can you send the quote?"))
    key, inbound = synced_message(firestore_db, "Quote please")
    conversation, message_id = key.split("/")

    resp = act(console, "reply", accountId="acme", conversationId=conversation, messageId=message_id,
               text="Here it is")

    assert resp.status_code == 200, resp.text
    _, reply = synced_message(firestore_db, "Re: Quote please")
    assert (reply["direction"], reply["source"], reply["gmailThreadId"]) == ("outbound", "gmail",
                                                                              inbound["gmailThreadId"])
    assert reply["inReplyTo"] == inbound["rfc822MessageId"]


def test_console_forward_from_gmail_sends_the_original_to_the_given_address(clean, console, sim_client,
                                                                            firestore_db):
    connected_world(clean, sim_client, firestore_db)
    sim_client.deliver(REP, mail(CLIENT, REP, "Specs", "the specs are attached"))
    key, _ = synced_message(firestore_db, "Specs")
    conversation, message_id = key.split("/")

    resp = act(console, "forward", accountId="acme", conversationId=conversation, messageId=message_id,
               to="engineer@partner.test", text="FYI")

    assert resp.status_code == 200, resp.text
    [sent] = [m for m in sim_client.messages(REP, label="SENT")]
    assert sent["headers"]["Subject"] == "Fwd: Specs" and sent["headers"]["To"] == "engineer@partner.test"
    forwarded = email.message_from_bytes(sim_client.raw_message(REP, sent["id"]), policy=email.policy.default)
    assert "the specs are attached" in forwarded.get_content()


def test_console_reads_stars_and_trashes_a_logged_message_in_gmail(clean, console, sim_client, firestore_db):
    connected_world(clean, sim_client, firestore_db)
    got = sim_client.deliver(REP, mail(CLIENT, REP, "Labels", "x"))
    key, _ = synced_message(firestore_db, "Labels")
    conversation, message_id = key.split("/")
    ids = {"accountId": "acme", "conversationId": conversation, "messageId": message_id}

    for change in ("read", "star", "trash"):
        assert act(console, "gmail", change=change, **ids).status_code == 200

    [msg] = [m for m in sim_client.messages(REP) if m["id"] == got["id"]]
    assert "UNREAD" not in msg["labelIds"] and {"STARRED", "TRASH"} <= set(msg["labelIds"])
    assert act(console, "gmail", change="explode", **ids).status_code == 400


def test_console_revokes_tokens_and_expires_the_watch_in_the_simulator(clean, console, sim_client, firestore_db):
    connected_world(clean, sim_client, firestore_db)
    assert sim_client.mailbox(REP)["activeTokens"] >= 1

    assert act(console, "revoke", address=REP).status_code == 200
    assert act(console, "expire-watch", address=REP).status_code == 200

    box = sim_client.mailbox(REP)
    assert box["activeTokens"] == 0
    assert int(box["watch"]["expiration"]) <= int(time.time() * 1000)


def test_console_sets_and_clears_simulator_faults(clean, console, sim_client):
    spec = {"seed": 3, "methods": {"messages.get": {"errorRate": 0.5, "codes": [503]}}}

    assert act(console, "faults", spec=json.dumps(spec)).status_code == 200
    assert sim_client.faults()["methods"]["messages.get"]["errorRate"] == 0.5
    assert act(console, "faults", spec="{not json").status_code == 400
    assert act(console, "faults", spec="{}").status_code == 200
    assert not sim_client.faults().get("methods")


def test_console_connect_starts_the_real_oauth_flow_back_to_the_console(clean, console, firestore_db):
    seed_user(firestore_db, "acme", "alice")

    resp = requests.get(f"{console}/connect", params={"accountId": "acme", "userId": "alice"},
                        allow_redirects=False, timeout=30)

    assert resp.status_code == 303
    # R24: the CRM's authorizationUrl leads through oauth_browser's /start, which binds the browser
    assert resp.headers["Location"].startswith(clean.function_url("oauth_browser") + "/start?state=")
    unknown = requests.get(f"{console}/connect", params={"accountId": "acme", "userId": "nobody"},
                           allow_redirects=False, timeout=30)
    assert unknown.status_code == 303 and "kind=error" in unknown.headers["Location"]


def test_console_streams_crm_events_with_their_schema_check(clean, console, shared_env):
    from shared.core.events import CrmEvent, publish

    event = CrmEvent(type="connection.status", accountId="acme", userId="alice", status="disconnected")
    with requests.get(f"{console}/events/stream", stream=True, timeout=30) as stream:
        publish([event])
        seen = None
        for line in stream.iter_lines(decode_unicode=True):
            if line.startswith("data: ") and event.eventId in line:
                seen = json.loads(line.removeprefix("data: "))
                break

    assert seen is not None
    assert seen["body"]["eventId"] == event.eventId and seen["problems"] == []
    assert seen["attributes"]["type"] == "connection.status"


def test_console_links_attachments_through_the_attachments_function(clean, console, sim_client, firestore_db):
    connected_world(clean, sim_client, firestore_db)
    sim_client.deliver(REP, mail(CLIENT, REP, "Invoice", "attached",
                                 attachments=[("invoice.txt", "text/plain", b"amount due: 42")]))
    synced_message(firestore_db, "Invoice")
    shown = fragments(console)["conversations"]

    if "attachments" not in clean.endpoints["functions"]:
        assert "invoice.txt" in shown and "/attachment?" not in shown  # named, not linked, until R20 is there
        assert requests.get(f"{console}/attachment", timeout=10).status_code == 404
        return
    href = shown.split('href="/attachment?', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    resp = requests.get(f"{console}/attachment?{href}", timeout=30)
    assert resp.status_code == 200, resp.text
    assert resp.content == b"amount due: 42" and resp.headers["Content-Type"].startswith("text/plain")
    assert "invoice.txt" in resp.headers["Content-Disposition"]


def test_console_deletes_a_logged_message_in_gmail_and_says_it_is_gone(clean, console, sim_client, firestore_db):
    connected_world(clean, sim_client, firestore_db)
    got = sim_client.deliver(REP, mail(CLIENT, REP, "Delete me", "x"))
    key, _ = synced_message(firestore_db, "Delete me")
    conversation, message_id = key.split("/")

    resp = act(console, "gmail-delete", accountId="acme", conversationId=conversation, messageId=message_id)

    assert resp.status_code == 200, resp.text
    assert got["id"] not in [m["id"] for m in sim_client.messages(REP)]
    assert "not in this mailbox" in fragments(console)["conversations"]


def _stored_message(db: Any, message_id: str, **fields: Any) -> None:
    db.document("accounts/acme/contacts/carla").set({"email": CLIENT, "name": "Carla", "createdAt": datetime.now(UTC)})
    db.document("accounts/acme/conversations/carla").set({"contactId": "carla", "lastMessageAt": datetime.now(UTC)})
    db.document(f"accounts/acme/conversations/carla/messages/{message_id}").set({
        "direction": "inbound", "source": "gmail", "from": CLIENT, "to": [REP], "subject": message_id,
        "snippet": "hello", "sentAt": datetime.now(UTC), **fields})


def _message_markup(shown: str, message_id: str) -> str:
    return shown.split(f'data-message-id="{message_id}"', 1)[1].split('<div class="message', 1)[0]


def test_console_shows_the_gmail_state_fields_when_the_sync_writes_them(clean, console, firestore_db):
    _stored_message(firestore_db, "m-state", read=True, starred=True, trashed=True, deletedInGmail=True,
                    truncated=True, isForward=True,
                    attachments=[{"filename": "a.pdf", "mimeType": "application/pdf", "size": 12,
                                  "gmailAttachmentId": "att-1"}])

    shown = _message_markup(fragments(console)["conversations"], "m-state")

    assert 'data-read="read"' in shown and 'data-starred="true"' in shown and 'data-deleted="true"' in shown
    for badge in ("★ starred", "in Trash", "deleted in Gmail", "truncated", "forward", "a.pdf"):
        assert badge in shown


def test_console_degrades_gracefully_when_the_sync_writes_no_gmail_state(clean, console, firestore_db):
    _stored_message(firestore_db, "m-plain")

    shown = _message_markup(fragments(console)["conversations"], "m-plain")

    assert 'data-read="unknown"' in shown and "read: ?" in shown
    assert "starred" not in shown.replace('data-starred="false"', "") and "truncated" not in shown
