"""shared.core.secrets.prefetch: an instance's first request reads its secrets in parallel (issue 12)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from shared.core import secrets


class BarrierClient:
    """A Secret Manager client whose reads all wait for each other: sequential reads would time out."""

    def __init__(self, parties: int) -> None:
        self.barrier = threading.Barrier(parties, timeout=5)
        self.names: list[str] = []

    def access_secret_version(self, request: dict[str, str]) -> Any:
        self.names.append(request["name"])
        self.barrier.wait()
        return SimpleNamespace(payload=SimpleNamespace(data=b"value"), name=request["name"].replace("latest", "3"))


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[BarrierClient]:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "p1")
    from shared.core.config import get_config

    get_config.cache_clear()
    secrets.clear_cache()
    fake = BarrierClient(3)
    monkeypatch.setattr(secrets, "secret_client", lambda: fake)
    yield fake
    secrets.clear_cache()
    get_config.cache_clear()


def test_the_first_requests_secrets_are_read_at_the_same_time(client: BarrierClient) -> None:
    secrets.prefetch(["crm-api-key", "oauth-client", "token-encryption-key"])
    assert sorted(n.split("/")[3] for n in client.names) == ["crm-api-key", "oauth-client", "token-encryption-key"]
    assert secrets.get_secret("oauth-client").version == "3"  # cached: no further read
    assert len(client.names) == 3


def test_prefetch_reads_only_what_is_not_cached(client: BarrierClient) -> None:
    client.barrier = threading.Barrier(1)
    secrets.get_secret("crm-api-key")
    client.names.clear()
    secrets.prefetch(["crm-api-key"])
    assert client.names == []
