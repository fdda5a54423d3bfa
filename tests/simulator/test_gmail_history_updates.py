"""History Gmail writes when the rep reads, stars, trashes, untrashes or deletes a message (R19).

The sync reads these with users.history.list and must not need a
messages.get per change, so the shapes are Gmail's exactly:

  labelsAdded / labelsRemoved  [{"message": {id, threadId, labelIds}, "labelIds": [...]}]
                               (labelIds of the message: after the change)
  messagesDeleted              [{"message": {id, threadId}}]

Each change comes through the Gmail API (messages.modify, trash, untrash,
delete) and through the admin API acting as the rep in Gmail's UI; both
write the same records and notify the watch like Gmail.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests
from googleapiclient.errors import HttpError

from simulator.app import BackgroundServer
from simulator.client import SimClient
from tests.simulator.conftest import MODIFY, READ, SEND, Topic, deliver, gmail_service, mint_token, rfc822

REP = "rep@example.com"
ALICE = "alice@customer.example"
FULL = "https://mail.google.com/"
INBOUND = ["UNREAD", "CATEGORY_PERSONAL", "INBOX"]


@pytest.fixture
def gmail(sim: str, token_for: Callable[..., str]) -> Any:
    return gmail_service(sim, token_for(REP, (READ, SEND, MODIFY, FULL)))


@pytest.fixture
def inbound(sim: str, gmail: Any) -> dict[str, Any]:
    """One message from a contact in the rep's mailbox, as it arrives: UNREAD, INBOX."""
    return deliver(sim, REP, rfc822(ALICE, REP, "Offer"))


