"""The one place that knows collection paths and document ids, and builds every `*_ref`.

Ids are deterministic wherever a retry could otherwise write twice: the same
input always names the same document, and writes use create-if-absent or
transactions on it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from typing import TYPE_CHECKING

from shared.core.clients import firestore_client

if TYPE_CHECKING:
    from google.cloud.firestore import DocumentReference

ACCOUNTS = "accounts"
USERS = "users"
CONTACTS = "contacts"
CONVERSATIONS = "conversations"
MESSAGES = "messages"
SETTINGS = "settings"
EMAIL_SYNC_SETTINGS = "emailSync"  # accounts/{accountId}/settings/emailSync (R21 blocklist, CRM-written)

MAILBOXES = "sync_mailboxes"
LINKS = "sync_links"
TOKENS = "sync_tokens"
THREADS = "sync_threads"
OAUTH_STATES = "sync_oauth_states"
SEND_SLOTS = "sync_send_slots"
IDEMPOTENCY = "sync_idempotency"
AUTO_BCC = "sync_auto_bcc"
AUTO_BCC_OWNERS = "sync_auto_bcc_owners"  # per user (link_id): the generation of their Auto BCC address
AUTO_BCC_RATE = "sync_auto_bcc_rate"  # per address and minute: copies counted (issue 23)
ATTACHMENTS = "sync_attachments"
SKIPPED = "sync_skipped"  # R22: messages that could not be stored at all
CRM_SENT = "sync_crm_sent"  # 0.3: a CRM send's Gmail id in its mailbox, so the sync never fetches it
CONTACT_INDEX = "sync_contact_index"  # R11b: lower(email) -> the account's contacts with that address
CONTACT_KEYS = "sync_contact_keys"  # R11b: contact -> the address the index holds it under
CONTACT_INDEX_STATE = "sync_contact_index_state"  # R11b: per account, has the backfill covered every contact


def _h(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()[:32]


def normalize_address(address: str) -> str:
    return address.strip().lower()


def mailbox_id(address: str) -> str:
    return _h(normalize_address(address))


def sweep_shard(mailbox: str, shards: int) -> int:
    """The sweep shard of a mailbox id: spreads the sweep's index over `shards` key ranges."""
    return int(mailbox[:8], 16) % max(1, shards)


def link_id(account_id: str, user_id: str) -> str:
    return _h(account_id, user_id)


def thread_doc_id(mailbox: str, gmail_thread_id: str) -> str:
    return f"{mailbox}_{gmail_thread_id}"


def contact_index_id(account_id: str, email: str) -> str:
    return f"{account_id}_{_h(normalize_address(email))}"


def contact_key_id(account_id: str, contact_id: str) -> str:
    return _h(account_id, contact_id)


def skipped_doc_id(mailbox: str, gmail_message_id: str) -> str:
    return f"{mailbox}_{gmail_message_id}"


def idempotency_id(account_id: str, user_id: str, key: str) -> str:
    return _h(account_id, user_id, key)


def send_slot_id(mailbox: str, day: str, n: int) -> str:
    """0.2's day-keyed slot (deleted by the daily tick); 0.3 counts a rolling window: `window_slot_id`."""
    return f"{mailbox}_{day}_{n:05d}"


def window_slot_id(mailbox: str, n: int) -> str:
    """R30: one of a mailbox's `limit` send slots of the rolling 24 hours (shared/send/limits.py)."""
    return f"{mailbox}_w{n:05d}"


def gmail_message_doc_id(gmail_message_id: str) -> str:
    return f"gm_{gmail_message_id}"


def auto_bcc_message_doc_id(rfc822_message_id: str) -> str:
    """An Auto BCC copy: the account's one record of its Message-ID (R25), or a hash of a copy without one."""
    return message_doc_id(rfc822_message_id, None) or f"ab_{_h(rfc822_message_id.strip())}"


_MESSAGE_ID = re.compile(r"<[^<>\s]+>")
RFC822_PREFIX = "rfc_"
MAX_ENCODED_ID = 700  # Firestore allows 1,500 bytes per id; a longer Message-ID is hashed (R10b cannot decode it)


def normalize_message_id(value: str | None) -> str | None:
    """R25: the RFC 822 `Message-ID` as one `<id>` token (whitespace, folding and comments dropped), or None."""
    found = _MESSAGE_ID.search(value or "")
    return found.group(0) if found else None


def message_doc_id(rfc822_message_id: str | None, gmail_message_id: str | None) -> str:
    """R25: a message is one document per account, named by its Message-ID wherever it came from (several
    reps' mailboxes, a CRM send, an Auto BCC copy): `rfc_<base64url(<id>)>`, decodable so R10b's look-up can
    query the stored `rfc822MessageId`. Mail without a Message-ID keeps its mailbox's id, `gm_<gmailId>`."""
    mid = normalize_message_id(rfc822_message_id)
    if mid is None:
        return gmail_message_doc_id(gmail_message_id) if gmail_message_id else ""
    encoded = base64.urlsafe_b64encode(mid.encode("utf-8")).decode("ascii").rstrip("=")
    return RFC822_PREFIX + encoded if len(encoded) <= MAX_ENCODED_ID else f"rfh_{_h(mid)}"


