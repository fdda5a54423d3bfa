"""Gmail's messages.send for the send path, over a kept connection (issue 12: no handshake per send).

Errors are sorted by shared.gmail.errors.classify into what they mean for
the send: a refusal (nothing was sent: give back the slot and the key, then
answer 4xx), rate limiting (nothing was sent: retry within the budget), or an
unknown outcome (5xx, a broken connection: ask Gmail by the Message-ID
whether the message went out before sending again, R18).

JSON `raw` for small messages, the resumable media upload above
UPLOAD_THRESHOLD (R15; SPEC §4: the discovery document's upload path).
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from io import BytesIO
from typing import Any, TypeVar

from shared.core import log
from shared.core.config import get_config
from shared.gmail.credentials import ReauthRequired, reauth_guard
from shared.gmail.errors import Outcome, classify
from shared.gmail.service import authorized_http, kept_connection
from shared.http.answers import ApiError
from shared.send import answers, limits

UPLOAD_THRESHOLD = 4 * 1024 * 1024  # above this the message goes through the media upload endpoint
MAX_RETRY_BUDGET_SECONDS = 20.0
_MAIL_SENDING_RETRY = re.compile(r"Retry after (\S+)")
T = TypeVar("T")


class Unconfirmed(Exception):
    """Gmail did not confirm the send and could not be asked whether it went out: keep the key for a retry."""


@dataclass
class GmailAccess:
    """The mailbox's credentials on this thread's kept connection."""

    mailbox_id: str
    address: str
    credentials: Any

    def call(self, fn: Callable[[Any, Any], T]) -> T:
        """`fn(messages_resource, http)` with the mailbox's token on the kept connection; R5 on invalid_grant."""
        with kept_connection() as (messages, base), reauth_guard(self.mailbox_id, self.address, self.credentials):
            return fn(messages, authorized_http(self.credentials, base))


def execute_send(messages: Any, http: Any, mime: bytes, thread_id: str | None) -> dict[str, Any]:
    """One messages.send call: `raw` in the JSON body for small messages, the media upload for large ones."""
    body: dict[str, Any] = {"threadId": thread_id} if thread_id else {}
    if len(mime) < UPLOAD_THRESHOLD:
        body["raw"] = base64.urlsafe_b64encode(mime).decode("ascii")
        request = messages.send(userId="me", body=body)
    else:
        from googleapiclient.http import MediaIoBaseUpload  # lazy: Gmail client library (cold start)

        media = MediaIoBaseUpload(BytesIO(mime), mimetype="message/rfc822", resumable=True)
        request = messages.send(userId="me", body=body or None, media_body=media)
    result: dict[str, Any] = request.execute(http=http)
    return result


def find_sent(gmail: GmailAccess, rfc822_id: str) -> tuple[str, str] | None:
    """(gmailMessageId, threadId) of the message with this Message-ID in the Sent folder, if Gmail has it."""
    q = f"rfc822msgid:{rfc822_id.strip('<>')} in:sent"
    resp: dict[str, Any] = gmail.call(lambda m, http: m.list(userId="me", q=q, includeSpamTrash=True,
                                                             maxResults=5).execute(http=http, num_retries=2))
    msgs = resp.get("messages") or []
    return (msgs[0]["id"], msgs[0]["threadId"]) if msgs else None


def send(gmail: GmailAccess, mime: bytes, thread_id: str | None, rfc822_id: str,
         give_back: Callable[[], None]) -> tuple[str, str]:
    """(gmailMessageId, threadId) once Gmail accepted the message; every refusal calls `give_back` first.

    Retries only what provably did not send: a rate-limit refusal, or an error after which Gmail's Sent
    folder has no message with our Message-ID. Raises Unconfirmed when that cannot be found out.
    """
    from googleapiclient.errors import HttpError  # lazy: Gmail client library (cold start)

    budget = time.monotonic() + min(get_config().gmail_retry_budget_seconds, MAX_RETRY_BUDGET_SECONDS)
    delay = 0.5
    while True:
        def attempt(messages: Any, http: Any, thread: str | None = thread_id) -> dict[str, Any]:
            return execute_send(messages, http, mime, thread)

        try:
            sent = gmail.call(attempt)
            return sent["id"], sent["threadId"]
        except ReauthRequired:
            give_back()
            raise answers.reauth_required() from None
        except HttpError as exc:
            info = classify(exc)
            if info.outcome is Outcome.SENDING_LIMIT:
                give_back()
                log.warning("Gmail refused: sending limit", mailboxId=gmail.mailbox_id, reason=info.reason)
                raise answers.daily_limit_reached(gmail_reset_at(info.message, gmail.mailbox_id)) from None
            if info.outcome is Outcome.RATE_LIMITED:
                if time.monotonic() + delay < budget:  # a refusal: nothing was sent, retrying is safe
                    log.info("Gmail rate-limited the send; retrying", mailboxId=gmail.mailbox_id,
                             status=info.status, delaySeconds=delay)
                    time.sleep(delay)
                    delay = min(delay * 2, 4.0)
                    continue
                give_back()
                raise answers.rate_limited() from None
            if info.thread_unknown and thread_id is not None:
                # The parent's thread is not in this mailbox (e.g. the rep changed Gmail, R3): the headers
                # still thread it for the recipient, Gmail starts a new thread here.
                log.info("reply thread unknown to Gmail; sending without threadId", mailboxId=gmail.mailbox_id)
                thread_id = None
                continue
            if info.outcome in (Outcome.REJECTED, Outcome.NOT_FOUND, Outcome.REAUTH):
                give_back()
                raise answers.gmail_rejected(info.status, info.reason, info.message) from None
            found = _ask_gmail(gmail, rfc822_id, info.status)
        except (OSError, TimeoutError) as exc:
            log.warning("Gmail send failed in transport", mailboxId=gmail.mailbox_id, error=type(exc).__name__)
            found = _ask_gmail(gmail, rfc822_id, 0)
        if found is not None:
            return found
        # The message is provably not at Gmail: retry within the budget.
        if time.monotonic() + delay >= budget:
            give_back()
            raise answers.gmail_unavailable("Gmail is unavailable; retry later with the same idempotencyKey", 10)
        log.info("Gmail send failed and did not go out; retrying", mailboxId=gmail.mailbox_id, delaySeconds=delay)
        time.sleep(delay)
        delay = min(delay * 2, 4.0)


def _ask_gmail(gmail: GmailAccess, rfc822_id: str, status: int) -> tuple[str, str] | None:
    """Gmail answered 5xx or the connection broke: did the message go out?"""
    try:
        return find_sent(gmail, rfc822_id)
    except Exception as exc:
        log.warning("send outcome unknown", mailboxId=gmail.mailbox_id, status=status, error=type(exc).__name__)
        raise Unconfirmed() from None


def unconfirmed_answer() -> ApiError:
    return answers.gmail_unavailable("Gmail did not confirm the send; retry with the same idempotencyKey (it will "
                                     "not send twice)", 5)


def gmail_reset_at(message: str, mailbox_id: str) -> datetime:
    """When Gmail says its own sending limit resets ("Retry after <time>"), else when the oldest send we
    counted leaves the rolling window (R30)."""
    m = _MAIL_SENDING_RETRY.search(message)
    if m:
        try:
            return datetime.fromisoformat(m.group(1).rstrip(".").replace("Z", "+00:00"))
        except ValueError:
            pass
    now = datetime.now(UTC)
    return limits.reset_at(limits.list_slots(mailbox_id), now, get_config().daily_send_limit)
