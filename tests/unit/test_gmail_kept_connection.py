"""shared.gmail.service.kept_connection: the send path reuses its Gmail connection (issue 12)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.gmail import service


@pytest.fixture(autouse=True)
def empty_pool(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "p1")
    monkeypatch.setenv("GMAIL_API_ROOT", "https://gmail.kept.test/")
    from shared.core.config import get_config

    get_config.cache_clear()
    service._kept.clear()
    yield
    service._kept.clear()
    get_config.cache_clear()


def test_a_second_call_gets_the_same_connection_back() -> None:
    with service.kept_connection() as (_, first_http):
        pass
    with service.kept_connection() as (messages, again):
        assert again is first_http
        assert messages.send(userId="me", body={"raw": "eA"}).uri.startswith("https://gmail.kept.test/")


def test_concurrent_holders_never_share_a_connection() -> None:
    with service.kept_connection() as (_, a), service.kept_connection() as (_, b):
        assert a is not b
    assert len(service._kept) == 2


def test_warm_connection_builds_one_ahead_only_when_there_is_none() -> None:
    service.warm_connection()
    service.warm_connection()
    assert len(service._kept) == 1
    warmed = service._kept[0][2]
    with service.kept_connection() as (_, http):
        assert http is warmed


def test_a_connection_for_another_root_is_not_handed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.core.config import get_config

    with service.kept_connection() as (_, old):
        pass
    monkeypatch.setenv("GMAIL_API_ROOT", "https://elsewhere.test/")
    get_config.cache_clear()
    with service.kept_connection() as (messages, new):
        assert new is not old
        assert messages.send(userId="me", body={"raw": "eA"}).uri.startswith("https://elsewhere.test/")
