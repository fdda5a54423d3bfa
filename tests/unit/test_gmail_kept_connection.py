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


def test_the_kept_resource_builds_the_send_paths_requests_as_the_whole_document_does() -> None:
    import httplib2
    from googleapiclient.discovery import build_from_document
    from googleapiclient.http import MediaInMemoryUpload

    whole = build_from_document(service.discovery_document("https://gmail.kept.test/"),
                                http=httplib2.Http()).users().messages()
    calls = [
        ("send", {"userId": "me", "body": {"raw": "eA", "threadId": "t1"}}),
        ("send", {"userId": "me", "body": {"threadId": "t1"},
                  "media_body": MediaInMemoryUpload(b"x" * 10, mimetype="message/rfc822", resumable=True)}),
        ("list", {"userId": "me", "q": "rfc822msgid:<a@b>", "includeSpamTrash": True, "maxResults": 1}),
    ]
    with service.kept_connection() as (kept, _):
        for method, kwargs in calls:
            ours, theirs = getattr(kept, method)(**kwargs), getattr(whole, method)(**kwargs)
            assert (ours.method, ours.uri, ours.body, ours.headers) == (theirs.method, theirs.uri, theirs.body,
                                                                       theirs.headers)


def test_the_kept_resource_offers_only_the_send_paths_methods() -> None:
    with service.kept_connection() as (kept, _):
        assert not hasattr(kept, "delete") and not hasattr(kept, "attachments")
