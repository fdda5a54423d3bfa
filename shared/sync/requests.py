""""Sync this mailbox now": the one way any function asks for a sync pass.

The CRM's resync, a reconnect (R5b), the sweep and a pass that ran out of
time all publish the same message, so the sync sees one shape.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from shared.core.config import get_config


def sync_request_data(address: str) -> bytes:
    return json.dumps({"emailAddress": address, "force": True}).encode("utf-8")


def request_sync(addresses: Iterable[str], timeout: float = 30.0) -> int:
    """Publish a forced sync for each address; waits until Pub/Sub has them. Returns how many."""
    from shared.core.clients import publisher

    topic = get_config().gmail_watch_topic_path
    futures = [publisher().publish(topic, sync_request_data(a)) for a in addresses if a]
    for f in futures:
        f.result(timeout=timeout)
    return len(futures)
