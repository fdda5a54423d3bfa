"""users.history.list: records, filters, paging, and expiry (404) of an old startHistoryId."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests
from googleapiclient.errors import HttpError

from tests.simulator.conftest import b64, deliver, gmail_service, rfc822

REP = "rep@example.com"
ALICE = "alice@customer.example"


@pytest.fixture
def gmail(sim: str, token_for: Callable[..., str]) -> Any:
    return gmail_service(sim, token_for(REP))


def start_id(gmail: Any) -> str:
    return str(gmail.users().getProfile(userId="me").execute()["historyId"])


def all_history(gmail: Any, start: str, **kw: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    token = None
    while True:
        page = gmail.users().history().list(userId="me", startHistoryId=start, pageToken=token, **kw).execute()
        out += page.get("history", [])
        token = page.get("nextPageToken")
        if not token:
            return out


def test_history_lists_added_messages_after_the_start_id(sim: str, gmail: Any) -> None:
    start = start_id(gmail)
    a = deliver(sim, REP, rfc822(ALICE, REP, "one"))
    page = gmail.users().history().list(userId="me", startHistoryId=start).execute()
    (rec,) = page["history"]
    assert rec["id"] == a["historyId"]
    assert rec["messages"] == [{"id": a["id"], "threadId": a["threadId"]}]
    assert rec["messagesAdded"][0]["message"]["labelIds"] == ["UNREAD", "CATEGORY_PERSONAL", "INBOX"]
    assert page["historyId"] == a["historyId"]


def test_history_ids_strictly_increase(sim: str, gmail: Any) -> None:
    start = start_id(gmail)
    for i in range(5):
        deliver(sim, REP, rfc822(ALICE, REP, f"m{i}"))
    ids = [int(r["id"]) for r in all_history(gmail, start)]
    assert len(ids) == 5 and ids == sorted(set(ids)) and ids[0] > int(start)


def test_history_pages_with_max_results_and_page_token(sim: str, gmail: Any) -> None:
    start = start_id(gmail)
    added = [deliver(sim, REP, rfc822(ALICE, REP, f"m{i}"))["id"] for i in range(7)]
    first = gmail.users().history().list(userId="me", startHistoryId=start, maxResults=3).execute()
    assert len(first["history"]) == 3 and "nextPageToken" in first
    seen = [r["messages"][0]["id"] for r in all_history(gmail, start, maxResults=3)]
    assert seen == added


def test_history_records_label_changes_and_deletions(sim: str, gmail: Any) -> None:
    # One modify is one operation: one record holding both its labelsAdded and its labelsRemoved.
    a = deliver(sim, REP, rfc822(ALICE, REP, "one"))
    start = a["historyId"]
    requests.post(f"{sim}/sim/mailboxes/{REP}/messages/{a['id']}/modify",
                  json={"addLabelIds": ["STARRED"], "removeLabelIds": ["UNREAD"]}, timeout=5).raise_for_status()
    requests.delete(f"{sim}/sim/mailboxes/{REP}/messages/{a['id']}", timeout=5).raise_for_status()
    recs = all_history(gmail, start)
    assert len(recs) == 2
    assert recs[0]["labelsRemoved"][0]["labelIds"] == ["UNREAD"]
    assert recs[0]["labelsAdded"][0]["labelIds"] == ["STARRED"]
    assert recs[1]["messagesDeleted"][0]["message"]["id"] == a["id"]


def test_history_types_filter(sim: str, gmail: Any) -> None:
    start = start_id(gmail)
    a = deliver(sim, REP, rfc822(ALICE, REP, "one"))
    requests.post(f"{sim}/sim/mailboxes/{REP}/messages/{a['id']}/modify",
                  json={"removeLabelIds": ["UNREAD"]}, timeout=5).raise_for_status()
    recs = all_history(gmail, start, historyTypes=["labelRemoved"])
    assert len(recs) == 1 and "labelsRemoved" in recs[0]


def test_history_label_id_filter(sim: str, gmail: Any) -> None:
    start = start_id(gmail)
    deliver(sim, REP, rfc822(ALICE, REP, "in"))
    sent = gmail.users().messages().send(userId="me", body={"raw": b64(rfc822(REP, ALICE, "out"))}).execute()
    recs = all_history(gmail, start, labelId="SENT")
    assert [r["messages"][0]["id"] for r in recs] == [sent["id"]]


def test_history_of_an_idle_mailbox_has_no_history_key(gmail: Any) -> None:
    start = start_id(gmail)
    assert gmail.users().history().list(userId="me", startHistoryId=start).execute() == {"historyId": start}


def test_start_history_id_older_than_retention_is_404(sim: str, gmail: Any) -> None:
    requests.put(f"{sim}/sim/settings", json={"historyRetention": 3}, timeout=5).raise_for_status()
    start = start_id(gmail)
    for i in range(5):
        deliver(sim, REP, rfc822(ALICE, REP, f"m{i}"))
    with pytest.raises(HttpError) as err:
        gmail.users().history().list(userId="me", startHistoryId=start).execute()
    assert err.value.resp.status == 404
    assert err.value.error_details[0]["reason"] == "notFound"
    # The newest retained window is still readable from its own start.
    latest = start_id(gmail)
    assert gmail.users().history().list(userId="me", startHistoryId=latest).execute() == {"historyId": latest}


def test_lowering_retention_at_run_time_expires_existing_history(sim: str, gmail: Any) -> None:
    start = start_id(gmail)
    for i in range(3):
        deliver(sim, REP, rfc822(ALICE, REP, f"m{i}"))
    assert len(all_history(gmail, start)) == 3
    requests.put(f"{sim}/sim/settings", json={"historyRetention": 0}, timeout=5).raise_for_status()
    with pytest.raises(HttpError) as err:
        gmail.users().history().list(userId="me", startHistoryId=start).execute()
    assert err.value.resp.status == 404


def test_non_numeric_start_history_id_is_400(gmail: Any) -> None:
    with pytest.raises(HttpError) as err:
        gmail.users().history().list(userId="me", startHistoryId="abc").execute()
    assert err.value.resp.status == 400
