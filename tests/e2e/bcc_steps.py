"""Steps of the Auto BCC and attachments tests: posting a copy as the inbound-mail webhook does, and
proving that a refused request wrote nothing."""

from __future__ import annotations

from typing import Any

import requests

# The per-address rate limit counts every request let through, refused copies included (issue 23): its
# counter is the one document a refused copy may touch (shared/auto_bcc/rate_limit.py).
COUNTERS = ("sync_auto_bcc_rate",)


def snapshot(db: Any) -> dict[str, Any]:
    """Every document in the database (but request counters) and when it was last written: equal snapshots =
    nothing written."""
    out: dict[str, Any] = {}

    def walk(collections: Any) -> None:
        for col in collections:
            if col.id in COUNTERS:
                continue
            for ref in col.list_documents():
                snap = ref.get()
                if snap.exists:
                    out[ref.path] = snap.update_time
                walk(ref.collections())

    walk(db.collections())
    return out


def post_copy(stack: Any, to: str, raw: bytes, timeout: float = 120) -> requests.Response:
    """POST the raw copy to auto_bcc as the inbound-mail webhook does."""
    return requests.post(stack.function_url("auto_bcc"), params={"to": to}, data=raw, timeout=timeout,
                         headers={"Authorization": f"Bearer {stack.secrets.inbound_api_key}",
                                  "Content-Type": "message/rfc822"})
