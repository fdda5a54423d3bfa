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


class ConsolePage:
    """The console page as a person uses it: type into its forms, click its buttons, wait for what shows.

    Shared by the browser test and scripts/console_screenshot.py, so the screenshots
    in docs/ show exactly what the test drives. The data panels are re-rendered
    while one looks at them, so an element found a moment ago may be gone: every
    read and click here finds its element afresh (and once more if it went stale).
    """

    def __init__(self, browser: Any, url: str, timeout: float = 30.0) -> None:
        self.b = browser
        self.url = url.rstrip("/")
        self.timeout = timeout

    # -- looking ----------------------------------------------------------------------------

    def all(self, selector: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        return list(self.b.find_elements(By.CSS_SELECTOR, selector))

    def _fresh(self, selector: str, use: Any) -> Any:
        from selenium.common.exceptions import StaleElementReferenceException

        for attempt in range(5):
            found = self.all(selector)
            if not found:
                return None
            try:
                return use(found[0])
            except StaleElementReferenceException:
                if attempt == 4:
                    raise
        return None

    def attr(self, selector: str, name: str) -> str | None:
        return self._fresh(selector, lambda el: el.get_attribute(name))  # type: ignore[no-any-return]

    def text(self, selector: str) -> str | None:
        return self._fresh(selector, lambda el: el.text)  # type: ignore[no-any-return]

    def click(self, selector: str) -> None:
        if self._fresh(selector, lambda el: el.click() or True) is None:
            raise AssertionError(f"nothing to click at {selector!r} (page at {self.b.current_url})")

    def wait(self, probe: Any, what: str, timeout: float | None = None) -> Any:
        """Poll `probe(page)` until it is truthy; AssertionError naming `what` after the timeout."""
        from selenium.common.exceptions import TimeoutException
        from selenium.webdriver.support.ui import WebDriverWait

        try:
            return WebDriverWait(self.b, timeout or self.timeout, poll_frequency=0.2).until(lambda _: probe(self))
        except TimeoutException:
            raise AssertionError(f"timed out after {timeout or self.timeout:g} s waiting for {what} "
                                 f"(page at {self.b.current_url})") from None

    def wait_for(self, selector: str, what: str, timeout: float | None = None) -> str:
        """Wait until `selector` shows; returns its text."""
        return str(self.wait(lambda p: p.text(selector) is not None, what, timeout) and self.text(selector))

    @staticmethod
    def message(subject: str) -> str:
        return f'.message[data-subject="{subject}"]'

    # -- doing ------------------------------------------------------------------------------

    def open(self) -> ConsolePage:
        self.b.get(self.url + "/")
        self.wait_for("#live.connected", "the crm-events stream to connect")
        return self

    def mark(self) -> None:
        """Set a marker on `window`: a reload would lose it (see `not_reloaded`)."""
        self.b.execute_script("window.__consoleMarker = 'same page';")

    def not_reloaded(self) -> bool:
        return bool(self.b.execute_script("return window.__consoleMarker === 'same page';"))

    def fill(self, form: Any, **values: str) -> None:
        from selenium.webdriver.common.by import By

        for name, value in values.items():
            field = form.find_element(By.NAME, name)
            field.clear()
            field.send_keys(value)

    def submit(self, form: Any) -> None:
        from selenium.webdriver.common.by import By

        form.find_element(By.CSS_SELECTOR, "button:not([type=button])").click()

    def _crm_form(self, action: str, **values: str) -> None:
        form = self.all(f'form[data-action="{action}"]')[0]
        if not form.is_displayed():
            self.all("details.forms summary")[0].click()
        self.fill(form, **values)
        self.submit(form)

    def add_user(self, account: str, user: str, email: str, name: str) -> None:
        self._crm_form("add-user", accountId=account, userId=user, email=email, name=name)
        self.wait_for(f'[data-user="{account}/{user}"]', f"user {account}/{user} in the accounts panel")

    def add_contact(self, account: str, contact: str, email: str, name: str) -> None:
        self._crm_form("add-contact", accountId=account, contactId=contact, email=email, name=name)
        self.wait_for(f'[data-contact="{account}/{contact}"]', f"contact {account}/{contact} in the accounts panel")

    def connect(self, account: str, user: str, gmail: str) -> str:
        """Connect Gmail through the real consent page; returns the notice the console shows after."""
        self.click(f'[data-user="{account}/{user}"] a.button')
        # oauth_browser's /start page: opening the URL binds nothing until its button is clicked (issue 23)
        self.wait_for("form[data-oauth-start] button", "the connect page's Continue to Google button")
        self.click("form[data-oauth-start] button")
        # R1b: Google's account chooser comes first (prompt=select_account); then the Allow step.
        self.wait_for('#another input[name="sim_account"], input[type="email"][name="sim_user"]',
                      "Google's account chooser or consent page")
        chooser = self.all('#another input[name="sim_account"]')
        field = chooser[0] if chooser else self.all('input[type="email"][name="sim_user"]')[0]
        field.clear()
        field.send_keys(gmail)
        if chooser:
            self.click('#another button[name="another"]')
            self.wait_for('button[value="allow"]', "Google's consent page")
        self.click('button[value="allow"]')
        self.wait(lambda p: p.b.current_url.startswith(self.url + "/?"), "the way back to the console")
        self.wait_for("#live.connected", "the crm-events stream to connect")
        return self.text("#notice") or ""

    def write_as_contact(self, account: str, contact: str, subject: str, text: str) -> Any:
        """The contact's 'Write as this contact' button, then the deliver form; returns the form."""
        self.click(f'[data-contact="{account}/{contact}"] button[data-fill="deliver"]')
        form = self.all("#deliver-form")[0]
        self.fill(form, subject=subject, text=text)
        self.submit(form)
        return form

    def gmail(self, subject: str, button: str) -> None:
        """One of a message's Gmail controls: data-change (read, star, trash, …) or data-compose."""
        self.click(f"{self.message(subject)} button[{button}]")

    def compose(self, subject: str, mode: str, text: str, to: str | None = None) -> None:
        self.gmail(subject, f'data-compose="{mode}"')
        form = self.all("#compose-form")[0]
        self.fill(form, text=text, **({"to": to} if to else {}))
        self.submit(form)
