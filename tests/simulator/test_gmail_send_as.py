"""users.settings.sendAs.list (R28): the primary address first, then the aliases set through /sim/, under the read
scope, through the real Google client."""

from __future__ import annotations

import pytest
import requests
from googleapiclient.errors import HttpError

from simulator.app import BackgroundServer
from tests.simulator.conftest import READ, SEND, credentials, gmail_service

REP = "rep@example.com"


def _set(sim: str, body: object) -> requests.Response:
    return requests.put(f"{sim}/sim/mailboxes/{REP}/sendAs", json=body, timeout=5)


def test_send_as_lists_the_primary_address_then_the_aliases_under_the_read_scope(
        sim: str, sim_server: BackgroundServer) -> None:
    gmail = gmail_service(sim, credentials(sim_server, REP, (READ,)))
    assert _set(sim, {"sendAs": ["sales@acme.test", {"sendAsEmail": "ceo@else.test",
                                                     "verificationStatus": "pending"}]}).status_code == 200
    got = gmail.users().settings().sendAs().list(userId="me").execute()["sendAs"]
    assert [(a["sendAsEmail"], a["isPrimary"], a.get("verificationStatus")) for a in got] == [
        (REP, True, None), ("sales@acme.test", False, "accepted"), ("ceo@else.test", False, "pending")]
    assert got[0]["isDefault"] is True


def test_send_as_needs_a_read_scope(sim: str, sim_server: BackgroundServer) -> None:
    gmail = gmail_service(sim, credentials(sim_server, REP, (SEND,)))
    with pytest.raises(HttpError) as err:
        gmail.users().settings().sendAs().list(userId="me").execute()
    assert err.value.resp.status == 403


def test_setting_aliases_refuses_junk_and_unknown_mailboxes(sim: str, sim_server: BackgroundServer) -> None:
    credentials(sim_server, REP, (READ,))  # creates the mailbox
    assert _set(sim, {"sendAs": ["not an address"]}).json()["error"] == "invalid_argument"
    assert _set(sim, {"sendAs": [{"sendAsEmail": "a@b.test", "verificationStatus": "maybe"}]}).status_code == 400
    assert _set(sim, ["a@b.test"]).status_code == 400
    resp = requests.put(f"{sim}/sim/mailboxes/nobody@example.com/sendAs", json={"sendAs": []}, timeout=5)
    assert resp.status_code == 404
