"""Partial responses (`fields`): only the selected fields, and 400 for a field Google does not have."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from googleapiclient.errors import HttpError

from tests.simulator.conftest import deliver, gmail_service, rfc822

REP = "rep@example.com"
ALICE = "alice@customer.example"


@pytest.fixture
def gmail(sim: str, token_for: Callable[..., str]) -> Any:
    return gmail_service(sim, token_for(REP))


def test_fields_keeps_only_the_selected_paths(sim: str, gmail: Any) -> None:
    got = deliver(sim, REP, rfc822(ALICE, REP, "hi"))
    msg = gmail.users().messages().get(userId="me", id=got["id"], fields="id,payload/mimeType,labelIds").execute()
    assert msg == {"id": got["id"], "labelIds": ["UNREAD", "CATEGORY_PERSONAL", "INBOX"],
                   "payload": {"mimeType": "text/plain"}}


def test_fields_sub_selection_applies_to_each_list_element(sim: str, gmail: Any) -> None:
    start = gmail.users().getProfile(userId="me", fields="historyId").execute()
    assert list(start) == ["historyId"]
    got = deliver(sim, REP, rfc822(ALICE, REP, "hi"))
    page = gmail.users().history().list(
        userId="me", startHistoryId=start["historyId"],
        fields="history(id,messagesAdded(message(id,threadId,labelIds))),nextPageToken,historyId",
    ).execute()
    assert page["history"] == [{"id": got["historyId"], "messagesAdded": [
        {"message": {"id": got["id"], "threadId": got["threadId"],
                     "labelIds": ["UNREAD", "CATEGORY_PERSONAL", "INBOX"]}}]}]


def test_fields_in_batch_parts(sim: str, gmail: Any) -> None:
    got = deliver(sim, REP, rfc822(ALICE, REP, "hi"))
    out: list[Any] = []
    batch = gmail.new_batch_http_request(callback=lambda _i, resp, exc: out.append((resp, exc)))
    batch.add(gmail.users().messages().get(userId="me", id=got["id"], format="full", fields="id,snippet"))
    batch.execute()
    assert out == [({"id": got["id"], "snippet": "hello"}, None)]


@pytest.mark.parametrize("selection", ["id,payloads", "history(id,messageAdded)", "id,(", "payload/headers/nope"])
def test_a_field_the_schema_does_not_have_is_400(sim: str, gmail: Any, selection: str) -> None:
    got = deliver(sim, REP, rfc822(ALICE, REP, "hi"))
    call = (
        gmail.users().history().list(userId="me", startHistoryId="1", fields=selection)
        if selection.startswith("history")
        else gmail.users().messages().get(userId="me", id=got["id"], fields=selection)
    )
    with pytest.raises(HttpError) as err:
        call.execute()
    assert err.value.resp.status == 400
