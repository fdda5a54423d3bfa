"""Which new messages the sync passes over from their history labels alone, without a messages.get (0.3).

Why: a messages.get costs 20 quota units in Gmail's 2026 model, and most of a
rep's mail is newsletters and social notifications that the rules never log.
Gmail's history records say which tab a message landed in (`labelIds`), so
mail in a category the account skips is passed over before it is fetched:

- Spam, drafts, chats (and Trash) are never fetched (shared/gmail/fetch.py);
- a category in `accounts/{a}/settings/emailSync.skipCategories` (default
  Promotions, Social and Forums; `[]` skips none) is passed over unless its
  thread is already logged (a reply in a logged conversation that Gmail filed
  under Promotions is still the conversation's);
- a mailbox linked in several accounts skips only what every one of them
  skips: one account that wants Updates gets them fetched;
- a record without `labelIds` is fetched, never guessed (Google documents
  history messages as "typically" carrying only id and threadId).

A skipped thread's thread map is read in one round trip per history page,
only when the page has such messages. A message that arrives in a skipped
category in the same pass as the first logged message of its thread is
passed over (its thread was not logged yet when the page was read).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

CATEGORIES = {
    "promotions": "CATEGORY_PROMOTIONS",
    "social": "CATEGORY_SOCIAL",
    "updates": "CATEGORY_UPDATES",
    "forums": "CATEGORY_FORUMS",
    "primary": "CATEGORY_PERSONAL",
    "personal": "CATEGORY_PERSONAL",
}
DEFAULT_SKIP = frozenset({"CATEGORY_PROMOTIONS", "CATEGORY_SOCIAL", "CATEGORY_FORUMS"})


def parse_skip_categories(value: Any) -> frozenset[str]:
    """`skipCategories` as label ids: names ("Promotions") or ids ("CATEGORY_PROMOTIONS"), any case.

    Missing (None): the default. Not a list: the default. Unknown entries are
    ignored rather than guessed at (the CRM's settings screen offers the five tabs).
    """
    if not isinstance(value, list):
        return DEFAULT_SKIP
    out: set[str] = set()
    for item in value:
        if not isinstance(item, str):
            continue
        key = item.strip().lower().removeprefix("category_")
        if key in CATEGORIES:
            out.add(CATEGORIES[key])
    return frozenset(out)


def skip_categories_from(snapshot: Any) -> frozenset[str]:
    """The categories one account skips, from its `settings/emailSync` snapshot (missing: the default)."""
    if snapshot is None or not snapshot.exists:
        return DEFAULT_SKIP
    return parse_skip_categories((snapshot.to_dict() or {}).get("skipCategories"))


def mailbox_skips(per_account: Mapping[str, frozenset[str]]) -> frozenset[str]:
    """What a mailbox passes over: the categories every linked account skips."""
    sets = list(per_account.values())
    if not sets:
        return frozenset()
    out = sets[0]
    for s in sets[1:]:
        out &= s
    return out


def in_skipped_category(label_ids: Iterable[str] | None, skips: frozenset[str]) -> bool:
    """True when the history record's labels put the message in a skipped category; False without labels."""
    return label_ids is not None and not skips.isdisjoint(label_ids)
