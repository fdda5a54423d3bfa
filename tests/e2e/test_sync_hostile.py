"""R22 end to end: one message never blocks a mailbox.

The hostile corpus (tests/hostile_mail.py) is delivered from a contact to a
connected mailbox through the simulator, followed by one ordinary message.
Every hostile message must be stored whole, stored with its bodies cut at a
UTF-8 boundary (`truncated: true`), or recorded as skipped with a reason that
`GET /status` shows; and the ordinary message after them must sync.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from shared.core.budget import FIRESTORE_MAX_DOCUMENT_BYTES, document_size
from shared.crm import paths
from tests.e2e.sync_steps import connect_rep, mail, messages_of, seed_contact, wait_synced
from tests.hostile_mail import EPOCH_MS, KINDS, corpus

pytestmark = pytest.mark.e2e

REP = "rep@gmail.test"
CLIENT = "carla@client.test"


@pytest.fixture(scope="module")
def outcome(stack: Any, firestore_db: Any, sim_client: Any) -> dict[str, Any]:
    """Deliver the corpus and one ordinary mail once for all tests of this module; what the CRM then holds."""
    stack.reset()
    db = firestore_db
    seed_contact(db, "acme", "carla", CLIENT)
    connect_rep(stack, sim_client, db, "acme", "alice", REP, user_email="alice@acme.test")
    mails = corpus(f"Carla <{CLIENT}>", REP)
    delivered = {m.kind: sim_client.deliver(REP, m.raw, internal_date_ms=m.internal_date_ms)["id"] for m in mails}
    after = sim_client.deliver(REP, mail(CLIENT, REP, "After the storm", "Still syncing?"))
    wait_synced(db, sim_client, REP, timeout=120)
    docs = {d["gmailMessageId"]: d for d in messages_of(db, "acme").values()}
    skipped = {s.get("gmailMessageId"): s for s in (x.to_dict() for x in db.collection(paths.SKIPPED).stream())}
    status = requests.get(stack.function_url("oauth") + "/status", params={"accountId": "acme", "userId": "alice"},
                          headers={"Authorization": f"Bearer {stack.secrets.crm_api_key}"}, timeout=30).json()
    result = {"mails": mails, "ids": delivered, "after": after["id"], "docs": docs, "skipped": skipped,
              "status": status}
    print("\nhostile corpus:", len(mails), "messages")
    for m in mails:
        gid = delivered[m.kind]
        got = ("skipped:" + skipped[gid]["reason"]) if gid in skipped else (
            "truncated" if docs.get(gid, {}).get("truncated") else "stored" if gid in docs else "MISSING")
        print(f"  {m.kind:34s} expected {m.expect:9s} got {got}")
    return result


def test_r22_every_hostile_message_is_stored_cut_or_skipped(outcome: dict[str, Any]) -> None:
    got = {}
    for m in outcome["mails"]:
        gid = outcome["ids"][m.kind]
        doc = outcome["docs"].get(gid)
        got[m.kind] = "skipped" if gid in outcome["skipped"] else (
            None if doc is None else "truncated" if doc["truncated"] else "stored")
    assert got == {m.kind: m.expect for m in outcome["mails"]}
    assert set(got) == set(KINDS)


def test_r22_mail_after_the_hostile_corpus_still_syncs(outcome: dict[str, Any]) -> None:
    doc = outcome["docs"][outcome["after"]]
    assert doc["subject"] == "After the storm" and "Still syncing?" in doc["text"]


def test_r22_cut_bodies_are_prefixes_cut_at_a_character_boundary(outcome: dict[str, Any]) -> None:
    by_kind = {m.kind: m for m in outcome["mails"]}
    doc = outcome["docs"][outcome["ids"]["huge_cjk_bodies"]]
    cjk = "漢字かなカナ한국어" * 30_000
    assert cjk.startswith(doc["text"]) and 100_000 < len(doc["text"]) < len(cjk)
    assert f"<p>{cjk}</p>".startswith(doc["html"]) and len(doc["html"]) > 100_000
    path = paths.message_path("acme", "carla", paths.gmail_message_doc_id(outcome["ids"]["huge_cjk_bodies"]))
    assert document_size(path, doc) < FIRESTORE_MAX_DOCUMENT_BYTES
    emoji = outcome["docs"][outcome["ids"]["huge_emoji_bodies"]]
    assert ("😀🚀👍🏽" * 37_500).startswith(emoji["text"]) and len(emoji["text"]) > 50_000
    assert by_kind["huge_emoji_bodies"].expect == "truncated"


def test_r22_a_message_that_cannot_be_stored_is_shown_by_status(outcome: dict[str, Any]) -> None:
    gid = outcome["ids"]["attachment_list_beyond_1_mib"]
    assert outcome["skipped"][gid]["reason"] == "too_large"
    status = outcome["status"]
    assert status["skippedCount"] == 1
    assert [(s["gmailMessageId"], s["reason"]) for s in status["lastSkipped"]] == [(gid, "too_large")]


def test_r22_absurd_dates_never_pin_the_conversation(outcome: dict[str, Any], firestore_db: Any) -> None:
    now = datetime.now(UTC)
    future = outcome["docs"][outcome["ids"]["internal_date_year_9999"]]
    assert future["sentAt"] < now + timedelta(minutes=5)  # logged as seen, not in the year 9999
    past = outcome["docs"][outcome["ids"]["internal_date_epoch"]]
    assert past["sentAt"] == datetime.fromtimestamp(EPOCH_MS / 1000, tz=UTC)
    conv = firestore_db.document("accounts/acme/conversations/carla").get().to_dict()
    assert conv["lastMessageAt"] < now + timedelta(minutes=5)


def test_r22_a_thousand_recipients_and_thousands_of_parts_are_kept_whole(outcome: dict[str, Any]) -> None:
    many = outcome["docs"][outcome["ids"]["a_thousand_recipients"]]
    assert len(many["to"]) == 1001 and not many["truncated"]
    parts = outcome["docs"][outcome["ids"]["thousands_of_parts"]]
    assert len(parts["attachments"]) == 2000 and parts["text"].strip() == "intro"
