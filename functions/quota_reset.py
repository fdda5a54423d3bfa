"""quota_reset: the daily tick (Cloud Scheduler → Pub/Sub `daily-tick`) and its continuations.

R17's counters need no work (send slots count a rolling 24 hours, R30, and old ones expire by
Firestore TTL policy); the tick fans the Gmail watch renewals out to the
sync (shared/sync/daily.py, shared/sync/renewal.py). A message carrying
`renewAfter` is a continuation of a run that reached its budget.
"""

from __future__ import annotations

from typing import Any

from shared.core import roundtrips


def handle(cloud_event: Any) -> None:
    from shared.sync import daily

    with roundtrips.metering() as meter:
        report = daily.run(after=daily.decode_after(cloud_event))
    daily.log_report(report, meter.summary())
