"""The first-deploy check: connect → send → receive → status against any deployment's endpoints.

    python scripts/smoke.py --endpoints FILE [--contact-email ADDRESS] [--timeout SECONDS] [--keep]

FILE is an endpoints document (SPEC §6): the local stack writes one
(`.devstack/endpoints.json`); for a real project the operator writes one with
`projectId`, `functions` (each function's URL) and, unless CRM_API_KEY is set
in the environment, `crmApiKey`. The script plays the CRM, through the same
HTTP routes and Firestore documents a CRM uses:

1. seeds a throw-away account `smoke-<run>` with a user and one contact;
2. connect: `POST /connect`, then the rep's browser consents. When the
   endpoints say Google is the simulator (`google`), the simulator's headless
   consent does it (devstack's rep browser, one cookie jar from /start to
   /callback); otherwise the authorization URL is printed for a person, who
   opens it signed in as the rep, and the script waits for `GET /status`;
3. send: `POST send_email` to the contact;
4. receive: the contact replies. The simulator delivers a reply; on a real
   project a person replies from the contact's mailbox (`--contact-email`,
   an address they can reply from), and the script waits for the sync to log
   the reply in the CRM conversation (Firestore);
5. status: `GET /status` reports the mailbox connected, synced, without error;
6. clean-up (unless `--keep`): `POST /disconnect` and the seeded account's
   documents deleted.

Private functions (`--no-allow-unauthenticated`) need a Google ID token for
their URL in `X-Serverless-Authorization`: the script mints one with the
caller's Application Default Credentials (a service account's), or, with
`--impersonate SA_EMAIL`, as that service account (the CRM's invoker; the
caller needs Service Account Token Creator on it). The local stack needs none.

Exit status 0 and `SMOKE OK` when every step worked; otherwise the step that
failed, why, and exit status 1. No key, token or message body is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from devstack import polling  # noqa: E402

T = TypeVar("T")
LOCAL_RETURN_URL = "http://localhost:5173/settings/email"  # inside the local stack's RETURN_URL_ALLOWLIST
STEPS = 6


class SmokeFailed(Exception):
    pass


@dataclass
class Endpoints:
    """What the script needs from an endpoints document."""

    project_id: str
    functions: dict[str, str]
    crm_api_key: str
    simulator: str | None = None  # the Google simulator's URL: the local stack
    firestore_emulator: str | None = None

    @classmethod
    def load(cls, path: Path) -> Endpoints:
        doc = json.loads(path.read_text())
        key = os.environ.get("CRM_API_KEY") or doc.get("crmApiKey")
        missing = [k for k, v in (("projectId", doc.get("projectId")), ("functions", doc.get("functions")),
                                  ("crmApiKey (or CRM_API_KEY)", key)) if not v]
        if missing:
            raise SmokeFailed(f"{path}: missing {', '.join(missing)}")
        for fn in ("oauth", "send_email"):
            if fn not in doc["functions"]:
                raise SmokeFailed(f"{path}: functions.{fn} (its URL) is missing")
        return cls(doc["projectId"], dict(doc["functions"]), str(key), doc.get("google"), doc.get("firestore"))

    @property
    def local(self) -> bool:
        return self.simulator is not None


@dataclass
class Crm:
    """The CRM's side of the HTTP contract: its API key, plus an ID token where Cloud Run demands one."""

    endpoints: Endpoints
    impersonate: str | None = None
    session: requests.Session = field(default_factory=requests.Session)
    _tokens: dict[str, Any] = field(default_factory=dict)

    def _id_token(self, fn: str) -> str | None:
        """An ID token whose audience is the function's URL (Cloud Run's check for a private function)."""
        if self.endpoints.local:
            return None
        audience = self.endpoints.functions[fn].rstrip("/")
        if audience not in self._tokens:
            import google.auth
            from google.auth import impersonated_credentials
            from google.auth.transport.requests import Request
            from google.oauth2 import id_token

            if self.impersonate:
                source, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
                target = impersonated_credentials.Credentials(
                    source_credentials=source, target_principal=self.impersonate,
                    target_scopes=["https://www.googleapis.com/auth/cloud-platform"])
                creds = impersonated_credentials.IDTokenCredentials(target, target_audience=audience,
                                                                    include_email=True)
                creds.refresh(Request())
                self._tokens[audience] = creds.token
            else:
                self._tokens[audience] = id_token.fetch_id_token(Request(), audience)
        return str(self._tokens[audience])

    def call(self, method: str, fn: str, path: str = "", body: Any = None,
             query: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
        url = self.endpoints.functions[fn].rstrip("/") + path
        headers = {"Authorization": f"Bearer {self.endpoints.crm_api_key}"}
        token = self._id_token(fn)
        if token:
            headers["X-Serverless-Authorization"] = f"Bearer {token}"
        resp = self.session.request(method, url, json=body, params=query, headers=headers, timeout=60,
                                    allow_redirects=False)
        try:
            doc = resp.json()
        except ValueError:
            doc = {"body": resp.text[:200]}
        return resp.status_code, doc if isinstance(doc, dict) else {"body": doc}


class Narrator:
    def __init__(self) -> None:
        self.step = 0
        self.current = ""
        self.t0 = time.monotonic()

    def begin(self, text: str) -> None:
        self.step += 1
        self.current = text
        self.t_step = time.monotonic()
        print(f"[{self.step}/{STEPS}] {text}", flush=True)

    def say(self, text: str) -> None:
        print(f"      {text}", flush=True)

    def ok(self, text: str) -> None:
        print(f"      ok: {text} ({time.monotonic() - self.t_step:.1f} s)", flush=True)


def wait(probe: Callable[[], T | None], what: str, timeout: float) -> T:
    try:
        return polling.wait_until(probe, timeout, what, interval=0.5)
    except polling.WaitTimeout as exc:
        raise SmokeFailed(str(exc)) from None


class Smoke:
    def __init__(self, endpoints: Endpoints, crm: Crm, n: Narrator, contact_email: str | None, timeout: float,
                 return_url: str) -> None:
        self.e, self.crm, self.n, self.timeout, self.return_url = endpoints, crm, n, timeout, return_url
        run = uuid.uuid4().hex[:10]
        self.account, self.user, self.contact = f"smoke-{run}", "smoke-rep", "smoke-contact"
        self.rep_gmail = f"smoke-rep-{run}@gmail.test" if endpoints.local else None
        self.contact_email = contact_email or (f"smoke-contact-{run}@client.test" if endpoints.local else None)
        if not self.contact_email:
            raise SmokeFailed("--contact-email is required against a real deployment (an address you can reply from)")
        if endpoints.firestore_emulator:
            os.environ["FIRESTORE_EMULATOR_HOST"] = endpoints.firestore_emulator
        from google.cloud import firestore

        self.db = firestore.Client(project=endpoints.project_id)
        self.sim: Any = None
        if endpoints.simulator:
            from simulator.client import SimClient

            self.sim = SimClient(endpoints.simulator)
        self.seeded = False
        self.connected = False

    def status(self) -> dict[str, Any]:
        code, doc = self.crm.call("GET", "oauth", "/status", query={"accountId": self.account, "userId": self.user})
        if code != 200:
            raise SmokeFailed(f"GET /status answered {code}: {doc}")
        return doc

    def run(self) -> None:
        n = self.n
        n.begin(f"Seeding a throw-away CRM account {self.account} (a rep and one contact) in Firestore")
        now = datetime.now(UTC)
        self.seeded = True
        self.db.document(f"accounts/{self.account}").set({"name": "gmail-crm-sync smoke test", "createdAt": now})
        self.db.document(f"accounts/{self.account}/users/{self.user}").set(
            {"name": "Smoke Rep", "email": "smoke-rep@example.invalid", "createdAt": now})
        self.db.document(f"accounts/{self.account}/contacts/{self.contact}").set(
            {"email": self.contact_email, "name": "Smoke Contact", "createdAt": now})
        n.ok(f"contact {self.contact_email}")

        n.begin("Connect: POST /connect, then the rep consents in a browser")
        code, doc = self.crm.call("POST", "oauth", "/connect",
                                  {"accountId": self.account, "userId": self.user, "returnUrl": self.return_url})
        if code != 200 or "authorizationUrl" not in doc:
            raise SmokeFailed(f"POST /connect answered {code}: {doc}")
        if self.sim is not None:
            from devstack.rep_browser import connect_in_browser

            back = connect_in_browser(self.sim, doc["authorizationUrl"], str(self.rep_gmail))
            outcome = {k: v[0] for k, v in parse_qs(urlsplit(back.headers.get("Location", "")).query).items()}
            if back.status_code != 302 or outcome.get("status") != "connected":
                raise SmokeFailed(f"the callback did not connect: {back.status_code} {outcome}")
            n.say(f"the simulator's {self.rep_gmail} consented (headless)")
        else:
            print("\n  >>> A person: open this URL in a browser signed in to the rep's Gmail, and allow access:\n"
                  f"  {doc['authorizationUrl']}\n  (waiting up to {self.timeout:.0f} s)\n", flush=True)
        st = wait(lambda: (s := self.status()).get("status") == "connected" and s, "the mailbox to connect",
                  self.timeout)
        self.connected = True
        self.rep_gmail = st.get("address") or self.rep_gmail
        n.ok(f"connected: {self.rep_gmail}")

        n.begin(f"Send: POST send_email to {self.contact_email}")
        subject = f"gmail-crm-sync smoke test {self.account}"
        code, sent = self.crm.call("POST", "send_email", "", {
            "accountId": self.account, "userId": self.user, "contactId": self.contact, "subject": subject,
            "text": "This is gmail-crm-sync's first-deploy check. Please reply to it.",
            "idempotencyKey": f"{self.account}-send"})
        if code != 200 or "gmailMessageId" not in sent:
            raise SmokeFailed(f"send_email answered {code}: {sent}")
        n.ok(f"sent as Gmail message {sent['gmailMessageId']} (thread {sent.get('gmailThreadId')})")

        n.begin("Receive: the contact replies; the sync logs the reply in the CRM conversation")
        if self.sim is not None:
            in_sent = self.sim.messages(str(self.rep_gmail), label="SENT")
            ours = [m for m in in_sent if m["id"] == sent["gmailMessageId"]]
            if not ours:
                raise SmokeFailed("the sent message is not in the rep's Sent folder")
            message_id = ours[0]["headers"].get("Message-ID") or ours[0]["headers"].get("Message-Id") or ""
            reply = EmailMessage()
            reply["From"] = f"Smoke Contact <{self.contact_email}>"
            reply["To"] = str(self.rep_gmail)
            reply["Subject"] = f"Re: {subject}"
            reply["Date"] = format_datetime(datetime.now(UTC))
            reply["Message-ID"] = make_msgid(domain="client.test")
            reply["In-Reply-To"] = message_id
            reply["References"] = message_id
            reply.set_content("Received, thanks.")
            self.sim.deliver(str(self.rep_gmail), reply.as_bytes())
            n.say("the simulator delivered the contact's reply to the rep's inbox")
        else:
            print(f"\n  >>> A person: reply to the email {subject!r} from {self.contact_email}\n"
                  f"  (waiting up to {self.timeout:.0f} s)\n", flush=True)
        messages = self.db.collection(f"accounts/{self.account}/conversations/{self.contact}/messages")
        inbound = wait(lambda: [d for d in messages.stream() if (d.to_dict() or {}).get("direction") == "inbound"],
                       "the contact's reply in the CRM conversation", self.timeout)
        thread = (inbound[0].to_dict() or {}).get("gmailThreadId")
        n.ok(f"logged as {inbound[0].id}, in the sent message's thread: {thread == sent.get('gmailThreadId')}")

        n.begin("Status: GET /status")
        st = wait(lambda: (s := self.status()).get("lastSyncAt") and s, "a last sync time in /status", self.timeout)
        if st.get("status") != "connected" or st.get("lastError"):
            raise SmokeFailed(f"GET /status says {st.get('status')}, lastError {st.get('lastError')}")
        n.ok(f"connected, last sync {st.get('lastSyncAt')}, no error")

    def clean_up(self, keep: bool) -> None:
        self.n.begin("Clean-up" + (" skipped (--keep)" if keep else ": POST /disconnect, the account's documents"))
        if keep:
            self.n.ok(f"account {self.account} kept")
            return
        if self.connected:
            code, doc = self.crm.call("POST", "oauth", "/disconnect", {"accountId": self.account, "userId": self.user})
            if code != 200:
                raise SmokeFailed(f"POST /disconnect answered {code}: {doc}")
        if self.seeded:
            self.db.recursive_delete(self.db.document(f"accounts/{self.account}"))
        self.n.ok(f"account {self.account} disconnected and deleted")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--endpoints", type=Path, required=True, help="an endpoints document (SPEC §6)")
    ap.add_argument("--contact-email", help="the contact's address (a real deployment: one you can reply from)")
    ap.add_argument("--return-url", default=LOCAL_RETURN_URL,
                    help="where the browser lands after consent; must match RETURN_URL_ALLOWLIST")
    ap.add_argument("--impersonate", help="mint ID tokens as this service account (the CRM's invoker)")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for each eventual step")
    ap.add_argument("--keep", action="store_true", help="keep the connection and the seeded account")
    args = ap.parse_args(argv)
    n = Narrator()
    try:
        endpoints = Endpoints.load(args.endpoints)
        print(f"gmail-crm-sync smoke test against project {endpoints.project_id} "
              f"({'the local stack' if endpoints.local else 'Google'})", flush=True)
        smoke = Smoke(endpoints, Crm(endpoints, args.impersonate), n, args.contact_email, args.timeout,
                      args.return_url)
        passed = False
        try:
            smoke.run()
            passed = True
        finally:
            try:
                smoke.clean_up(args.keep)
            except (SmokeFailed, requests.RequestException) as exc:
                if passed:
                    raise
                print(f"      clean-up failed too: {exc}", file=sys.stderr, flush=True)
    except (SmokeFailed, requests.RequestException, OSError, ValueError) as exc:
        print(f"SMOKE FAILED at step {n.step} of {STEPS} ({n.current}): {exc}", file=sys.stderr, flush=True)
        return 1
    print(f"SMOKE OK in {time.monotonic() - n.t0:.0f} s: connect, send, receive and status all work.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
