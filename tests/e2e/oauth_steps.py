"""Steps a CRM (and a rep at Google's consent screen) take against the `oauth` function.

Used by the OAuth and Auto BCC end-to-end tests. Everything goes through real
HTTP: the CRM's calls with `requests`, the rep's browser as one cookie jar from
the authorization URL (`oauth_browser`'s /start) to the callback (R24,
devstack/rep_browser.py), the consent through the simulator's headless approval
(SimClient.consent).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from devstack.rep_browser import RepBrowser, consent_in_browser

RETURN_URL = "http://localhost:5173/settings/email"
SYNC_COLLECTIONS = ("sync_mailboxes", "sync_tokens", "sync_links", "sync_auto_bcc")
READONLY = "https://www.googleapis.com/auth/gmail.readonly"  # what connect asked for before 0.3
MODIFY = "https://www.googleapis.com/auth/gmail.modify"  # 0.3 (R33): read, and change labels and trash
SEND = "https://www.googleapis.com/auth/gmail.send"


@dataclass
class Crm:
    """The CRM backend: holds the API key and the oauth function's URL."""

    oauth_url: str
    api_key: str

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key if key is None else key}"}

    def post(self, path: str, body: Any, key: str | None = None) -> requests.Response:
        return requests.post(f"{self.oauth_url}{path}", json=body, headers=self.headers(key), timeout=30)

    def get(self, path: str, params: dict[str, str], key: str | None = None) -> requests.Response:
        return requests.get(f"{self.oauth_url}{path}", params=params, headers=self.headers(key), timeout=30)

    def start(self, account: str, user: str, return_url: str = RETURN_URL) -> str:
        resp = self.post("/connect", {"accountId": account, "userId": user, "returnUrl": return_url})
        assert resp.status_code == 200, resp.text
        url: str = resp.json()["authorizationUrl"]
        return url

    def status(self, account: str, user: str) -> dict[str, Any]:
        resp = self.get("/status", {"accountId": account, "userId": user})
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        return body

    def disconnect(self, account: str, user: str) -> requests.Response:
        return self.post("/disconnect", {"accountId": account, "userId": user})


def crm_for(stack: Any) -> Crm:
    return Crm(oauth_url=stack.function_url("oauth"), api_key=stack.secrets.crm_api_key)


def follow_callback(callback_url: str, browser: RepBrowser | None = None) -> requests.Response:
    """A browser arriving at /callback after Google's redirect (the 302 back to the CRM is not followed).

    Without `browser`, a fresh one: a browser that never opened the authorization URL (R24).
    """
    return (browser or RepBrowser()).get(callback_url)


def outcome(resp: requests.Response) -> dict[str, str]:
    """status/reason of the redirect back to the returnUrl (asserting it is one)."""
    assert resp.status_code == 302, f"{resp.status_code} {resp.text}"
    loc = resp.headers["Location"]
    assert loc.startswith(RETURN_URL), loc
    return {k: v[0] for k, v in parse_qs(urlsplit(loc).query).items()}


def consent(crm: Crm, sim: Any, account: str, user: str, gmail: str, scopes: str = "all",
            return_url: str = RETURN_URL) -> tuple[RepBrowser, str]:
    """CRM asks for the URL, the rep opens it in their browser and consents: (that browser, the callback URL)."""
    return consent_in_browser(sim, crm.start(account, user, return_url), gmail, scopes)


def connect(crm: Crm, sim: Any, account: str, user: str, gmail: str, scopes: str = "all") -> dict[str, str]:
    """The whole connect: CRM asks for the URL, the rep consents, the same browser follows the callback."""
    browser, callback = consent(crm, sim, account, user, gmail, scopes)
    return outcome(follow_callback(callback, browser))


def seed_user(db: Any, account: str, user: str, email: str | None = None) -> None:
    db.document(f"accounts/{account}").set({"name": account})
    db.document(f"accounts/{account}/users/{user}").set(
        {"email": email or f"{user}@{account}.example", "name": user.title()}
    )


def seed_contact(db: Any, account: str, contact: str, email: str, name: str = "") -> None:
    db.document(f"accounts/{account}/contacts/{contact}").set(
        {"email": email, "name": name or contact.title(), "createdAt": datetime.now(UTC)}
    )
    wait_contact_indexed(db, account, contact, email)


def wait_contact_indexed(db: Any, account: str, contact: str, email: str, timeout: float = 20.0) -> None:
    """The CRM's contact write has reached the sync's contact index (R11b: the contacts_index trigger, fed
    by the local stack from the emulator's listen stream, runs a moment after the write, as in production)."""
    import time

    from shared.crm import paths

    ref = db.collection(paths.CONTACT_INDEX).document(paths.contact_index_id(account, email))
    deadline = time.monotonic() + timeout
    while contact not in ((ref.get().to_dict() or {}).get("contacts") or {}):
        assert time.monotonic() < deadline, f"contact {account}/{contact} not indexed after {timeout:.0f} s"
        time.sleep(0.05)


def docs(db: Any, collection: str) -> dict[str, dict[str, Any]]:
    return {s.id: s.to_dict() for s in db.collection(collection).stream()}


def all_documents(db: Any) -> list[tuple[str, dict[str, Any]]]:
    """Every document in the database, subcollections included (path, data)."""
    out: list[tuple[str, dict[str, Any]]] = []

    def walk(collections: Any) -> None:
        for col in collections:
            for ref in col.list_documents():
                snap = ref.get()
                if snap.exists:
                    out.append((ref.path, snap.to_dict()))
                walk(ref.collections())

    walk(db.collections())
    return out


def email_sync(db: Any, account: str, user: str) -> dict[str, Any]:
    data = db.document(f"accounts/{account}/users/{user}").get().to_dict() or {}
    sync: dict[str, Any] = data.get("emailSync") or {}
    return sync


def assert_nothing_stored(db: Any, account: str = "acme", user: str = "alice") -> None:
    """No mailbox, token, link or Auto BCC route, and the user's emailSync untouched."""
    for col in SYNC_COLLECTIONS:
        assert docs(db, col) == {}, f"{col} was written"
    assert email_sync(db, account, user) == {}
