"""A mailbox at Google: its profile (address, current historyId) and its watch on the Gmail topic.

Connecting reads both (R2: the sync starts at the profile's historyId); the sync's renewals
call `start_watch` again before a watch lapses. Here, not in `connect`, so the sync renews
a watch without depending on the package that connects.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.core.config import get_config

GMAIL_NUM_RETRIES = 3  # googleapiclient's own backoff on 429/5xx


@dataclass(frozen=True)
class Profile:
    address: str
    history_id: str
    aliases: tuple[str, ...] = ()  # R28: accepted send-as aliases (shared/gmail/send_as.py)


def read_profile(service: Any) -> Profile:
    resp = service.users().getProfile(userId="me").execute(num_retries=GMAIL_NUM_RETRIES)
    return Profile(address=str(resp["emailAddress"]), history_id=str(resp["historyId"]))


def start_watch(service: Any, exclude: frozenset[str] = frozenset()) -> datetime:
    """users.watch on the Gmail topic, returns its expiration. Every change notifies, except changes
    touching a label of `exclude` (`labelFilterBehavior: exclude`; shared/sync/watch_filter.py says why)."""
    body: dict[str, Any] = {"topicName": get_config().gmail_watch_topic_path}
    if exclude:
        body.update(labelIds=sorted(exclude), labelFilterBehavior="exclude")
    resp = service.users().watch(userId="me", body=body).execute(num_retries=GMAIL_NUM_RETRIES)
    return datetime.fromtimestamp(int(resp["expiration"]) / 1000, tz=UTC)
