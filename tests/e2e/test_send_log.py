"""The send's log commit against the Firestore emulator, in process: what it does when documents changed
between the send's first read and its commit (shared/send/sent_log.py).

These races need a writer between two of the send's own round trips, which an HTTP test cannot place;
here the test is that writer.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.core import roundtrips
from shared.crm import paths

pytestmark = pytest.mark.e2e

ACCOUNT, CONTACT = "acme", "carl"


def _context(db: Any, conversation: Any) -> tuple[Any, Any]:
    from shared.core.models import Contact, User
    from shared.send import idempotency
    from shared.send.context import SendContext
    from shared.send.request import parse_send_request

    req = parse_send_request({"accountId": ACCOUNT, "userId": "alice", "contactId": CONTACT, "subject": "Hi",
                              "text": "Hello", "idempotencyKey": "k1"})
    record_id = paths.idempotency_id(ACCOUNT, "alice", "k1")
    rec, doc = idempotency.new_record(ACCOUNT, "alice", "k1", fingerprint=req.fingerprint(),
                                      rfc822_message_id="<m1@gmail-crm-sync>", lease_seconds=60)
    paths.idempotency_ref(record_id).create(doc)
    ctx = SendContext(req=req, user=User(name="Alice"), contact=Contact(email="carl@client.test"),
                      mailbox_id="mb1", address="alice@gmail.test", refresh_token="", record_id=record_id,
                      conversation_id=CONTACT, conversation=conversation)
    return ctx, idempotency.Claim("owner", record_id, rec)


def test_a_summary_written_between_the_first_read_and_the_commit_is_read_again(
        clean: Any, shared_env: Any, firestore_db: Any) -> None:
    from shared.crm.paths import conversation_ref
    from shared.send.sent_log import Sent, log_sent

    conv = firestore_db.document(paths.conversation_path(ACCOUNT, CONTACT))
    conv.set({"contactId": CONTACT, "lastMessageAt": datetime.now(UTC) - timedelta(days=1)})
    stale = conversation_ref(ACCOUNT, CONTACT).get()  # what the send's first batch saw
    later = datetime.now(UTC) + timedelta(hours=1)
    conv.update({"lastMessageAt": later, "lastMessageSnippet": "from the sync"})  # another writer, meanwhile
    ctx, claim = _context(firestore_db, stale)

    with roundtrips.metering() as meter:
        result = log_sent(ctx, claim, Sent("<m1@gmail-crm-sync>", "g1", "t1"))
    # the guarded commit failed, its documents were read again, committed
    assert (meter.rounds, meter.calls) == (3, 3), meter.trace
    assert firestore_db.document(paths.message_path(ACCOUNT, CONTACT, result["messageId"])).get().exists
    assert result["messageId"] == paths.message_doc_id("<m1@gmail-crm-sync>", "g1")
    assert firestore_db.document(f"{paths.IDEMPOTENCY}/{claim.record_id}").get().to_dict()["result"] == result
    assert conv.get().to_dict()["lastMessageSnippet"] == "from the sync"  # not moved back


def test_a_message_the_sync_logged_first_is_kept_and_the_send_completes(
        clean: Any, shared_env: Any, firestore_db: Any) -> None:
    from shared.send.sent_log import Sent, log_sent

    doc_id = paths.message_doc_id("<m1@gmail-crm-sync>", "g2")
    mref = firestore_db.document(paths.message_path(ACCOUNT, CONTACT, doc_id))
    mref.set({"source": "gmail", "direction": "outbound", "gmailMessageId": "g2"})  # the sync was faster
    ctx, claim = _context(firestore_db, None)

    result = log_sent(ctx, claim, Sent("<m1@gmail-crm-sync>", "g2", "t2"))
    assert result["messageId"] == mref.id
    assert mref.get().to_dict()["source"] == "gmail"  # logged once (R9): not overwritten
    record = firestore_db.document(f"{paths.IDEMPOTENCY}/{claim.record_id}").get().to_dict()
    assert record["state"] == "done" and record["result"] == result
    tm = firestore_db.document(f"{paths.THREADS}/{paths.thread_doc_id('mb1', 't2')}").get().to_dict()
    assert tm["ownerAccountId"] == ACCOUNT  # R14: the thread is still claimed
