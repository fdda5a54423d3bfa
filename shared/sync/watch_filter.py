"""Which labels a mailbox's Gmail watch excludes from notifications (0.3): the categories every linked
account skips.

Why: under Gmail's 2026 prices each notification costs a history.list (2
units) and a gmail_push invocation, and a rep's day holds more newsletters,
social mail and their read/star/trash changes than contacts' mail. A watch
made with `labelIds` and `labelFilterBehavior: exclude` is not notified of
changes touching those labels, so that mail wakes nobody.

What it costs: a change on mail in an excluded category notifies nothing:
- a contact's reply filed under Promotions in an already logged thread (the
  one case the sync logs such mail, shared/sync/categories.py) and the
  read/star/trash changes of logged mail in those tabs (R19) are found by
  the next pass, i.e. the mailbox's next notification or its sweep (a
  quiet mailbox is swept every half hour), not within seconds;
- an account that stops skipping a category (`settings/emailSync
  .skipCategories`) gets that mail notified from the watch's next renewal
  (at most 5 days; the mail itself is fetched by every pass meanwhile).
History itself is unfiltered: a pass still reads every record after its cursor.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from shared.core.clients import firestore_client
from shared.crm.mailboxes import links_for_mailbox
from shared.crm.paths import settings_ref
from shared.sync.categories import mailbox_skips, skip_categories_from


def excluded_labels(per_account_skips: Mapping[str, frozenset[str]]) -> frozenset[str]:
    """The labels to exclude, from each linked account's skipped categories (the mailbox's skips)."""
    return mailbox_skips(per_account_skips)


def read_excluded_labels(mailbox_id: str, also: Iterable[str] = ()) -> frozenset[str]:
    """The same, read: the mailbox's linked accounts plus `also` (an account linking it right now); two
    round trips (links, then their settings), made only with a watch call (connect, renewal)."""
    accounts = sorted({ln.accountId for ln in links_for_mailbox(mailbox_id)} | set(also))
    if not accounts:
        return frozenset()
    snaps = {s.reference.path: s for s in firestore_client().get_all([settings_ref(a) for a in accounts])}
    return excluded_labels({a: skip_categories_from(snaps.get(settings_ref(a).path)) for a in accounts})
