"""`make demo`: the whole product, end to end, against a fresh local stack, narrated.

A CRM account with two sales reps and two contacts; each rep connects a
(simulated) Gmail through the real OAuth flow; the CRM sends an email; the
contact answers, with the rep's colleague in Cc, and the CRM logs that answer
once for both mailboxes (R25); the rep opens the contact's attachment from the
CRM; the rep answers from Gmail; the CRM shows one conversation, one thread. Every
step goes through the same code paths as production: the functions under
functions-framework, the Firestore and Pub/Sub emulators, and the Google
simulator reached through Google's own client libraries.

Exit status 0 and a final success line when every step worked; otherwise the
failing step, the reason, and where the logs are, with exit status 1.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from functools import partial
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from devstack import polling
from devstack.procs import StartupError
from devstack.stack import Stack, StackSettings

ACCOUNT = "acme-demo"
USER = "rita"
REP_NAME = "Rita Rep"
REP_GMAIL = "rita.rep@gmail.test"
COLLEAGUE = "cora"  # Rita's colleague in the same account, with her own Gmail
COLLEAGUE_NAME = "Cora Colleague"
COLLEAGUE_GMAIL = "cora.rep@gmail.test"
CONTACT = "carl"
CONTACT_NAME = "Carl Client"
CONTACT_EMAIL = "carl@client.test"
SIGNED_PROPOSAL = b"%PDF-1.4\n% signed: 10 licenses, 12 months\n" + bytes(range(256)) + b"\n%%EOF\n"
RETURN_URL = "http://localhost:5173/settings/email"
STEPS = 12
WAIT_SECONDS = float(os.environ.get("DEMO_WAIT_SECONDS", "45"))


class DemoFailed(Exception):
    pass


class Narrator:
    def __init__(self) -> None:
        self.step = 0
        self.t0 = time.monotonic()
        self.current = ""

    def begin(self, text: str) -> None:
        self.step += 1
        self.current = text
        self.t_step = time.monotonic()
        print(f"\n[{self.step}/{STEPS}] {text}", flush=True)

    def detail(self, text: str) -> None:
        print(f"      {text}", flush=True)

    def ok(self, text: str) -> None:
        print(f"      ✓ {text} ({time.monotonic() - self.t_step:.1f} s)", flush=True)


def http(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None,
         timeout: float = 60) -> tuple[int, dict[str, str], bytes]:
    """One HTTP call (stdlib only); redirects are returned, not followed."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, req, fp, code, msg, hdrs, newurl):  # type: ignore[no-untyped-def]
            return None

    data = None if body is None else json.dumps(body).encode("utf-8")
    req = urllib.request.Request(url, data=data, method=method, headers={
        **({"Content-Type": "application/json"} if data is not None else {}), **(headers or {})})
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def wait_until(check: Callable[[], Any], what: str, timeout: float = WAIT_SECONDS) -> Any:
    try:
        return polling.wait_until(check, timeout, what, interval=0.2)
    except polling.WaitTimeout:
        raise DemoFailed(f"gave up after {timeout:.0f} s waiting for {what}") from None


def synced_past(db: Any, gmail: str, history_id: int) -> bool:
    """The mailbox's sync cursor covers `history_id`: everything Gmail held then is logged."""
    from shared.crm import paths

    cursor = (db.collection("sync_mailboxes").document(paths.mailbox_id(gmail)).get().to_dict() or {}).get("historyId")
    return cursor is not None and int(cursor) >= history_id


def conversation(db: Any) -> list[dict[str, Any]]:
    col = db.collection(f"accounts/{ACCOUNT}/conversations/{CONTACT}/messages")
    msgs = [s.to_dict() for s in col.stream()]
    return sorted(msgs, key=lambda m: m.get("sentAt") or datetime.min.replace(tzinfo=UTC))


def mailbox_names(m: dict[str, Any]) -> list[str]:
    """Whose Gmail a message document reached (R25 `mailboxIds`), by the reps' names."""
    from shared.crm import paths

    names = {paths.mailbox_id(REP_GMAIL): "Rita", paths.mailbox_id(COLLEAGUE_GMAIL): "Cora"}
    return [names.get(b, b) for b in m.get("mailboxIds") or []]


