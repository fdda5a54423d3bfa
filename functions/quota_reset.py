"""quota_reset: the daily tick (Cloud Scheduler → Pub/Sub `daily-tick`): Gmail watch renewals fanned out.

The name is the deployed one (the contract keeps it); it resets no quota.
R17's send slots count Gmail's rolling 24 hours (R30), so they need no reset, and old
slots and idempotency records expire by Firestore TTL policy (`expireAt`).
What the tick does is fan the due Gmail watch renewals out to the sync
(shared/sync/daily.py, shared/sync/renewal.py). A message carrying
`renewAfter` is a continuation of a run that reached its budget. It logs as
`invocation: "daily_tick"`.
"""

from __future__ import annotations

from typing import Any

from shared.core import roundtrips


def handle(cloud_event: Any) -> None:
    from shared.sync import daily

    with roundtrips.metering() as meter:
        report = daily.run(after=daily.decode_after(cloud_event))
    daily.log_report(report, meter.summary())
