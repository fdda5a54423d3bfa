"""Headless Chromium for the console's browser test and its screenshots (selenium + chromedriver).

Debian's `chromium` and `chromium-driver` (scripts/ensure_chromium.sh installs
them; nothing downloads a browser of its own). The flags keep Chromium off the
network: this machine reaches only loopback, and without them Chromium keeps
trying Google's hosts (component updates, sync, QUIC probes).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

CHROMIUM_FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--lang=en-US",
)
BINARIES = ("chromium", "chromium-browser", "/usr/bin/chromium")
DRIVERS = ("chromedriver", "/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")
INSTALL_HINT = ("install Debian's chromium and chromium-driver (scripts/ensure_chromium.sh, run by `make test` "
                "and .ci/run) and the dev extras (selenium)")


def _which(candidates: tuple[str, ...]) -> str | None:
    for name in candidates:
        found = shutil.which(name)
        if found:
            return found
    return None


def unavailable() -> str | None:
    """Why no browser can be started here (None: it can)."""
    missing = [what for what, found in (("chromium", _which(BINARIES)), ("chromedriver", _which(DRIVERS)))
               if not found]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package")
    return f"{', '.join(missing)} not found: {INSTALL_HINT}" if missing else None


def launch(user_data_dir: Path, width: int = 1480, height: int = 1100) -> Any:
    """A new headless Chromium with an empty profile in `user_data_dir`."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver = _which(BINARIES), _which(DRIVERS)
    if binary is None or driver is None:
        raise RuntimeError(unavailable())
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={user_data_dir}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    browser.set_page_load_timeout(60)
    return browser