def rfc822_of_doc_id(doc_id: str) -> str | None:
    """The Message-ID a `rfc_` document id names (R10b), or None."""
    if not doc_id.startswith(RFC822_PREFIX):
        return None
    encoded = doc_id[len(RFC822_PREFIX):]
    try:
        mid = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return mid if normalize_message_id(mid) == mid else None


def attachment_chunk_id(account_id: str, conversation_id: str, message_id: str, attachment_id: str,
                        index: int) -> str:
    return f"{_h(account_id, conversation_id, message_id, attachment_id)}_{index:04d}"


def user_path(account_id: str, user_id: str) -> str:
    return f"{ACCOUNTS}/{account_id}/{USERS}/{user_id}"


def contact_path(account_id: str, contact_id: str) -> str:
    return f"{ACCOUNTS}/{account_id}/{CONTACTS}/{contact_id}"


def email_sync_settings_path(account_id: str) -> str:
    return f"{ACCOUNTS}/{account_id}/{SETTINGS}/{EMAIL_SYNC_SETTINGS}"


def conversation_path(account_id: str, conversation_id: str) -> str:
    return f"{ACCOUNTS}/{account_id}/{CONVERSATIONS}/{conversation_id}"


def message_path(account_id: str, conversation_id: str, message_id: str) -> str:
    return f"{conversation_path(account_id, conversation_id)}/{MESSAGES}/{message_id}"


# --------------------------------------------------------------------------- document references

def mailbox_ref(mailbox_id: str) -> DocumentReference:
    return firestore_client().collection(MAILBOXES).document(mailbox_id)


def link_ref(account_id: str, user_id: str) -> DocumentReference:
    return firestore_client().collection(LINKS).document(link_id(account_id, user_id))


def token_ref(mailbox_id: str) -> DocumentReference:
    return firestore_client().collection(TOKENS).document(mailbox_id)


def user_ref(account_id: str, user_id: str) -> DocumentReference:
    return firestore_client().document(user_path(account_id, user_id))


def contact_ref(account_id: str, contact_id: str) -> DocumentReference:
    return firestore_client().document(contact_path(account_id, contact_id))


def settings_ref(account_id: str) -> DocumentReference:
    return firestore_client().document(email_sync_settings_path(account_id))


def conversation_ref(account_id: str, conversation_id: str) -> DocumentReference:
    return firestore_client().document(conversation_path(account_id, conversation_id))


def message_ref(account_id: str, conversation_id: str, message_id: str) -> DocumentReference:
    return firestore_client().document(message_path(account_id, conversation_id, message_id))


def thread_ref(mailbox_id: str, gmail_thread_id: str) -> DocumentReference:
    return firestore_client().collection(THREADS).document(thread_doc_id(mailbox_id, gmail_thread_id))


def crm_sent_ref(mailbox_id: str, gmail_message_id: str) -> DocumentReference:
    return firestore_client().collection(CRM_SENT).document(skipped_doc_id(mailbox_id, gmail_message_id))


def skip_ref(mailbox_id: str, gmail_message_id: str) -> DocumentReference:
    return firestore_client().collection(SKIPPED).document(skipped_doc_id(mailbox_id, gmail_message_id))


def contact_index_ref(account_id: str, email: str) -> DocumentReference:
    return firestore_client().collection(CONTACT_INDEX).document(contact_index_id(account_id, email))


def contact_key_ref(account_id: str, contact_id: str) -> DocumentReference:
    return firestore_client().collection(CONTACT_KEYS).document(contact_key_id(account_id, contact_id))


def contact_index_state_ref(account_id: str) -> DocumentReference:
    return firestore_client().collection(CONTACT_INDEX_STATE).document(account_id)


def auto_bcc_route_ref(token: str) -> DocumentReference:
    return firestore_client().collection(AUTO_BCC).document(token)


def auto_bcc_owner_ref(account_id: str, user_id: str) -> DocumentReference:
    """The generation of a user's Auto BCC address (issue 23's rotation); keyed like their link."""
    return firestore_client().collection(AUTO_BCC_OWNERS).document(link_id(account_id, user_id))


def auto_bcc_rate_ref(window_doc_id: str) -> DocumentReference:
    return firestore_client().collection(AUTO_BCC_RATE).document(window_doc_id)


def oauth_state_ref(nonce: str) -> DocumentReference:
    return firestore_client().collection(OAUTH_STATES).document(nonce)


def attachment_chunk_ref(chunk_id: str) -> DocumentReference:
    return firestore_client().collection(ATTACHMENTS).document(chunk_id)


def slot_ref(slot_doc_id: str) -> DocumentReference:
    return firestore_client().collection(SEND_SLOTS).document(slot_doc_id)


def idempotency_ref(record_id: str) -> DocumentReference:
    return firestore_client().collection(IDEMPOTENCY).document(record_id)
