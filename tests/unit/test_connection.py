"""Spec of the one connection check (shared/crm/connection.py): (link, mailbox) -> state."""

from __future__ import annotations

import pytest

from shared.core.models import Link, Mailbox
from shared.crm.connection import ConnectionState, decide, decide_mailbox
from shared.gmail.credentials import NotConnected, ReauthRequired, require_connected

LINK = Link(accountId="a", userId="u", mailboxId="m", address="rep@gmail.test")


def mailbox(status: str) -> Mailbox:
    return Mailbox(address="rep@gmail.test", status=status)  # type: ignore[arg-type]


@pytest.mark.parametrize("link,box,state", [
    (None, None, ConnectionState.DISCONNECTED),
    (None, mailbox("connected"), ConnectionState.DISCONNECTED),  # the mailbox is someone else's link
    (LINK, None, ConnectionState.DISCONNECTED),  # a link whose mailbox is gone
    (LINK, mailbox("disconnected"), ConnectionState.DISCONNECTED),
    (LINK, mailbox("reauth_required"), ConnectionState.REAUTH_REQUIRED),  # R5: its own state, not connected
    (LINK, mailbox("connected"), ConnectionState.CONNECTED),
])
def test_decide(link: Link | None, box: Mailbox | None, state: ConnectionState) -> None:
    conn = decide(link, box)
    assert conn.state is state
    assert conn.connected is (state is ConnectionState.CONNECTED)


@pytest.mark.parametrize("status,state", [
    ("connected", ConnectionState.CONNECTED),
    ("reauth_required", ConnectionState.REAUTH_REQUIRED),
    ("disconnected", ConnectionState.DISCONNECTED),
])
def test_decide_mailbox_is_the_mailbox_half_of_decide(status: str, state: ConnectionState) -> None:
    assert decide_mailbox(mailbox(status)).state is state
    assert decide(LINK, mailbox(status)).state is state


def test_decide_mailbox_without_a_mailbox_is_disconnected() -> None:
    assert decide_mailbox(None).state is ConnectionState.DISCONNECTED


@pytest.mark.parametrize("box,refusal", [
    (None, NotConnected),
    (mailbox("disconnected"), NotConnected),
    (mailbox("reauth_required"), ReauthRequired),
])
def test_no_gmail_session_for_what_the_one_check_does_not_call_connected(box: Mailbox | None,
                                                                          refusal: type[Exception]) -> None:
    # open_gmail and open_gmail_from (the sync's already-read mailbox) both ask decide_mailbox
    with pytest.raises(refusal):
        require_connected("m", box)


def test_a_gmail_session_opens_for_a_connected_mailbox() -> None:
    box = mailbox("connected")
    assert require_connected("m", box) is box
