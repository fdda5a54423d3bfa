"""Issue 23, keys: secrets are re-read on a short TTL, and an API key is accepted in two versions during a
rotation (latest, and the one before while it is enabled). A Secret Manager client of versions and states
stands in for Google; the TTL's clock is the test's."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from google.api_core import exceptions

from shared.core import secrets

NAME = "crm-api-key"


class Versions:
    """Secret Manager's versions:access for one secret: versions numbered from 1, some disabled."""

    def __init__(self, *values: str) -> None:
        self.values = [v.encode() for v in values]
        self.disabled: set[int] = set()
        self.reads = 0
        self.down = False

    def add(self, value: str) -> None:
        self.values.append(value.encode())

    def access_secret_version(self, request: dict[str, str]) -> Any:
        self.reads += 1
        if self.down:
            raise exceptions.ServiceUnavailable("Secret Manager is down")
        version = request["name"].rsplit("/", 1)[-1]
        n = len(self.values) if version == "latest" else int(version)
        if not 1 <= n <= len(self.values):
            raise exceptions.NotFound("no such version")
        if n in self.disabled:
            raise exceptions.FailedPrecondition("is in DISABLED state")
        return SimpleNamespace(payload=SimpleNamespace(data=self.values[n - 1]),
                               name=f"projects/1/secrets/{NAME}/versions/{n}")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Versions, Clock]]:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "p1")
    monkeypatch.setenv("SECRET_TTL_SECONDS", "60")
    from shared.core.config import get_config

    get_config.cache_clear()
    secrets.clear_cache()
    versions, clock = Versions("key-one"), Clock()
    monkeypatch.setattr(secrets, "secret_client", lambda: versions)
    monkeypatch.setattr(secrets, "_clock", clock)
    yield versions, clock
    secrets.clear_cache()
    get_config.cache_clear()


def test_keys_revoked_key_is_refused_on_a_warm_instance_within_the_ttl(world: tuple[Versions, Clock]) -> None:
    versions, clock = world
    assert secrets.key_accepted(NAME, b"key-one")  # the instance is warm: key-one cached
    versions.add("key-two")
    versions.disabled.add(1)  # key-one leaked: rotated and disabled at once
    clock.now += 61
    assert not secrets.key_accepted(NAME, b"key-one")
    assert secrets.key_accepted(NAME, b"key-two")


def test_keys_a_new_key_is_accepted_on_a_warm_instance_within_the_ttl(world: tuple[Versions, Clock]) -> None:
    versions, clock = world
    assert secrets.get_secret(NAME).data == b"key-one"
    versions.add("key-two")
    clock.now += 59
    assert secrets.get_secret(NAME).data == b"key-one"  # cached within the TTL: no read per request
    clock.now += 2
    assert secrets.get_secret(NAME).data == b"key-two"


def test_keys_rotation_accepts_latest_and_the_previous_enabled_version(world: tuple[Versions, Clock]) -> None:
    versions, clock = world
    versions.add("key-two")
    assert secrets.key_accepted(NAME, b"key-two")
    assert secrets.key_accepted(NAME, b"key-one")  # callers not moved yet: no downtime
    assert not secrets.key_accepted(NAME, b"key-zero")
    versions.disabled.add(1)  # the rotation ends
    clock.now += 61
    assert secrets.key_accepted(NAME, b"key-two")
    assert not secrets.key_accepted(NAME, b"key-one")


def test_keys_only_the_version_just_before_latest_is_accepted(world: tuple[Versions, Clock]) -> None:
    versions, _ = world
    versions.add("key-two")
    versions.add("key-three")
    assert secrets.key_accepted(NAME, b"key-three") and secrets.key_accepted(NAME, b"key-two")
    assert not secrets.key_accepted(NAME, b"key-one")


def test_keys_the_current_key_costs_no_read_of_the_previous_version(world: tuple[Versions, Clock]) -> None:
    versions, _ = world
    versions.add("key-two")
    for _ in range(5):
        assert secrets.key_accepted(NAME, b"key-two")
    assert versions.reads == 1


def test_keys_a_refused_previous_version_is_remembered_for_the_ttl(world: tuple[Versions, Clock]) -> None:
    versions, _ = world
    versions.add("key-two")
    versions.disabled.add(1)
    for _ in range(5):
        assert not secrets.key_accepted(NAME, b"wrong")
    assert versions.reads == 2  # latest once, the disabled version once


def test_keys_secret_manager_outage_keeps_serving_the_value_read_before(world: tuple[Versions, Clock]) -> None:
    versions, clock = world
    assert secrets.key_accepted(NAME, b"key-one")
    versions.down = True
    clock.now += 61
    assert secrets.key_accepted(NAME, b"key-one")


def test_keys_first_read_during_an_outage_is_unavailable(world: tuple[Versions, Clock]) -> None:
    versions, _ = world
    versions.down = True
    with pytest.raises(secrets.SecretUnavailable):
        secrets.get_secret(NAME)
