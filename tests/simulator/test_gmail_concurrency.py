"""State stays consistent when the functions call the simulator in parallel."""

from __future__ import annotations

import base64
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import requests

from tests.simulator.conftest import deliver, gmail_service, rfc822

REP = "rep@example.com"
ALICE = "alice@customer.example"


def test_parallel_deliveries_and_sends_keep_history_unique_and_complete(
    sim: str, token_for: Callable[..., str]
) -> None:
    token = token_for(REP)
    requests.put(f"{sim}/sim/settings", json={"rateLimitUnitsPerSecond": 1_000_000}, timeout=5).raise_for_status()
    start = gmail_service(sim, token).users().getProfile(userId="me").execute()["historyId"]

    def deliver_one(i: int) -> str:
        return str(deliver(sim, REP, rfc822(ALICE, REP, f"in {i}"))["id"])

    def send_one(i: int) -> str:
        raw = base64.urlsafe_b64encode(rfc822(REP, ALICE, f"out {i}")).decode()
        resp = requests.post(f"{sim}/gmail/v1/users/me/messages/send", json={"raw": raw},
                             headers={"Authorization": f"Bearer {token}"}, timeout=10)
        resp.raise_for_status()
        return str(resp.json()["id"])

    with ThreadPoolExecutor(max_workers=16) as pool:
        ids = list(pool.map(deliver_one, range(60))) + list(pool.map(send_one, range(40)))
    assert len(set(ids)) == 100

    gmail = gmail_service(sim, token)
    seen: list[str] = []
    history_ids: list[int] = []
    token_ = None
    while True:
        page = gmail.users().history().list(userId="me", startHistoryId=start, pageToken=token_).execute()
        for rec in page.get("history", []):
            history_ids.append(int(rec["id"]))
            seen += [m["message"]["id"] for m in rec.get("messagesAdded", [])]
        token_ = page.get("nextPageToken")
        if not token_:
            break
    assert sorted(seen) == sorted(ids)  # every message exactly once
    assert history_ids == sorted(set(history_ids))
    assert gmail.users().getProfile(userId="me").execute()["messagesTotal"] == 100
