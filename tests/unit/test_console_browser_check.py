"""The console's browser test says plainly why it cannot run, instead of failing or passing silently."""

from __future__ import annotations

import pytest

from devstack.console import browser


def test_missing_chromium_and_driver_are_named_with_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(browser.shutil, "which", lambda name: None)

    why = browser.unavailable()

    assert why is not None
    assert why.startswith("chromium, chromedriver not found: ")
    assert "apt" in why or "ensure_chromium.sh" in why


def test_chromium_flags_keep_the_browser_off_the_network() -> None:
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"):
        assert flag in browser.CHROMIUM_FLAGS
