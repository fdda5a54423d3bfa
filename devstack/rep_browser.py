"""The rep's browser during a connect (R24), for the tests, the demo and the benchmarks.

The CRM's `authorizationUrl` points at `oauth_browser`'s `/start`, which
answers a page with a "Continue to Google" button (a GET binds nothing, so
mail link scanners cannot take the flow); the button posts the page's form
back to `/start`, which sets a session cookie and redirects to Google;
Google's redirect back to `/callback` is accepted only with that cookie. So
whoever follows the flow must click the button (post the form as a browser
does) and keep one cookie jar from `/start` to `/callback`: a
`requests.Session`. Consent itself is the simulator's headless approval
(`SimClient.consent`), which plays Google's page and needs no cookies.
"""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin

import requests


class _StartForm(HTMLParser):
    """The `<form data-oauth-start>` of the /start page: its action and its fields."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self._inside = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form" and "data-oauth-start" in a:
            self.action, self._inside = a.get("action") or "", True
        elif tag == "input" and self._inside and a.get("name"):
            self.fields[str(a["name"])] = a.get("value") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._inside = False


class RepBrowser:
    """One browser: one cookie jar. Redirects are returned, never followed."""

    def __init__(self) -> None:
        self.session = requests.Session()

    def open(self, authorization_url: str) -> str:
        """Open the CRM's authorization URL and click "Continue to Google"; returns where that sends the
        browser (Google's consent page)."""
        resp = self.click_continue(authorization_url)
        if resp.status_code != 302:
            raise AssertionError(f"{authorization_url} answered {resp.status_code}: {resp.text[:300]}")
        return str(resp.headers["Location"])

    def click_continue(self, authorization_url: str) -> requests.Response:
        """The /start page, then its button (a same-origin form POST, as a browser sends it)."""
        page = self.get(authorization_url)
        if page.status_code != 200:
            return page  # a refusal (400) or a redirect back to the CRM (an expired state)
        form = _StartForm()
        form.feed(page.text)
        if form.action is None:
            raise AssertionError(f"{authorization_url}: no continue form on the page: {page.text[:300]}")
        return self.session.post(urljoin(page.url, form.action), data=form.fields, allow_redirects=False,
                                 timeout=60, headers={"Sec-Fetch-Site": "same-origin", "Origin": _origin(page.url)})

    def get(self, url: str) -> requests.Response:
        return self.session.get(url, allow_redirects=False, timeout=60)


def _origin(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def consent_in_browser(sim: Any, authorization_url: str, gmail: str, scopes: str = "all",
                       browser: RepBrowser | None = None) -> tuple[RepBrowser, str]:
    """The rep opens the URL and consents at (simulated) Google: (their browser, Google's redirect to /callback)."""
    browser = browser or RepBrowser()
    return browser, str(sim.consent(browser.open(authorization_url), gmail, scopes))


def connect_in_browser(sim: Any, authorization_url: str, gmail: str, scopes: str = "all") -> requests.Response:
    """The whole browser side: open, consent, arrive at /callback. Returns the callback's 302 to the CRM."""
    browser, callback = consent_in_browser(sim, authorization_url, gmail, scopes)
    return browser.get(callback)
