"""The rep's browser during a connect (R24), for the tests, the demo and the benchmarks.

The CRM's `authorizationUrl` points at `oauth_browser`'s `/start`, which sets a
session cookie and redirects to Google; Google's redirect back to `/callback`
is accepted only with that cookie. So whoever follows the flow must keep one
cookie jar from `/start` to `/callback`, as a browser does: a
`requests.Session`. Consent itself is the simulator's headless approval
(`SimClient.consent`), which plays Google's page and needs no cookies.
"""

from __future__ import annotations

from typing import Any

import requests


class RepBrowser:
    """One browser: one cookie jar. Redirects are returned, never followed."""

    def __init__(self) -> None:
        self.session = requests.Session()

    def open(self, authorization_url: str) -> str:
        """Open the CRM's authorization URL; returns where it sends the browser (Google's consent page)."""
        resp = self.get(authorization_url)
        if resp.status_code != 302:
            raise AssertionError(f"{authorization_url} answered {resp.status_code}: {resp.text[:300]}")
        return str(resp.headers["Location"])

    def get(self, url: str) -> requests.Response:
        return self.session.get(url, allow_redirects=False, timeout=60)


def consent_in_browser(sim: Any, authorization_url: str, gmail: str, scopes: str = "all",
                       browser: RepBrowser | None = None) -> tuple[RepBrowser, str]:
    """The rep opens the URL and consents at (simulated) Google: (their browser, Google's redirect to /callback)."""
    browser = browser or RepBrowser()
    return browser, str(sim.consent(browser.open(authorization_url), gmail, scopes))


def connect_in_browser(sim: Any, authorization_url: str, gmail: str, scopes: str = "all") -> requests.Response:
    """The whole browser side: open, consent, arrive at /callback. Returns the callback's 302 to the CRM."""
    browser, callback = consent_in_browser(sim, authorization_url, gmail, scopes)
    return browser.get(callback)
