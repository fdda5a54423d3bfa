"""Steps of the chaos runs (tests/e2e/test_chaos_sync.py and `make chaos`, scripts/chaos.py): the mail mix of a
team's reps and their contacts, and the tally of what the CRM logged.

A CRM account is a team (0.3): a share of the mail reaches two of its reps at
once (To one, Cc the other; or a rep writing from Gmail with the colleague in
Cc), and each mailbox gets its own copy, as Gmail delivers it. So the tally is
per account and RFC 822 Message-ID, not per Gmail message id: every expected
message has exactly one document in its account (R25), in the right
conversation, and that document's `mailboxIds` lists every mailbox it reached.

One exception, docs/SYNC_RULES.md (R25): a colleague's copy of a rep's own send
(Alice writes to Carla from Gmail, Carol in Cc) is not Carol's mail; her pass
only joins the record Alice's pass logged, so when her pass runs first her
mailbox is not listed. That copy is optional here and counted apart.
"""

from __future__ import annotations

import random
import re
import threading
from dataclasses import dataclass, field
from email.utils import make_msgid
from typing import Any

from tests.e2e.sync_steps import mail

SPAM_SHARE = 0.1  # from strangers: must not be logged
FROM_GMAIL_SHARE = 0.15  # the rep writes to a contact from Gmail itself
SHARED_SHARE = 1 / 3  # of every kind: the colleague is in Cc too

_MESSAGE_ID = re.compile(r"<[^<>\s]+>")

Key = tuple[str, str]  # (accountId, Message-ID)


def message_id_of(value: Any) -> str | None:
    """A stored `rfc822MessageId` as one `<id>` token (however the header was folded or commented), or None."""
    found = _MESSAGE_ID.search(str(value or ""))
    return found.group(0) if found else None


@dataclass(frozen=True)
class Expected:
    conversation: str  # the contact's id, which is its conversation's
    mailboxes: frozenset[str]  # the sync mailbox ids its document must list (every rep's Gmail it reached)
    optional: frozenset[str] = frozenset()  # reached, and listed only if logged first (a colleague's copy)


@dataclass
class Ledger:
    """What was delivered (thread-safe): where the CRM must log each message, and what it must not log."""

    expected: dict[Key, Expected] = field(default_factory=dict)
    strangers: set[Key] = field(default_factory=set)
    copies: int = 0  # mailbox copies: a message that reached two reps counts twice
    shared: int = 0  # messages that reached two reps
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def messages(self) -> int:
        return len(self.expected) + len(self.strangers)

    def record(self, account: str, message_id: str, reached: list[str], conversation: str | None,
               optional: list[str] | None = None) -> None:
        from shared.crm import paths

        key = (account, message_id)
        with self._lock:
            self.copies += len(reached) + len(optional or [])
            self.shared += len(reached) + len(optional or []) > 1
            if conversation is None:
                self.strangers.add(key)
            else:
                self.expected[key] = Expected(conversation, frozenset(paths.mailbox_id(a) for a in reached),
                                              frozenset(paths.mailbox_id(a) for a in optional or []))


def send_one(sim: Any, ledger: Ledger, rng: random.Random, account: str, rep: str, colleague: str | None,
             contacts: list[str], tag: str) -> None:
    """One mail of the mix between `rep` (and, for a share, `colleague`, both reps of `account`) and the
    account's contacts (`contacts[k]` is contact `c{k}`): from a stranger, from the rep in Gmail, or from a
    contact. Mail from outside is delivered to each mailbox it names; Gmail itself delivers a rep's own
    send to the colleague in Cc (an optional mailbox of its document, see above)."""
    k = rng.randrange(len(contacts))
    kind = rng.random()
    cc = [colleague] if colleague is not None and rng.random() < SHARED_SHARE else []
    mid = make_msgid(domain="mail.test")
    if kind < SPAM_SHARE:
        raw = mail(f"spam.{tag}@nowhere.test", rep, f"offer {tag}", cc=cc, message_id=mid)
        for box in [rep, *cc]:
            sim.deliver(box, raw)
        ledger.record(account, mid, [rep, *cc], None)
        return
    if kind < SPAM_SHARE + FROM_GMAIL_SHARE:
        sim.send_as_user(rep, mail(rep, contacts[k], f"{rep} to c{k} {tag}", cc=cc, message_id=mid))
        ledger.record(account, mid, [rep], f"c{k}", optional=cc)
        return
    raw = mail(contacts[k], rep, f"c{k} to {rep} {tag}", cc=cc, message_id=mid)
    for box in [rep, *cc]:
        sim.deliver(box, raw)
    ledger.record(account, mid, [rep, *cc], f"c{k}")


@dataclass(frozen=True)
class Tally:
    lost: int  # expected, no document in its account
    duplicated: int  # more than one document in one account
    unexpected: int  # a document nobody expected (a stranger's mail, or another account's)
    wrong: int  # its one document is in another conversation
    unlisted: int  # its one document's mailboxIds misses a mailbox it reached, or names one it did not
    colleague_copies: int  # colleagues' copies of a rep's own send (optional mailboxes)
    colleague_unlisted: int  # ... whose pass ran before the rep's, so not listed (informational, R25)

    def clean(self) -> bool:
        return not (self.lost or self.duplicated or self.unexpected or self.wrong or self.unlisted)

    def __str__(self) -> str:
        return (f"lost {self.lost}, duplicated {self.duplicated}, unexpected {self.unexpected}, "
                f"wrong conversation {self.wrong}, mailboxes unlisted {self.unlisted} (colleague's copy of a rep's "
                f"send not listed: {self.colleague_unlisted} of {self.colleague_copies})")


def tally(db: Any, ledger: Ledger) -> Tally:
    """Every message document of every account against the ledger, by (account, Message-ID)."""
    seen: dict[Key, list[tuple[str, frozenset[str]]]] = {}
    for snap in db.collection_group("messages").select(["rfc822MessageId", "mailboxIds", "mailboxId"]).stream():
        parts = snap.reference.path.split("/")  # accounts/<a>/conversations/<c>/messages/<id>
        if len(parts) != 6 or parts[0] != "accounts":
            continue
        data = snap.to_dict() or {}
        mid = message_id_of(data.get("rfc822MessageId")) or snap.reference.path  # none: nobody expects it
        boxes = frozenset(data.get("mailboxIds") or [data.get("mailboxId")])
        seen.setdefault((parts[1], mid), []).append((parts[3], boxes))
    expected = ledger.expected
    single = {key: docs[0] for key, docs in seen.items() if len(docs) == 1 and key in expected}
    return Tally(
        lost=len(expected.keys() - seen.keys()),
        duplicated=sum(1 for docs in seen.values() if len(docs) > 1),
        unexpected=len(seen.keys() - expected.keys()),
        wrong=sum(1 for key, (conv, _) in single.items() if conv != expected[key].conversation),
        unlisted=sum(1 for key, (_, boxes) in single.items()
                     if not expected[key].mailboxes <= boxes <= expected[key].mailboxes | expected[key].optional),
        colleague_copies=sum(len(e.optional) for e in expected.values()),
        colleague_unlisted=sum(len(expected[key].optional - boxes) for key, (_, boxes) in single.items()),
    )
