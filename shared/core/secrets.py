"""Secrets from Secret Manager, read once per process per version.

`latest` is cached for the life of the instance (a rotated key reaches new
instances; old ones keep working because every version stays readable).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from shared.core.clients import secret_client
from shared.core.config import get_config
from shared.core.roundtrips import ContextPool

_cache: dict[tuple[str, str], SecretValue] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class SecretValue:
    data: bytes
    version: str  # the resolved version number ("3"), also for `latest`

    def text(self) -> str:
        return self.data.decode("utf-8")


class SecretUnavailable(RuntimeError):
    """The secret or version does not exist or cannot be read."""


def get_secret(name: str, version: str = "latest") -> SecretValue:
    key = (name, version)
    with _lock:
        hit = _cache.get(key)
    if hit is not None:
        return hit
    cfg = get_config()
    path = f"projects/{cfg.project_id}/secrets/{name}/versions/{version}"
    try:
        resp = secret_client().access_secret_version(request={"name": path})
    except Exception as exc:  # google.api_core exceptions: NotFound, PermissionDenied…
        raise SecretUnavailable(f"secret {name}/{version}: {type(exc).__name__}") from None
    value = SecretValue(data=bytes(resp.payload.data), version=resp.name.rsplit("/", 1)[-1])
    with _lock:
        _cache[key] = value
        _cache[(name, value.version)] = value
    return value


def clear_cache() -> None:
    with _lock:
        _cache.clear()


def prefetch(names: list[str]) -> None:
    """Read the named secrets that are not cached yet, in parallel (an instance's first request needs
    several, and one after the other they add a round trip each to the cold start). Best effort: a
    secret that cannot be read raises where it is used, with that caller's error."""
    with _lock:
        missing = [n for n in names if (n, "latest") not in _cache]
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
