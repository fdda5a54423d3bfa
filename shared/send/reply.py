"""The message a CRM reply answers (`replyToMessageId`, R10, R10b).

Which messages can a reply to contact C answer? Every logged message that C's
conversation shows: the messages in `conversations/C`, and the messages that
name C as their contact (`contactId == C`) but sit in another conversation of
the account because their Gmail thread was mapped there first (R10: one
thread, one conversation; `sync_threads` holds that mapping). Example: Carla
writes, the rep answers with Dora in Cc, Dora replies to all: Dora's message
is in Carla's conversation with `contactId: dora`, and a CRM reply to it from
Dora's page must work (R10b). A message where C is only in Cc is not C's.

The reply goes where its parent is: into the parent's Gmail thread and the
parent's conversation (the thread's), addressed to C, naming C as contact.

The common case costs nothing extra: the parent under `conversations/C` is
read in the send's first batch. Only when it is not there, one collection-group
query by (contactId, rfc822MessageId) looks for it elsewhere (a message's id
names its Message-ID, R25: `rfc_…`; mail without one, `gm_…`, by
(contactId, gmailMessageId)); the results are kept to this account's paths
(another tenant's copy of the same message, R14, is never used). Auto BCC
copies without a Message-ID (`ab_…`) are always in their contact's own
conversation, so they are not looked up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.core.clients import firestore_client
from shared.core.models import Message
from shared.crm import paths
from shared.gmail.mime_build import reply_references, reply_subject, strip_reply_prefixes

GMAIL_PREFIX = "gm_"


@dataclass(frozen=True)
class Parent:
    conversation_id: str
    message: Message

    @property
    def thread_id(self) -> str | None:
        return self.message.gmailThreadId or None

    @property
    def in_reply_to(self) -> str | None:
        return self.message.rfc822MessageId or None

    @property
    def references(self) -> tuple[str, ...]:
        m = self.message
        if not m.rfc822MessageId:
            return ()
        return tuple(reply_references(m.references or ([m.inReplyTo] if m.inReplyTo else []), m.rfc822MessageId))

    def reply_subject(self, requested: str | None) -> str:
        """Gmail keeps a message in the thread only when the subjects agree; keep the rep's text when it does."""
        base = strip_reply_prefixes(self.message.subject or "")
        if not requested or strip_reply_prefixes(requested).lower() == base.lower():
            return reply_subject(self.message.subject or requested or "")
        return requested


def find_parent(account_id: str, contact_id: str, message_id: str, own: Any) -> Parent | None:
    """The parent from the contact's own conversation (`own`, read by the caller), else from elsewhere."""
    if own is not None:
        return Parent(contact_id, Message.from_doc(own.to_dict()))
    snap = _logged_elsewhere(account_id, contact_id, message_id)
    if snap is None:
        return None
    return Parent(snap.reference.parent.parent.id, Message.from_doc(snap.to_dict()))


def _logged_elsewhere(account_id: str, contact_id: str, message_id: str) -> Any:
    from google.cloud.firestore_v1.base_query import FieldFilter  # lazy: Firestore library (cold start)

    rfc822 = paths.rfc822_of_doc_id(message_id)
    messages = firestore_client().collection_group(paths.MESSAGES)
    if rfc822 is not None:
        q = (messages.where(filter=FieldFilter("contactId", "==", contact_id))
             .where(filter=FieldFilter("rfc822MessageId", "==", rfc822)).limit(50))
    elif message_id.startswith(GMAIL_PREFIX) and len(message_id) > len(GMAIL_PREFIX):
        q = (messages.where(filter=FieldFilter("contactId", "==", contact_id))
             .where(filter=FieldFilter("gmailMessageId", "==", message_id[len(GMAIL_PREFIX):])).limit(50))
    else:
        return None
    prefix = f"{paths.ACCOUNTS}/{account_id}/{paths.CONVERSATIONS}/"
    for snap in q.stream():
        ref = snap.reference
        if ref.id == message_id and ref.path.startswith(prefix) and ref.path.count("/") == 5:
            return snap
    return None
