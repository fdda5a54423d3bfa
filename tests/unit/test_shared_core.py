"""Specifications of the shared core's pure parts: config, validation, logging, ids."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout

import pytest

from shared.core import log
from shared.core.config import Config, ConfigError
from shared.core.models import Message
from shared.crm import paths
from shared.http.answers import ApiError
from shared.http.validate import optional_address_list, require_str


def test_config_requires_a_project(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    monkeypatch.delenv("GCP_PROJECT", raising=False)
    with pytest.raises(ConfigError):
        Config.from_env()


def test_config_defaults_point_at_google(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "p1")
    monkeypatch.delenv("GOOGLE_SIMULATOR_URL", raising=False)
    cfg = Config.from_env()
    assert cfg.gmail_api_root == "https://gmail.googleapis.com/"
    assert cfg.oauth_token_uri == "https://oauth2.googleapis.com/token"
    assert cfg.secret_manager_endpoint is None
    assert cfg.gmail_watch_topic_path == "projects/p1/topics/gmail-watch"


def test_config_simulator_url_fills_every_google_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "p1")
    monkeypatch.setenv("GOOGLE_SIMULATOR_URL", "http://127.0.0.1:9999/")
    cfg = Config.from_env()
    assert cfg.gmail_api_root == "http://127.0.0.1:9999/"
    assert cfg.oauth_auth_uri == "http://127.0.0.1:9999/o/oauth2/v2/auth"
    assert cfg.oauth_token_uri == "http://127.0.0.1:9999/token"
    assert cfg.oauth_revoke_uri == "http://127.0.0.1:9999/revoke"
    assert cfg.secret_manager_endpoint == "http://127.0.0.1:9999"


def test_return_url_allowlist_blocks_open_redirects(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "p1")
    monkeypatch.setenv("RETURN_URL_ALLOWLIST", "http://localhost:*/,http://127.0.0.1:*/")
    cfg = Config.from_env()
    assert cfg.return_url_allowed("http://localhost:3000/settings")
    assert cfg.return_url_allowed("http://127.0.0.1:8080/x")
    assert not cfg.return_url_allowed("http://localhost.evil.com/")
    assert not cfg.return_url_allowed("https://evil.com/?http://localhost:1/")


def test_malformed_numeric_setting_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "p1")
    monkeypatch.setenv("DAILY_SEND_LIMIT", "lots")
    with pytest.raises(ConfigError):
        Config.from_env()


def test_header_values_with_crlf_are_refused_as_header_injection() -> None:
    with pytest.raises(ApiError) as err:
        require_str({"subject": "hi\r\nBcc: victim@example.com"}, "subject", header=True)
    assert err.value.status == 400
    assert err.value.code == "header_injection"


def test_wrong_type_is_refused_naming_the_field() -> None:
    with pytest.raises(ApiError) as err:
        require_str({"subject": 42}, "subject")
    assert err.value.code == "invalid_request"
    assert "subject" in err.value.message


def test_address_lists_are_validated_item_by_item() -> None:
    assert optional_address_list({"cc": ["a@example.com"]}, "cc") == ["a@example.com"]
    with pytest.raises(ApiError) as err:
        optional_address_list({"cc": ["a@example.com", "not-an-address"]}, "cc")
    assert err.value.body()["field"] == "cc[1]"


def test_logs_are_cloud_logging_json_without_secrets_or_bodies() -> None:
    out = io.StringIO()
    with redirect_stdout(out):
        log.info("stored", mailboxId="m1", refresh_token="1//secret", text="private body")
    entry = json.loads(out.getvalue())
    assert entry["severity"] == "INFO"
    assert entry["message"] == "stored"
    assert entry["mailboxId"] == "m1"
    assert "1//secret" not in out.getvalue()
    assert "private body" not in out.getvalue()


def test_ids_are_deterministic_and_case_insensitive_for_addresses() -> None:
    assert paths.mailbox_id("Rep@Example.com") == paths.mailbox_id("rep@example.com ")
    assert paths.link_id("a1", "u1") == paths.link_id("a1", "u1")
    assert paths.link_id("a1", "u1") != paths.link_id("a1u", "1")
    assert paths.gmail_message_doc_id("18c") == "gm_18c"


def test_message_document_uses_the_contract_field_name_from() -> None:
    doc = Message(from_="a@example.com", to=["b@example.com"]).to_doc()
    assert doc["from"] == "a@example.com"
    assert "from_" not in doc
    assert Message.from_doc(doc).from_ == "a@example.com"
