""""Sync this mailbox now": the one way any function asks for a sync pass.

The CRM's resync, a reconnect (R5b), the sweep, a pass that ran out of time
and the watch renewal fan-out all publish to the sync's control topic (never
to Gmail's watch topic: shared/sync/messages.py says why), stamped with the
time of the request, so the sync can drop a request a later pass answered.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from shared.core.clients import publisher
from shared.core.config import get_config
from shared.sync.messages import force_data, renew_data, sweep_data


def now_ms() -> int:
    return int(time.time() * 1000)


def sync_request_data(address: str, reason: str = "resync", requested_at_ms: int | None = None) -> bytes:
    return force_data(address, now_ms() if requested_at_ms is None else requested_at_ms, reason)


def _publish(payloads: Iterable[bytes], timeout: float) -> int:
    topic = get_config().sync_control_topic_path
    futures = [publisher().publish(topic, data) for data in payloads]
    for f in futures:
        f.result(timeout=timeout)
    return len(futures)


def request_sync(addresses: Iterable[str], timeout: float = 30.0, reason: str = "resync") -> int:
    """Publish a forced sync for each address; waits until Pub/Sub has them. Returns how many."""
    at = now_ms()
    return _publish((force_data(a, at, reason) for a in addresses if a), timeout)


def request_renewals(addresses: Iterable[str], timeout: float = 30.0) -> int:
    """One renewal message per mailbox whose watch is due (shared/sync/renewal.py fans them out)."""
    at = now_ms()
    return _publish((renew_data(a, at) for a in addresses if a), timeout)


def request_sweeps(shards: Iterable[int | None], timeout: float = 30.0) -> int:
    """Sweep messages: one per shard (the scheduler's fan-out), or a shard's continuation."""
    return _publish((sweep_data(s) for s in shards), timeout)
