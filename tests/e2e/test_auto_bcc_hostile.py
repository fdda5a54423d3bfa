"""Issue 15 through auto_bcc: the hostile copy corpus is answered 2xx or 4xx, never 5xx, and a
refused copy writes nothing (every document of the database compared before and after)."""

from __future__ import annotations

import functools
from typing import Any

import pytest

from tests.e2e.bcc_steps import post_copy, snapshot
from tests.e2e.hostile_copies import KINDS, HostileCopy, corpus
from tests.e2e.oauth_steps import connect, crm_for, seed_user

pytestmark = pytest.mark.e2e

GMAIL = "rep.one@gmail.test"
CONTACT = "ann@client.example"
@functools.lru_cache(maxsize=2)
def cases(bcc: str) -> dict[str, HostileCopy]:
    """The corpus for this Auto BCC address (the same for every test of a session), built once."""
    return {c.kind: c for c in corpus(GMAIL, CONTACT, bcc)}


@pytest.fixture(scope="module")
def bcc(stack: Any, firestore_db: Any, sim_client: Any) -> str:
    """One connected rep for the whole corpus (each case compares the database before and after itself)."""
    stack.reset()
    seed_user(firestore_db, "acme", "alice", email="alice@acme.example")
    assert connect(crm_for(stack), sim_client, "acme", "alice", GMAIL) == {"status": "connected"}
    address: str = crm_for(stack).status("acme", "alice")["autoBccAddress"]
    return address


@pytest.mark.parametrize("kind", KINDS)
def test_hostile_copy_is_answered_2xx_or_4xx_and_a_refusal_writes_nothing(
        bcc: str, stack: Any, firestore_db: Any, kind: str) -> None:
    case = cases(bcc)[kind]
    before = snapshot(firestore_db)
    resp = post_copy(stack, bcc, case.raw)
    assert resp.status_code < 500, (resp.status_code, resp.text[:300])
    assert f"{resp.status_code // 100}xx" == case.expect, (resp.status_code, resp.text[:300])
    if case.expect == "4xx":
        assert resp.json()["error"] and resp.json()["message"]
        assert snapshot(firestore_db) == before
        return
    body = resp.json()
    msg = firestore_db.document(f"accounts/acme/conversations/{body['conversationId']}/messages/"
                                f"{body['messageId']}").get()
    assert msg.exists and msg.to_dict()["source"] == "auto_bcc"
    assert post_copy(stack, bcc, case.raw).status_code == 200  # redelivered: the same answer, logged once
