"""Secrets from Secret Manager, re-read on a short TTL; API keys accepted in two versions during a rotation.

Why a TTL (issue 23): cached for the life of an instance, a revoked key stayed
valid on every warm instance and a new one was refused there until a restart.
Every value read here (`latest` and numbered versions alike, and a version
found unreadable) is kept `SECRET_TTL_SECONDS` (60 s by default) and then read
again, so a change in Secret Manager reaches every instance within a minute
without a redeploy. If Secret Manager does not answer at that moment (an
outage, a timeout), the value read before keeps serving and is tried again on
the next request: an outage of Secret Manager does not become an outage here.
A version Secret Manager says is gone or disabled (NOT_FOUND,
FAILED_PRECONDITION, any 4xx but 429) is dropped at once.

Rotation of an API key without downtime (`api_keys`): the caller's key is
accepted when it is the `latest` version or the version just before it while
that one is still enabled. Add the new version, move the callers to it, then
disable the old version (`gcloud secrets versions disable`): within the TTL
no instance accepts it any more. A leaked key is revoked the same way, at
once: add a new version and disable the leaked one. docs/OPERATIONS.md has
the runbook.
"""

from __future__ import annotations

import hmac
import threading
import time
from dataclasses import dataclass

from shared.core import log
from shared.core.clients import secret_client
from shared.core.config import get_config
from shared.core.roundtrips import ContextPool

_cache: dict[tuple[str, str], _Entry] = {}
_lock = threading.Lock()


def _clock() -> float:
    return time.monotonic()


@dataclass(frozen=True)
class SecretValue:
    data: bytes
    version: str  # the resolved version number ("3"), also for `latest`

    def text(self) -> str:
        return self.data.decode("utf-8")


@dataclass(frozen=True)
class _Entry:
    value: SecretValue | None  # None: Secret Manager said this version cannot be read (gone, disabled)
    read_at: float


class SecretUnavailable(RuntimeError):
    """The secret or version does not exist or cannot be read."""


def _gone(exc: Exception) -> bool:
    """Secret Manager's definite answers that a version cannot be read (as opposed to not answering): a
    4xx but 429. A disabled version is FAILED_PRECONDITION over gRPC and a plain 400 (BadRequest) over
    REST; a destroyed or absent one NOT_FOUND."""
    from google.api_core import exceptions  # lazy: Google's client library (cold start)

    return isinstance(exc, exceptions.ClientError) and not isinstance(exc, exceptions.TooManyRequests)


def _fresh(entry: _Entry | None, now: float) -> bool:
    return entry is not None and now - entry.read_at < get_config().secret_ttl_seconds


def get_secret(name: str, version: str = "latest") -> SecretValue:
    """The secret's value (`latest` or a version number), at most SECRET_TTL_SECONDS old."""
    value = _read(name, version)
    if value is None:
        raise SecretUnavailable(f"secret {name}/{version}: not readable")
    return value


def _read(name: str, version: str) -> SecretValue | None:
    key = (name, version)
    now = _clock()
    with _lock:
        hit = _cache.get(key)
    if hit is not None and _fresh(hit, now):
        return hit.value
    path = f"projects/{get_config().project_id}/secrets/{name}/versions/{version}"
    try:
        resp = secret_client().access_secret_version(request={"name": path})
    except Exception as exc:  # google.api_core exceptions: NotFound, PermissionDenied, ServiceUnavailable…
        if _gone(exc):
            with _lock:
                _cache[key] = _Entry(None, now)
            return None
        if hit is not None and hit.value is not None:  # Secret Manager did not answer: keep what we had
            log.warning("secret re-read failed; serving the value read before", secret=name, version=version,
                        error=type(exc).__name__)
            return hit.value
        raise SecretUnavailable(f"secret {name}/{version}: {type(exc).__name__}") from None
    value = SecretValue(data=bytes(resp.payload.data), version=resp.name.rsplit("/", 1)[-1])
    with _lock:
        _cache[key] = _Entry(value, now)
        _cache[(name, value.version)] = _Entry(value, now)
    return value


def key_accepted(name: str, presented: bytes) -> bool:
    """Whether `presented` is the API key in secret `name`: its `latest` version, or the version just
    before it while that one is enabled (a rotation in progress). The previous version is read only
    when the key is not `latest`, so a caller with the current key costs no extra read."""
    latest = get_secret(name)
    if hmac.compare_digest(presented, latest.data.strip()):
        return True
    if not (latest.version.isdigit() and int(latest.version) > 1):
        return False
    previous = _read(name, str(int(latest.version) - 1))
    return previous is not None and bool(previous.data.strip()) and hmac.compare_digest(
        presented, previous.data.strip())


def clear_cache() -> None:
    with _lock:
        _cache.clear()


def prefetch(names: list[str]) -> None:
    """Read the named secrets that are not cached yet, in parallel (an instance's first request needs
    several, and one after the other they add a round trip each to the cold start). Best effort: a
    secret that cannot be read raises where it is used, with that caller's error."""
    now = _clock()
    with _lock:
        missing = [n for n in names if not _fresh(_cache.get((n, "latest")), now)]
    if not missing:
        return
    secret_client()  # built once, before the workers share it

    def read(name: str) -> None:
        try:
            get_secret(name)
        except SecretUnavailable:
            pass

    with ContextPool(max_workers=len(missing), thread_name_prefix="secrets") as pool:
        reads = [pool.submit(read, name) for name in missing]
    for done in reads:
        done.result()  # anything but SecretUnavailable is a bug: raised, as where the secret is used