def history(gmail: Any, start: str, **kw: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    token = None
    while True:
        page = gmail.users().history().list(userId="me", startHistoryId=start, pageToken=token, **kw).execute()
        out += page.get("history", [])
        token = page.get("nextPageToken")
        if not token:
            return out


def only(records: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(records) == 1, records
    return records[0]


# -- through the Gmail API ---------------------------------------------------------------------


def test_inbound_message_arrives_unread_in_inbox_as_message_added(sim: str, gmail: Any) -> None:
    start = gmail.users().getProfile(userId="me").execute()["historyId"]
    got = deliver(sim, REP, rfc822(ALICE, REP, "Hello"))
    rec = only(history(gmail, start))
    assert rec["messagesAdded"] == [{"message": {"id": got["id"], "threadId": got["threadId"], "labelIds": INBOUND}}]


def test_read_through_modify_writes_labels_removed_unread_with_the_messages_labels(
    gmail: Any, inbound: dict[str, Any]
) -> None:
    gmail.users().messages().modify(userId="me", id=inbound["id"], body={"removeLabelIds": ["UNREAD"]}).execute()
    rec = only(history(gmail, inbound["historyId"]))
    ref = {"id": inbound["id"], "threadId": inbound["threadId"]}
    assert rec["messages"] == [ref]
    assert rec["labelsRemoved"] == [
        {"message": {**ref, "labelIds": ["CATEGORY_PERSONAL", "INBOX"]}, "labelIds": ["UNREAD"]}
    ]
    assert set(rec) == {"id", "messages", "labelsRemoved"}


def test_star_through_modify_writes_labels_added_starred(gmail: Any, inbound: dict[str, Any]) -> None:
    gmail.users().messages().modify(userId="me", id=inbound["id"], body={"addLabelIds": ["STARRED"]}).execute()
    (change,) = only(history(gmail, inbound["historyId"]))["labelsAdded"]
    assert change["labelIds"] == ["STARRED"]
    assert change["message"]["labelIds"] == [*INBOUND, "STARRED"]


def test_trash_writes_labels_added_trash_and_untrash_labels_removed_trash(
    gmail: Any, inbound: dict[str, Any]
) -> None:
    trashed = gmail.users().messages().trash(userId="me", id=inbound["id"]).execute()
    assert "TRASH" in trashed["labelIds"]
    untrashed = gmail.users().messages().untrash(userId="me", id=inbound["id"]).execute()
    assert "TRASH" not in untrashed["labelIds"]
    added, removed = history(gmail, inbound["historyId"])
    assert added["labelsAdded"][0]["labelIds"] == ["TRASH"]
    assert "TRASH" in added["labelsAdded"][0]["message"]["labelIds"]
    assert removed["labelsRemoved"][0]["labelIds"] == ["TRASH"]
    assert "TRASH" not in removed["labelsRemoved"][0]["message"]["labelIds"]
    assert int(removed["id"]) > int(added["id"])


def test_delete_writes_messages_deleted_with_id_and_thread_id_only(gmail: Any, inbound: dict[str, Any]) -> None:
    gmail.users().messages().delete(userId="me", id=inbound["id"]).execute()
    rec = only(history(gmail, inbound["historyId"]))
    ref = {"id": inbound["id"], "threadId": inbound["threadId"]}
    assert rec["messagesDeleted"] == [{"message": ref}]
    assert rec["messages"] == [ref]


def test_a_change_that_changes_nothing_writes_no_history(gmail: Any, inbound: dict[str, Any]) -> None:
    gmail.users().messages().modify(userId="me", id=inbound["id"], body={"removeLabelIds": ["STARRED"]}).execute()
    gmail.users().messages().untrash(userId="me", id=inbound["id"]).execute()
    assert history(gmail, inbound["historyId"]) == []


def test_modify_with_an_unknown_label_is_400_and_writes_nothing(gmail: Any, inbound: dict[str, Any]) -> None:
    with pytest.raises(HttpError) as err:
        gmail.users().messages().modify(
            userId="me", id=inbound["id"], body={"addLabelIds": ["STARRED", "Label_nope"]}
        ).execute()
    assert err.value.resp.status == 400
    assert history(gmail, inbound["historyId"]) == []


def test_each_change_moves_the_messages_history_id(gmail: Any, inbound: dict[str, Any]) -> None:
    msgs = gmail.users().messages()
    changed = msgs.modify(userId="me", id=inbound["id"], body={"addLabelIds": ["STARRED"]}).execute()
    assert changed["labelIds"] == [*INBOUND, "STARRED"]
    msg = gmail.users().messages().get(userId="me", id=inbound["id"], format="minimal").execute()
    (rec,) = history(gmail, inbound["historyId"])
    assert msg["historyId"] == rec["id"] == gmail.users().getProfile(userId="me").execute()["historyId"]


def test_one_modify_adding_and_removing_is_one_record_with_both_kinds(gmail: Any, inbound: dict[str, Any]) -> None:
    body = {"addLabelIds": ["STARRED"], "removeLabelIds": ["UNREAD", "INBOX"]}
    changed = gmail.users().messages().modify(userId="me", id=inbound["id"], body=body).execute()
    assert changed["labelIds"] == ["CATEGORY_PERSONAL", "STARRED"]
    rec = only(history(gmail, inbound["historyId"]))
    message = {"id": inbound["id"], "threadId": inbound["threadId"], "labelIds": ["CATEGORY_PERSONAL", "STARRED"]}
    assert rec["labelsAdded"] == [{"message": message, "labelIds": ["STARRED"]}]
    assert rec["labelsRemoved"] == [{"message": message, "labelIds": ["UNREAD", "INBOX"]}]
    assert rec["messages"] == [{"id": inbound["id"], "threadId": inbound["threadId"]}]


def test_history_types_keep_only_the_asked_kind_of_a_mixed_record(gmail: Any, inbound: dict[str, Any]) -> None:
    body = {"addLabelIds": ["STARRED"], "removeLabelIds": ["UNREAD"]}
    gmail.users().messages().modify(userId="me", id=inbound["id"], body=body).execute()
    rec = only(history(gmail, inbound["historyId"], historyTypes=["labelRemoved"]))
    assert set(rec) == {"id", "messages", "labelsRemoved"}


def test_a_message_left_without_labels_has_no_label_ids_key(gmail: Any, inbound: dict[str, Any]) -> None:
    # Gmail's JSON leaves empty lists out: a client must read labelIds with a default.
    body = {"removeLabelIds": INBOUND}
    changed = gmail.users().messages().modify(userId="me", id=inbound["id"], body=body).execute()
    assert changed == {"id": inbound["id"], "threadId": inbound["threadId"]}
    (change,) = only(history(gmail, inbound["historyId"]))["labelsRemoved"]
    assert change == {"message": changed, "labelIds": INBOUND}


# -- historyTypes, labelId, fields ------------------------------------------------------------


@pytest.fixture
def every_kind(sim: str, gmail: Any) -> tuple[str, str]:
    """(startHistoryId, message id) after: added, read, starred, trashed, deleted."""
    start = gmail.users().getProfile(userId="me").execute()["historyId"]
    got = deliver(sim, REP, rfc822(ALICE, REP, "All kinds"))
    msgs = gmail.users().messages()
    msgs.modify(userId="me", id=got["id"], body={"removeLabelIds": ["UNREAD"]}).execute()
    msgs.modify(userId="me", id=got["id"], body={"addLabelIds": ["STARRED"]}).execute()
    msgs.trash(userId="me", id=got["id"]).execute()
    msgs.delete(userId="me", id=got["id"]).execute()
    return start, got["id"]


KEYS = {"messageAdded": "messagesAdded", "messageDeleted": "messagesDeleted",
        "labelAdded": "labelsAdded", "labelRemoved": "labelsRemoved"}


def kinds(records: list[dict[str, Any]]) -> list[str]:
    return [next(k for k in r if k in KEYS.values()) for r in records]


def test_history_without_history_types_has_every_kind_in_order(gmail: Any, every_kind: tuple[str, str]) -> None:
    start, _ = every_kind
    assert kinds(history(gmail, start)) == [
        "messagesAdded", "labelsRemoved", "labelsAdded", "labelsAdded", "messagesDeleted"
    ]


@pytest.mark.parametrize("history_type", list(KEYS))
def test_history_types_returns_only_that_kind(gmail: Any, every_kind: tuple[str, str], history_type: str) -> None:
    start, _ = every_kind
    got = kinds(history(gmail, start, historyTypes=[history_type]))
    assert got and set(got) == {KEYS[history_type]}


def test_several_history_types_combine(gmail: Any, every_kind: tuple[str, str]) -> None:
    start, _ = every_kind
    got = kinds(history(gmail, start, historyTypes=["labelAdded", "labelRemoved", "messageDeleted"]))
    assert got == ["labelsRemoved", "labelsAdded", "labelsAdded", "messagesDeleted"]


def test_unknown_history_type_is_400(sim: str, token_for: Callable[..., str]) -> None:
    # google-api-python-client checks the enum itself; another client sends it and Gmail refuses it.
    token = token_for(REP)
    resp = requests.get(
        f"{sim}/gmail/v1/users/me/history", params={"startHistoryId": "1", "historyTypes": "labelChanged"},
        headers={"Authorization": f"Bearer {token}"}, timeout=5,
    )
    assert resp.status_code == 400 and resp.json()["error"]["errors"][0]["reason"] == "invalidArgument"


def test_label_id_filter_keeps_label_changes_of_messages_with_that_label(
    gmail: Any, every_kind: tuple[str, str]
) -> None:
    start, _ = every_kind
    assert kinds(history(gmail, start, labelId="STARRED")) == ["labelsAdded", "labelsAdded", "messagesDeleted"]


def test_fields_partial_response_keeps_the_label_records(gmail: Any, every_kind: tuple[str, str]) -> None:
    start, msg_id = every_kind
    page = gmail.users().history().list(
        userId="me", startHistoryId=start, historyTypes=["labelAdded", "labelRemoved", "messageDeleted"],
        fields="history(id,labelsAdded(labelIds,message/labelIds),labelsRemoved/labelIds,messagesDeleted/message/id),"
               "historyId,nextPageToken",
    ).execute()
    assert set(page) == {"history", "historyId"}
    read, star, trash, deleted = page["history"]
    assert read == {"id": read["id"], "labelsRemoved": [{"labelIds": ["UNREAD"]}]}
    starred_labels = ["CATEGORY_PERSONAL", "INBOX", "STARRED"]
    assert star["labelsAdded"] == [{"labelIds": ["STARRED"], "message": {"labelIds": starred_labels}}]
    assert trash["labelsAdded"][0]["labelIds"] == ["TRASH"]
    assert deleted == {"id": deleted["id"], "messagesDeleted": [{"message": {"id": msg_id}}]}


def test_fields_naming_a_field_history_does_not_have_is_400(gmail: Any) -> None:
    start = gmail.users().getProfile(userId="me").execute()["historyId"]
    with pytest.raises(HttpError) as err:
        gmail.users().history().list(userId="me", startHistoryId=start, fields="history(labelsChanged)").execute()
    assert err.value.resp.status == 400


# -- the rep in Gmail's UI (admin API) ----------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "key", "label", "labels_after"),
    [
        ("read", "labelsRemoved", "UNREAD", ["CATEGORY_PERSONAL", "INBOX"]),
        ("star", "labelsAdded", "STARRED", [*INBOUND, "STARRED"]),
        ("trash", "labelsAdded", "TRASH", [*INBOUND, "TRASH"]),
    ],
)
def test_rep_action_in_gmail_writes_the_label_record(
    sim: str, gmail: Any, inbound: dict[str, Any], action: str, key: str, label: str, labels_after: list[str]
) -> None:
    answer = SimClient(sim).rep_action(REP, inbound["id"], action)
    assert answer["labelIds"] == labels_after
    rec = only(history(gmail, inbound["historyId"]))
    assert rec["id"] == answer["historyId"]
    message = {"id": inbound["id"], "threadId": inbound["threadId"], "labelIds": labels_after}
    assert rec[key] == [{"message": message, "labelIds": [label]}]


@pytest.mark.parametrize(
    ("first", "undo", "key", "label"),
    [("read", "unread", "labelsAdded", "UNREAD"), ("star", "unstar", "labelsRemoved", "STARRED"),
     ("trash", "untrash", "labelsRemoved", "TRASH")],
)
def test_rep_undo_in_gmail_writes_the_opposite_record(
    sim: str, gmail: Any, inbound: dict[str, Any], first: str, undo: str, key: str, label: str
) -> None:
    sim_client = SimClient(sim)
    sim_client.rep_action(REP, inbound["id"], first)
    after_undo = sim_client.rep_action(REP, inbound["id"], undo)
    assert sorted(after_undo["labelIds"]) == sorted(INBOUND)
    _, undone = history(gmail, inbound["historyId"])
    assert undone[key] == [
        {"message": {"id": inbound["id"], "threadId": inbound["threadId"], "labelIds": after_undo["labelIds"]},
         "labelIds": [label]}
    ]


def test_rep_deletes_for_ever_in_gmail_writes_messages_deleted(sim: str, gmail: Any, inbound: dict[str, Any]) -> None:
    SimClient(sim).trash(REP, inbound["id"])
    SimClient(sim).delete_message(REP, inbound["id"])
    _, rec = history(gmail, inbound["historyId"])
    assert rec["messagesDeleted"] == [{"message": {"id": inbound["id"], "threadId": inbound["threadId"]}}]


def test_rep_reading_a_whole_thread_is_one_record_for_each_unread_message(sim: str, gmail: Any) -> None:
    first = deliver(sim, REP, rfc822(ALICE, REP, "Terms", Message_ID="<t1@customer.example>"))
    second = deliver(sim, REP, rfc822(ALICE, REP, "Re: Terms", In_Reply_To="<t1@customer.example>"))
    third = deliver(sim, REP, rfc822(ALICE, REP, "Re: Terms", In_Reply_To="<t1@customer.example>"))
    assert first["threadId"] == second["threadId"] == third["threadId"]
    SimClient(sim).read(REP, second["id"])  # already read: not part of the thread's record
    answer = SimClient(sim).thread_action(REP, first["threadId"], "read")
    assert all("UNREAD" not in m["labelIds"] for m in answer["messages"])
    rec = history(gmail, second["historyId"])[-1]
    assert rec["id"] == answer["historyId"]
    assert [m["id"] for m in rec["messages"]] == [first["id"], third["id"]]
    assert [c["message"]["id"] for c in rec["labelsRemoved"]] == [first["id"], third["id"]]
    assert all(c["labelIds"] == ["UNREAD"] for c in rec["labelsRemoved"])


def test_rep_action_on_an_unknown_thread_is_404(sim: str, inbound: dict[str, Any]) -> None:
    resp = requests.post(f"{sim}/sim/mailboxes/{REP}/threads/ffffffffffffffff/trash", timeout=5)
    assert resp.status_code == 404 and resp.json()["error"] == "not_found"


def test_unknown_rep_action_is_404_and_changes_nothing(sim: str, gmail: Any, inbound: dict[str, Any]) -> None:
    resp = requests.post(f"{sim}/sim/mailboxes/{REP}/messages/{inbound['id']}/archive-all", timeout=5)
    assert resp.status_code == 404 and resp.json()["error"] == "unknown_action"
    assert history(gmail, inbound["historyId"]) == []


def test_rep_action_on_an_unknown_message_is_404(sim: str, inbound: dict[str, Any]) -> None:
    resp = requests.post(f"{sim}/sim/mailboxes/{REP}/messages/ffffffffffffffff/read", timeout=5)
    assert resp.status_code == 404 and resp.json()["error"] == "not_found"


# -- watch notifications --------------------------------------------------------------------------


@pytest.mark.parametrize("change", ["api-modify", "api-trash", "api-delete", "ui-read", "ui-star", "ui-delete"])
def test_each_change_publishes_a_watch_notification_with_its_history_id(
    watched: tuple[BackgroundServer, Topic], change: str
) -> None:
    server, topic = watched
    requests.put(f"{server.url}/sim/settings", json={"notificationMinIntervalMs": 0}, timeout=5)
    gmail = gmail_service(server.url, mint_token(server, REP, (READ, SEND, MODIFY, FULL)))
    got = deliver(server.url, REP, rfc822(ALICE, REP, "Watched"))
    gmail.users().watch(userId="me", body={"topicName": topic.path, "labelIds": ["INBOX"]}).execute()
    msgs, sim_client = gmail.users().messages(), SimClient(server.url)
    {
        "api-modify": lambda: msgs.modify(userId="me", id=got["id"], body={"removeLabelIds": ["UNREAD"]}).execute(),
        "api-trash": lambda: msgs.trash(userId="me", id=got["id"]).execute(),
        "api-delete": lambda: msgs.delete(userId="me", id=got["id"]).execute(),
        "ui-read": lambda: sim_client.read(REP, got["id"]),
        "ui-star": lambda: sim_client.star(REP, got["id"]),
        "ui-delete": lambda: sim_client.delete_message(REP, got["id"]),
    }[change]()
    newest = gmail.users().getProfile(userId="me").execute()["historyId"]
    assert int(newest) > int(got["historyId"])
    assert topic.pull(1) == [{"emailAddress": REP, "historyId": int(newest)}]
