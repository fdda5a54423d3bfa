"""R33 in the simulator: changing a message needs gmail.modify (or full mail), as at Google.

A pre-0.3 grant (gmail.readonly + gmail.send) reads but cannot modify, trash
or untrash: 403 `insufficientPermissions`, the message unchanged. A
gmail.modify grant reads and changes (the scopes each method accepts come
from the discovery document the clients ship).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from googleapiclient.errors import HttpError

from tests.simulator.conftest import READ, SEND, deliver, gmail_service, rfc822

REP = "modify.rep@example.com"
MODIFY = "https://www.googleapis.com/auth/gmail.modify"


def _message(sim: str) -> str:
    return str(deliver(sim, REP, rfc822("carla@client.test", REP, "Hello"))["id"])


@pytest.mark.parametrize("call", ["modify", "trash", "untrash"])
def test_r33_a_read_only_grant_cannot_change_a_message(sim: str, token_for: Callable[..., str], call: str) -> None:
    messages = gmail_service(sim, token_for(REP, (READ, SEND))).users().messages()
    msg_id = _message(sim)
    kwargs = {"body": {"removeLabelIds": ["UNREAD"]}} if call == "modify" else {}
    with pytest.raises(HttpError) as err:
        getattr(messages, call)(userId="me", id=msg_id, **kwargs).execute()
    assert err.value.resp.status == 403
    assert err.value.error_details[0]["reason"] == "insufficientPermissions"
    assert "UNREAD" in messages.get(userId="me", id=msg_id, format="minimal").execute()["labelIds"]


def test_r33_a_modify_grant_reads_and_changes_a_message(sim: str, token_for: Callable[..., str]) -> None:
    messages = gmail_service(sim, token_for(REP, (MODIFY, SEND))).users().messages()
    msg_id = _message(sim)
    messages.modify(userId="me", id=msg_id, body={"removeLabelIds": ["UNREAD"], "addLabelIds": ["STARRED"]}).execute()
    messages.trash(userId="me", id=msg_id).execute()
    labels = set(messages.get(userId="me", id=msg_id, format="minimal").execute()["labelIds"])
    assert {"STARRED", "TRASH"} <= labels and "UNREAD" not in labels