def threads_in_ritas_gmail(sim: Any, msgs: list[dict[str, Any]]) -> list[str | None]:
    """Each message's Gmail thread in Rita's mailbox. A document's `gmailThreadId` is its first mailbox's, which
    for Carl's reply may be Cora's (R25: whichever sync logged it first); `gmailIds` has its id in each."""
    from shared.crm import paths

    box = paths.mailbox_id(REP_GMAIL)
    threads = {m["id"]: m["threadId"] for m in sim.messages(REP_GMAIL)}
    return [threads.get((m.get("gmailIds") or {}).get(box) or m.get("gmailMessageId") or "") for m in msgs]


def show_conversation(n: Narrator, msgs: list[dict[str, Any]], threads: list[str | None]) -> None:
    for m, thread in zip(msgs, threads, strict=True):
        arrow = "→ to contact " if m.get("direction") == "outbound" else "← from contact"
        n.detail(f"{arrow} [{m.get('source')}] {m.get('subject')!r}  (Rita's Gmail thread {thread}, "
                 f"mailboxes {' + '.join(mailbox_names(m)) or '-'})")


def run(stack: Stack, n: Narrator) -> None:
    from google.cloud import firestore

    from devstack.rep_browser import connect_in_browser
    from shared.crm import paths
    from simulator.client import SimClient

    for key, value in stack.env_for_clients().items():
        os.environ[key] = value
    db = firestore.Client(project=stack.project_id)
    sim = SimClient(stack.simulator_url)
    crm_auth = {"Authorization": f"Bearer {stack.secrets.crm_api_key}"}

    n.begin("Seeding the CRM: account 'acme-demo', sales reps Rita and Cora, contacts Carl and Dana")
    now = datetime.now(UTC)
    db.document(f"accounts/{ACCOUNT}").set({"name": "ACME (demo)"})
    db.document(f"accounts/{ACCOUNT}/users/{USER}").set({"email": "rita@acme.test", "name": REP_NAME})
    db.document(f"accounts/{ACCOUNT}/users/{COLLEAGUE}").set({"email": "cora@acme.test", "name": COLLEAGUE_NAME})
    db.document(f"accounts/{ACCOUNT}/contacts/{CONTACT}").set(
        {"email": CONTACT_EMAIL, "name": CONTACT_NAME, "createdAt": now})
    db.document(f"accounts/{ACCOUNT}/contacts/dana").set(
        {"email": "dana@other.test", "name": "Dana Doe", "createdAt": now})
    n.ok("written straight into the Firestore emulator, as a CRM would")

    n.begin(f"Connecting Rita's Gmail ({REP_GMAIL}) through the real OAuth flow")
    status, _, body = http("POST", f"{stack.function_url('oauth')}/connect",
                           {"accountId": ACCOUNT, "userId": USER, "returnUrl": RETURN_URL}, crm_auth)
    if status != 200:
        raise DemoFailed(f"POST /connect answered {status}: {body[:300]!r}")
    auth_url = json.loads(body)["authorizationUrl"]
    n.detail("the CRM got an authorization URL; Rita's browser opens it and she clicks Allow at (simulated) Google")
    back = connect_in_browser(sim, auth_url, REP_GMAIL)  # one cookie jar from /start to /callback (R24)
    location = back.headers.get("Location", "")
    outcome = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    if back.status_code != 302 or outcome.get("status") != "connected":
        raise DemoFailed(f"the OAuth callback did not connect: {back.status_code} {location or back.text[:300]!r}")
    _, _, body = http("GET", f"{stack.function_url('oauth')}/status?accountId={ACCOUNT}&userId={USER}",
                      headers=crm_auth)
    st = json.loads(body)
    n.detail(f"CRM status: {st.get('status')}, address {st.get('address')}, Auto BCC {st.get('autoBccAddress')}")
    if st.get("status") != "connected":
        raise DemoFailed(f"GET /status says {st}")
    n.ok("tokens stored encrypted, Gmail watch started")

    n.begin(f"Rita's colleague Cora connects her own Gmail ({COLLEAGUE_GMAIL}) the same way")
    status, _, body = http("POST", f"{stack.function_url('oauth')}/connect",
                           {"accountId": ACCOUNT, "userId": COLLEAGUE, "returnUrl": RETURN_URL}, crm_auth)
    cora = connect_in_browser(sim, json.loads(body)["authorizationUrl"], COLLEAGUE_GMAIL) if status == 200 else None
    if cora is None or "status=connected" not in cora.headers.get("Location", ""):
        raise DemoFailed(f"Cora's connect failed: {status} {body[:200]!r} {cora and cora.headers.get('Location')}")
    n.ok("two reps of one account connected, each with her own Gmail")

    n.begin("Sending an email to Carl from the CRM (POST send_email)")
    status, _, body = http("POST", stack.function_url("send_email"), {
        "accountId": ACCOUNT, "userId": USER, "contactId": CONTACT, "subject": "Our proposal",
        "text": "Hi Carl,\n\nas promised, our proposal is attached.\n\nRita",
        "html": "<p>Hi Carl,</p><p>as promised, our proposal is attached.</p><p>Rita</p>",
        "attachments": [{"filename": "Proposal.txt", "mimeType": "text/plain",
                         "contentBase64": "UHJvcG9zYWw6IDEwIGxpY2Vuc2VzLCAxMiBtb250aHMu"}],
        "idempotencyKey": "demo-send-1"}, crm_auth)
    if status != 200:
        raise DemoFailed(f"send_email answered {status}: {body[:300]!r}")
    sent = json.loads(body)
    n.ok(f"sent: CRM message {sent['messageId']}, Gmail message {sent['gmailMessageId']}")

    n.begin("Looking into Rita's Gmail Sent folder (the simulator)")
    in_sent = [m for m in sim.messages(REP_GMAIL, label="SENT") if m["id"] == sent["gmailMessageId"]]
    if not in_sent:
        raise DemoFailed("the message is not in the simulated Gmail's Sent folder")
    h = in_sent[0]["headers"]
    n.detail(f"From: {h.get('From')}  To: {h.get('To')}  Subject: {h.get('Subject')}")
    our_message_id = h.get("Message-ID") or h.get("Message-Id") or ""
    n.ok(f"in Sent, Message-ID {our_message_id}")

    n.begin("Carl replies to Rita, Cora in Cc (mail from outside arrives in both inboxes)")
    reply = EmailMessage()
    reply["From"] = f"{CONTACT_NAME} <{CONTACT_EMAIL}>"
    reply["To"] = f"{REP_NAME} <{REP_GMAIL}>"
    reply["Cc"] = f"{COLLEAGUE_NAME} <{COLLEAGUE_GMAIL}>"
    reply["Subject"] = "Re: Our proposal"
    reply["Date"] = format_datetime(datetime.now(UTC))
    reply["Message-ID"] = carl_id = make_msgid(domain="client.test")
    reply["In-Reply-To"] = our_message_id
    reply["References"] = our_message_id
    reply.set_content("Thanks Rita, looks good. Can we start next month? The signed proposal is attached.\n\nCarl")
    reply.add_attachment(SIGNED_PROPOSAL, maintype="application", subtype="pdf", filename="Signed proposal.pdf")
    delivered = sim.deliver(REP_GMAIL, reply.as_bytes())
    to_cora = sim.deliver(COLLEAGUE_GMAIL, reply.as_bytes())  # each mailbox gets its own copy, as Gmail does
    same = "same" if delivered["threadId"] == sent["gmailThreadId"] else "ANOTHER"
    n.ok(f"delivered as Gmail message {delivered['id']}, in the {same} Gmail thread; Cora's copy {to_cora['id']}")
    if same != "same":
        raise DemoFailed("Gmail did not thread Carl's reply with the CRM's email")

    n.begin("Waiting for the sync of both mailboxes to log Carl's reply (Gmail watch → Pub/Sub → gmail_push)")
    for gmail in (REP_GMAIL, COLLEAGUE_GMAIL):
        wait_until(partial(synced_past, db, gmail, int(sim.mailbox(gmail)["historyId"])), f"{gmail}'s sync")
    msgs = conversation(db)
    threads = threads_in_ritas_gmail(sim, msgs)
    show_conversation(n, msgs, threads)
    replies = [m for m in msgs if m.get("direction") == "inbound"]
    if len(replies) != 1 or sorted(mailbox_names(replies[0])) != ["Cora", "Rita"]:
        raise DemoFailed(f"Carl's reply should be one message listing Rita's and Cora's mailboxes, found "
                         f"{[mailbox_names(m) for m in replies]}")
    if set(threads) != {sent["gmailThreadId"]}:
        raise DemoFailed("the CRM conversation holds messages of more than one Gmail thread")
    n.ok(f"{len(msgs)} messages, one conversation, one thread; Carl's reply once, in both mailboxes")

    n.begin("Rita opens Carl's attachment from the CRM (GET attachments, through her Gmail)")
    carl_msg = next(m for m in msgs if m.get("direction") == "inbound")
    att = carl_msg["attachments"][0]
    carl_doc_id = paths.message_doc_id(carl_id, None)
    query = urlencode({"accountId": ACCOUNT, "conversationId": CONTACT, "messageId": carl_doc_id,
                       "attachmentId": att["gmailAttachmentId"]})
    status, headers, body = http("GET", f"{stack.function_url('attachments')}?{query}", headers=crm_auth)
    if status != 200 or body != SIGNED_PROPOSAL:
        raise DemoFailed(f"attachments answered {status}: {body[:300]!r}")
    n.detail(f"{headers.get('Content-Type')}; {headers.get('Content-Disposition')}; {len(body)} bytes")
    n.ok(f"{att['filename']!r}: the very bytes Carl sent")

    n.begin("Rita answers from Gmail itself (not from the CRM)")
    answer = EmailMessage()
    answer["From"] = f"{REP_NAME} <{REP_GMAIL}>"
    answer["To"] = f"{CONTACT_NAME} <{CONTACT_EMAIL}>"
    answer["Subject"] = "Re: Our proposal"
    answer["In-Reply-To"] = carl_id
    answer["References"] = f"{our_message_id} {carl_id}"
    answer.set_content("Next month works. I'll send the contract.\n\nRita")
    from_gmail = sim.send_as_user(REP_GMAIL, answer.as_bytes())
    n.ok(f"sent from Gmail as message {from_gmail['id']}")

    n.begin("Waiting for Rita's Gmail answer to appear in the CRM conversation")
    msgs = wait_until(lambda: (m := conversation(db)) and len(m) >= 3 and m, "Rita's Gmail answer in the CRM")
    threads = threads_in_ritas_gmail(sim, msgs)
    show_conversation(n, msgs, threads)
    if len(msgs) != 3 or set(threads) != {sent["gmailThreadId"]}:
        raise DemoFailed(f"expected 3 messages in one thread, found {len(msgs)}")
    n.ok("all three messages in one CRM conversation and one Gmail thread")

    n.begin("Rita reads Carl's reply in Gmail; the CRM shows it as read (R19, no messages.get)")
    carl_doc = db.document(f"accounts/{ACCOUNT}/conversations/{CONTACT}/messages/{carl_doc_id}")
    n.detail(f"in the CRM before: read={(carl_doc.get().to_dict() or {}).get('read')}")
    sim.modify(REP_GMAIL, delivered["id"], remove=["UNREAD"])
    wait_until(lambda: (carl_doc.get().to_dict() or {}).get("read") is True, "Carl's reply marked read in the CRM")
    n.ok("in the CRM after: read=True (a message.updated event told the CRM's UI)")


def main() -> int:
    n = Narrator()
    print("gmail-crm-sync demo: a CRM, a sales rep's Gmail and a contact, all local.", flush=True)
    n.begin("Starting the local stack (Firestore + Pub/Sub emulators, Google simulator, the functions)")
    stack = Stack(StackSettings())
    failure: str | None = None
    try:
        try:
            stack.start()
        except StartupError as exc:
            raise DemoFailed(f"the local stack did not start: {exc}") from None
        n.ok(f"up; logs in {stack.log_dir}")
        run(stack, n)
    except DemoFailed as exc:
        failure = str(exc)
    except Exception as exc:
        failure = f"{type(exc).__name__}: {exc}"
    finally:
        print("\nStopping the local stack …", flush=True)
        stack.stop()
    if failure is not None:
        print(f"\nDEMO FAILED at step {n.step} of {STEPS} ({n.current}):\n  {failure}\n"
              f"  Logs of every part: {stack.log_dir}", file=sys.stderr, flush=True)
        return 1
    print(f"\nDEMO SUCCEEDED in {time.monotonic() - n.t0:.0f} s: CRM send, contact reply (one message for both "
          "reps) and Gmail reply form one Gmail thread and one CRM conversation.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
