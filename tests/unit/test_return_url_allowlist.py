"""`returnUrl` is compared by scheme, host, port and path prefix, never by a regex search (issue 23)."""

from __future__ import annotations

import pytest

from shared.core.config import Config, ConfigError
from shared.core.url_allowlist import AllowlistError, parse_allowlist, url_allowed

CRM = parse_allowlist("https://crm.example.com/")
LOCAL = parse_allowlist("http://localhost:*/,http://127.0.0.1:*/")


def config(monkeypatch: pytest.MonkeyPatch, allowlist: str) -> Config:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "p1")
    monkeypatch.setenv("RETURN_URL_ALLOWLIST", allowlist)
    return Config.from_env()


def test_userinfo_naming_the_crm_does_not_make_another_host_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    # the deployment's documented regex form: `search` admitted this URL, whose host is evil.test
    cfg = config(monkeypatch, r"^https://crm\.example\.com")
    assert cfg.return_url_allowed("https://crm.example.com/settings")
    assert not cfg.return_url_allowed("https://crm.example.com@evil.test/")
    assert not cfg.return_url_allowed("https://crm.example.com.evil.test/")


@pytest.mark.parametrize("url", [
    "https://crm.example.com@evil.test/",
    "https://user:pw@crm.example.com/",  # userinfo, even on the right host
    "https://evil.test\\@crm.example.com/",  # a browser reads `\` as `/`: host evil.test
    "https://crm.example.com.evil.test/",
    "http://crm.example.com/",  # scheme
    "https://crm.example.com:8443/",  # port
    "https://crm.example.com:99999/",  # unparseable port
    "https://CRM.example.com/\t",  # whitespace
    "javascript://crm.example.com/%0aalert(1)",
])
def test_returnurl_refused_unless_scheme_host_and_port_match(url: str) -> None:
    assert not url_allowed(CRM, url)


def test_returnurl_allowed_on_the_crm_host_case_insensitively_with_its_query() -> None:
    assert url_allowed(CRM, "https://CRM.Example.com/settings/email?tab=1#x")
    assert url_allowed(CRM, "https://crm.example.com:443/")


def test_returnurl_path_prefix_holds_at_a_segment_boundary() -> None:
    rules = parse_allowlist("https://crm.example.com/app/")
    assert url_allowed(rules, "https://crm.example.com/app/settings")
    assert url_allowed(rules, "https://crm.example.com/app")
    assert not url_allowed(rules, "https://crm.example.com/apple")
    assert not url_allowed(rules, "https://crm.example.com/other")
    assert not url_allowed(rules, "https://crm.example.com/app/../other")
    assert not url_allowed(rules, "https://crm.example.com/app/%2e%2e/other")


def test_local_stack_rule_admits_localhost_and_loopback_on_any_port_only() -> None:
    assert url_allowed(LOCAL, "http://localhost:5173/settings/email")
    assert url_allowed(LOCAL, "http://127.0.0.1:8080/x")
    assert url_allowed(LOCAL, "http://localhost/x")
    assert not url_allowed(LOCAL, "http://localhost.evil.com/")
    assert not url_allowed(LOCAL, "http://localhost:1@evil.com/")
    assert not url_allowed(LOCAL, "https://evil.com/?http://localhost:1/")


def test_bare_scheme_entry_is_the_permissive_default() -> None:
    rules = parse_allowlist("https://")
    assert url_allowed(rules, "https://anything.example/")
    assert not url_allowed(rules, "http://anything.example/")
    assert not url_allowed(rules, "https://crm.example.com@evil.test/")


def test_legacy_literal_regex_entries_read_as_url_prefixes() -> None:
    assert parse_allowlist(r"^https://crm\.acme\.example/,^https://") == (
        *parse_allowlist("https://crm.acme.example/"), *parse_allowlist("https://"))


@pytest.mark.parametrize("entry", [r"^http://(localhost|127\.0\.0\.1)(:[0-9]+)?/", "crm.example.com",
                                   "ftp://x/", "https://a@b/", "https://host:port/"])
def test_allowlist_entry_that_is_not_a_url_prefix_is_a_config_error(entry: str,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(AllowlistError):
        parse_allowlist(entry)
    with pytest.raises(ConfigError):
        config(monkeypatch, entry)
