"""An Auto BCC copy -> the message document that fits in Firestore (R16, R22's budget). No I/O.

A copy comes from the internet: up to 30 MB, a 300,000-character body (~900 KB
of CJK in UTF-8), a thousand recipients, hundreds of parts, 8-bit headers
decoded with lone surrogates. Firestore refuses a document above 1 MiB and a
string that is not UTF-8, and a refused write after the contact was created
is a partial write. So the document is decided *before* anything is written:

- bulk is refused, not cut (R6: one individual email; the record of who got
  it is never silently shortened): more than `MAX_RECIPIENTS` recipients or
  `MAX_ATTACHMENTS` attachments -> `NotStorable`;
- the bodies are cut at a UTF-8 character boundary to fit, with
  `truncated: true`, by the sync's own rule (shared/crm/fit.py); so is an
  absurd subject; reference ids longer than a header line are dropped;
- if even the bodiless document would not fit -> `NotStorable`.
"""

from __future__ import annotations

from collections.abc import Callable

from shared.auto_bcc.message import AutoBccCopy
from shared.core.models import Message
from shared.core.refusal import Refusal
from shared.crm import paths
from shared.crm.fit import fit_message

MAX_RECIPIENTS = 1_000  # To + Cc + Bcc
MAX_ATTACHMENTS = 100
MAX_REFERENCES = 50  # the newest ones: threading needs the last
MAX_ID_CHARS = 998  # RFC 5322's line length; a longer "Message-ID" is garbage
MAX_SUBJECT_CHARS = 2_000


class NotStorable(Refusal, ValueError):
    """The copy cannot be logged as one message; the text says why."""

    status, code = 413, "too_large"


def logged_recipients(copy: AutoBccCopy, is_auto_bcc: Callable[[str], bool]) -> tuple[list[str], list[str], list[str]]:
    """To, Cc and Bcc as the message logs them: our own Auto BCC addresses are not recipients."""
    return ([a.email for a in copy.to if not is_auto_bcc(a.email)],
            [a.email for a in copy.cc if not is_auto_bcc(a.email)],
            [a.email for a in copy.bcc if not is_auto_bcc(a.email)])


def check_not_bulk(copy: AutoBccCopy, is_auto_bcc: Callable[[str], bool]) -> None:
    """R6: one individual email; a copy to a crowd is refused (cheap: call it before any look-up)."""
    if sum(len(x) for x in logged_recipients(copy, is_auto_bcc)) > MAX_RECIPIENTS:
        raise NotStorable(f"the copy has more than {MAX_RECIPIENTS} recipients; bulk mail is not logged")
    if len(copy.attachments) > MAX_ATTACHMENTS:
        raise NotStorable(f"the copy has more than {MAX_ATTACHMENTS} attachments")


def build_document(copy: AutoBccCopy, *, account_id: str, conversation_id: str, message_id: str,
                   contact_id: str, user_id: str, is_auto_bcc: Callable[[str], bool]) -> Message:
    """The outbound message of the copy, ready to store (see the module doc), or NotStorable.

    `is_auto_bcc(address)` tells our own addresses, which are not logged as Cc/Bcc.
    """
    check_not_bulk(copy, is_auto_bcc)
    to, cc, bcc = logged_recipients(copy, is_auto_bcc)
    msg = Message(
        direction="outbound", source="auto_bcc", contactId=contact_id, userId=user_id,
        from_=copy.sender.email, to=to, cc=cc, bcc=bcc,
        subject=copy.subject[:MAX_SUBJECT_CHARS], text=copy.text, html=copy.html, snippet=copy.snippet,
        sentAt=copy.sent_at,
        rfc822MessageId=copy.message_id if copy.message_id.startswith("<") and len(copy.message_id) <= MAX_ID_CHARS
        else None,
        inReplyTo=copy.in_reply_to if copy.in_reply_to and len(copy.in_reply_to) <= MAX_ID_CHARS else None,
        references=[r for r in copy.references if len(r) <= MAX_ID_CHARS][-MAX_REFERENCES:],
        isForward=copy.is_forward, attachments=[dict(a) for a in copy.attachments],
        truncated=len(copy.subject) > MAX_SUBJECT_CHARS,
    )
    fitted = fit_message(msg.to_doc(), paths.message_path(account_id, conversation_id, message_id))
    if fitted.doc is None:
        raise NotStorable("the copy's headers alone exceed what one message can hold")
    doc = Message.from_doc(fitted.doc)
    doc.truncated = msg.truncated or fitted.truncated
    return doc
