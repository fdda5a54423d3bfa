"""The messages `gmail_push` receives, on two topics, and how they are written.

Gmail's own notifications arrive on the watch topic; the sync's control
messages (forced syncs, sweeps, watch renewals, continuations) on a topic of
their own with its own push subscription, ack deadline and dead letters, so a
sweep fan-out never queues in front of Gmail's notifications and each queue's
backlog and failures can be watched apart (docs/SCALE.md).

- `{"emailAddress", "historyId"}`: Gmail's notification.
- `{"emailAddress", "force": true, "requestedAt": ms, "reason"}`: sync now.
  `requestedAt` lets the sync drop a request that a pass started after it
  has already answered (a sweep's force that waited in a lagging queue).
- `{"emailAddress", "renew": true, "requestedAt": ms}`: the watch is due for
  renewal (the daily fan-out); handled as a forced sync, which renews it.
- `{"sweep": true}`: Cloud Scheduler's tick: fan out one message per shard;
  `{"sweep": true, "shard": n}`: sweep one shard.
- `{"dailyTick": true, "renewAfter": {"at": µs, "id": mailboxId}}`: the daily
  tick's continuation (quota_reset), on the daily-tick topic.

Messages without `requestedAt` (0.1's shape) are still understood.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

REASONS = ("resync", "reconnect", "sweep", "continue", "renew", "lease_wait")


@dataclass(frozen=True)
class PushMessage:
    address: str | None = None
    history_id: int | None = None
    force: bool = False
    sweep: bool = False
    shard: int | None = None
    requested_at_ms: int | None = None
    renew: bool = False
    reason: str | None = None


class Malformed(ValueError):
    """The Pub/Sub message is none of the kinds above."""


def event_body(cloud_event: Any) -> Any:
    """CloudEvent (Pub/Sub `messagePublished`) → the decoded JSON body, or Malformed."""
    data = getattr(cloud_event, "data", None)
    if not isinstance(data, dict):
        raise Malformed("event has no data")
    message = data.get("message")
    if not isinstance(message, dict) or not isinstance(message.get("data"), str):
        raise Malformed("event has no message.data")
    try:
        return json.loads(base64.b64decode(message["data"], validate=False))
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError) as exc:  # RecursionError: deep JSON
        raise Malformed(f"message.data is not base64 JSON: {type(exc).__name__}") from None


MAX_INT64 = 2**63 - 1


def _int(value: Any, what: str) -> int | None:
    """A non-negative int64 as Gmail and our publishers write it (a decimal string or a JSON integer);
    1e400, 1.5, true, -1 and 20 digits are malformed, never an exception that makes Pub/Sub redeliver."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise Malformed(f"{what} is not an integer")
    if isinstance(value, str) and not (value.isascii() and value.isdigit() and len(value) <= 19):
        raise Malformed(f"{what} is not a decimal integer")
    number = int(value)
    if not 0 <= number <= MAX_INT64:
        raise Malformed(f"{what} is out of range")
    return number


def _is_unicode(text: str) -> bool:
    """False for a lone surrogate (JSON's "\\ud800"), which no id or log line can encode."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def decode(cloud_event: Any) -> PushMessage:
    """CloudEvent → PushMessage, or Malformed (acknowledged and logged by the caller)."""
    body = event_body(cloud_event)
    if not isinstance(body, dict):
        raise Malformed("message body is not an object")
    if body.get("sweep") is True:
        shard = _int(body.get("shard"), "shard")
        if shard is not None and shard < 0:
            raise Malformed("shard is negative")
        return PushMessage(sweep=True, shard=shard)
    address = body.get("emailAddress")
    if not isinstance(address, str) or "@" not in address or len(address) > 320 or not _is_unicode(address):
        raise Malformed("emailAddress missing or invalid")
    history_id = _int(body.get("historyId"), "historyId")
    force = body.get("force") is True
    renew = body.get("renew") is True
    if history_id is None and not force and not renew:
        raise Malformed("neither historyId nor force")
    requested = _int(body.get("requestedAt"), "requestedAt")
    reason = body.get("reason") if body.get("reason") in REASONS else None
    return PushMessage(address=address.strip().lower(), history_id=history_id, force=force or renew,
                       requested_at_ms=requested, renew=renew, reason=reason)


def force_data(address: str, requested_at_ms: int, reason: str) -> bytes:
    return json.dumps({"emailAddress": address, "force": True, "requestedAt": requested_at_ms,
                       "reason": reason}).encode("utf-8")


def renew_data(address: str, requested_at_ms: int) -> bytes:
    return json.dumps({"emailAddress": address, "renew": True, "requestedAt": requested_at_ms,
                       "reason": "renew"}).encode("utf-8")


def sweep_data(shard: int | None = None) -> bytes:
    body: dict[str, Any] = {"sweep": True}
    if shard is not None:
        body["shard"] = shard
    return json.dumps(body).encode("utf-8")
