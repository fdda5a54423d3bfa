"""The one way every function gets Gmail access for a mailbox (R5 lives here).

Access tokens are cached per process until shortly before they expire, so a
warm instance does not call the token endpoint per invocation. When Google
rejects the refresh token (`invalid_grant`: password changed, access revoked)
the mailbox and all its users become `reauth_required`, the CRM gets an event,
and callers get `ReauthRequired`, which each turns into its own clear answer
(send: 409; push: acknowledge, no retry storm).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.core import log
from shared.core.config import get_config
from shared.core.events import CrmEvent, publish
from shared.core.models import Mailbox
from shared.core.secrets import get_secret
from shared.crm.connection import ConnectionState, decide_mailbox
from shared.crm.mailboxes import MailboxRead, open_token, set_status
from shared.gmail.service import build_gmail

OAUTH_CLIENT_SECRET = "oauth-client"
_token_cache: dict[str, tuple[str, datetime, str]] = {}  # mailbox -> (access token, expiry, refresh token)
_cache_lock = threading.Lock()


class NotConnected(Exception):
    """The mailbox has no stored token or is disconnected."""


class ReauthRequired(Exception):
    """Google rejected the refresh token; the rep must connect again."""

    def __init__(self, mailbox_id: str, address: str) -> None:
        super().__init__(f"mailbox {mailbox_id} needs re-authentication")
        self.mailbox_id = mailbox_id
        self.address = address


@dataclass(frozen=True)
class OAuthClient:
    client_id: str
    client_secret: str


def oauth_client() -> OAuthClient:
    data = json.loads(get_secret(OAUTH_CLIENT_SECRET).text())
    return OAuthClient(data["clientId"], data["clientSecret"])


@dataclass
class GmailSession:
    """Gmail access for one mailbox during one invocation."""

    mailbox_id: str
    address: str
    credentials: Any
    service: Any


def is_invalid_grant(exc: BaseException) -> bool:
    from google.auth.exceptions import RefreshError  # lazy: google-auth (cold start)

    if not isinstance(exc, RefreshError):
        return False
    text = " ".join(str(a) for a in exc.args)
    return "invalid_grant" in text


def mark_reauth_required(mailbox_id: str, address: str, rejected_token: str | None,
                         reason: str = "invalid_grant") -> None:
    """Flip the mailbox and its users to `reauth_required` and tell the CRM (once per change), unless the
    rep connected again since `rejected_token` was read (shared.crm.mailboxes.set_status)."""
    forget_access_token(mailbox_id)
    changed = set_status(mailbox_id, "reauth_required", "Google rejected the stored authorization; "
                         "the rep must connect Gmail again", rejected_token=rejected_token)
    log.warning("mailbox needs re-authentication", mailboxId=mailbox_id, reason=reason)
    publish(CrmEvent(type="connection.status", accountId=ln.accountId, userId=ln.userId,
                     status="reauth_required", reason=reason, address=address) for ln in changed)


def forget_access_token(mailbox_id: str) -> None:
    with _cache_lock:
        _token_cache.pop(mailbox_id, None)


@contextmanager
def reauth_guard(mailbox_id: str, address: str, credentials: Any) -> Iterator[None]:
    """Turn `invalid_grant` anywhere inside (refresh before or during a Gmail call with `credentials`)
    into R5."""
    try:
        yield
    except Exception as exc:
        if is_invalid_grant(exc):
            mark_reauth_required(mailbox_id, address, credentials.refresh_token)
            raise ReauthRequired(mailbox_id, address) from None
        raise


def credentials_for(mailbox_id: str, address: str, refresh_token: str | None) -> Any:
    """Refreshed credentials for the mailbox (cached access token when still valid), from the refresh token
    the caller read (None: there is none)."""
    if refresh_token is None:
        raise NotConnected(mailbox_id)
    creds = credentials_from(mailbox_id, refresh_token)
    if not creds.token:
        refresh(mailbox_id, address, creds)
    return creds


def credentials_from(mailbox_id: str, refresh_token: str) -> Any:
    """Credentials for a refresh token the caller already read, with the cached access token if it is
    still valid for that same refresh token (a reconnect changes it, so the cache cannot go stale).

    `creds.token` is None when there is no valid cached token: call `refresh` (the send path does that
    in parallel with its own writes; Gmail calls would also refresh by themselves).
    """
    from google.oauth2.credentials import Credentials  # lazy: google-auth (cold start)

    client = oauth_client()
    creds = Credentials(token=None, refresh_token=refresh_token, token_uri=get_config().oauth_token_uri,
                        client_id=client.client_id, client_secret=client.client_secret,
                        scopes=None)  # the whole grant: a pre-0.3 one (readonly) and a 0.3 one (modify) alike
    with _cache_lock:
        hit = _token_cache.get(mailbox_id)
    if hit and hit[2] == refresh_token and hit[1] - timedelta(seconds=60) > datetime.now(UTC):
        creds.token = hit[0]
        creds.expiry = hit[1].replace(tzinfo=None)  # google-auth compares naive UTC
    return creds


def refresh(mailbox_id: str, address: str, creds: Any) -> None:
    """Get a new access token (R5 when Google rejects the refresh token) and cache it for the instance."""
    from google.auth.transport.requests import Request  # lazy: google-auth (cold start)

    stored = creds.refresh_token  # the cache is keyed by what Firestore holds
    with reauth_guard(mailbox_id, address, creds):
        creds.refresh(Request())
    if creds.token and creds.expiry:
        with _cache_lock:
            _token_cache[mailbox_id] = (creds.token, creds.expiry.replace(tzinfo=UTC), stored)


def require_connected(mailbox_id: str, mb: Mailbox | None) -> Mailbox:
    """The mailbox if the one connection check (`decide_mailbox`) says connected; else NotConnected or
    ReauthRequired."""
    state = decide_mailbox(mb).state
    if mb is None or state is ConnectionState.DISCONNECTED:
        raise NotConnected(mailbox_id)
    if state is ConnectionState.REAUTH_REQUIRED:
        raise ReauthRequired(mailbox_id, mb.address)
    return mb


def open_gmail(read: MailboxRead) -> GmailSession:
    """A Gmail session for a connected mailbox, or NotConnected / ReauthRequired, from the mailbox and token
    as the caller read them (`read_mailbox`, or the sync's lease read): no further Firestore read."""
    mailbox_id = read.mailbox_id
    mb = require_connected(mailbox_id, read.mailbox)
    creds = credentials_for(mailbox_id, mb.address, open_token(mailbox_id, read.token_doc))
    return GmailSession(mailbox_id=mailbox_id, address=mb.address, credentials=creds,
                        service=build_gmail(creds))
