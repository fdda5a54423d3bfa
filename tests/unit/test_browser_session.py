"""Spec of R24's session cookie (shared/connect/browser_session.py) and where it is Secure (config)."""

from __future__ import annotations

import pytest

from shared.connect.browser_session import (
    cookie_name,
    expired_cookie,
    fingerprint,
    matches,
    new_secret,
    presented_secret,
    session_cookie,
)
from shared.core.config import Config


def test_r24_production_cookie_is_secure_with_the_host_prefix() -> None:
    assert cookie_name("n1", secure=True) == "__Host-crm_sync_oauth_n1"
    assert session_cookie("n1", "s", expires_at=1600, now=1000, secure=True).secure


def test_r24_local_stack_cookie_has_no_host_prefix() -> None:
    # Browsers refuse __Host- cookies without Secure, and Secure cookies are not sent over plain http.
    assert cookie_name("n1", secure=False) == "crm_sync_oauth_n1"


@pytest.mark.parametrize("redirect,secure", [
    ("https://europe-west1-p.cloudfunctions.net/oauth-browser/callback", True),
    ("https://localhost/callback", True),
    ("http://localhost:8096/callback", False),
    ("http://127.0.0.1:8096/callback", False),
    ("http://crm.example/callback", True),  # plain http anywhere but this machine still gets Secure
    (None, True),
])
def test_r24_cookies_are_secure_except_on_plain_http_localhost(redirect: str | None, secure: bool) -> None:
    assert Config(project_id="p", oauth_redirect_uri=redirect).oauth_cookies_secure is secure


def test_r24_start_route_sits_next_to_the_callback() -> None:
    cfg = Config(project_id="p", oauth_redirect_uri="https://fn.example/oauth-browser/callback")
    assert cfg.oauth_start_uri == "https://fn.example/oauth-browser/start"
    assert Config(project_id="p", oauth_redirect_uri="https://fn.example/elsewhere").oauth_start_uri is None


def test_r24_cookie_lives_as_long_as_the_state() -> None:
    assert session_cookie("n1", "s", expires_at=1600, now=1000.4, secure=True).max_age == 599
    assert session_cookie("n1", "s", expires_at=1600, now=1700, secure=True).max_age == 1  # never 0 (= delete)
    assert expired_cookie("n1", secure=True).max_age == 0


def test_r24_only_the_fingerprint_is_stored_and_only_the_same_secret_matches() -> None:
    secret = new_secret()
    stored = fingerprint(secret)
    assert secret not in stored
    assert matches(secret, stored)
    assert not matches(new_secret(), stored)
    assert not matches(None, stored) and not matches("", stored)


def test_r24_each_state_has_its_own_cookie() -> None:
    jar = {cookie_name("n1", False): "s1", cookie_name("n2", False): "s2"}
    assert presented_secret(jar, "n1", False) == "s1"
    assert presented_secret(jar, "n3", False) is None
    assert presented_secret(jar, "n1", True) is None  # the Secure name is another cookie


def test_r24_cookie_value_never_reaches_a_log_line() -> None:
    assert "s3cr3t" not in repr(session_cookie("n1", "s3cr3t", 1600, 1000, True))
