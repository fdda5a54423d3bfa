"""Which new messages the sync passes over from their history labels (shared/sync/categories.py)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from shared.sync.categories import (
    DEFAULT_SKIP,
    in_skipped_category,
    mailbox_skips,
    parse_skip_categories,
    skip_categories_from,
)


def snapshot(data: dict[str, Any] | None) -> Any:
    return SimpleNamespace(exists=data is not None, to_dict=lambda: data)


def test_by_default_promotions_social_and_forums_are_skipped() -> None:
    assert DEFAULT_SKIP == {"CATEGORY_PROMOTIONS", "CATEGORY_SOCIAL", "CATEGORY_FORUMS"}
    assert skip_categories_from(snapshot(None)) == DEFAULT_SKIP
    assert skip_categories_from(snapshot({"blocklist": ["x.example"]})) == DEFAULT_SKIP


def test_skip_categories_take_names_or_label_ids_in_any_case() -> None:
    assert parse_skip_categories(["Promotions", "category_social", "CATEGORY_UPDATES"]) == {
        "CATEGORY_PROMOTIONS", "CATEGORY_SOCIAL", "CATEGORY_UPDATES"}


def test_an_empty_list_skips_no_category() -> None:
    assert skip_categories_from(snapshot({"skipCategories": []})) == frozenset()


def test_unknown_entries_are_ignored_and_a_non_list_means_the_default() -> None:
    assert parse_skip_categories(["Promotions", "Newsletters", 7]) == {"CATEGORY_PROMOTIONS"}
    assert parse_skip_categories("Promotions") == DEFAULT_SKIP


def test_a_mailbox_in_several_accounts_skips_only_what_all_of_them_skip() -> None:
    skips = mailbox_skips({"acme": DEFAULT_SKIP, "globex": frozenset({"CATEGORY_PROMOTIONS"})})
    assert skips == {"CATEGORY_PROMOTIONS"}
    assert mailbox_skips({}) == frozenset()


def test_a_history_record_without_label_ids_is_never_guessed_skippable() -> None:
    assert not in_skipped_category(None, DEFAULT_SKIP)
    assert in_skipped_category(frozenset({"UNREAD", "CATEGORY_SOCIAL", "INBOX"}), DEFAULT_SKIP)
    assert not in_skipped_category(frozenset({"UNREAD", "CATEGORY_UPDATES", "INBOX"}), DEFAULT_SKIP)
