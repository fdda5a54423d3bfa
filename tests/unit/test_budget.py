"""Specifications of shared.core.budget: Firestore's byte count and cuts at UTF-8 boundaries (R22, R23)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.core.budget import (
    DEFAULT_TARGET_BYTES,
    MAX_DOCUMENT_BYTES,
    cut_utf8,
    document_size,
    fit_strings,
    name_size,
    utf8_len,
    value_size,
)


def test_document_size_matches_firestores_worked_example() -> None:
    # https://cloud.google.com/firestore/docs/storage-size: users/jeff/tasks/my_task_id with four fields = 147.
    path = "users/jeff/tasks/my_task_id"
    assert name_size(path) == 44
    doc = {"type": "Personal", "done": False, "priority": 1, "description": "Learn Cloud Firestore"}
    assert document_size(path, doc) == 147


def test_value_sizes_follow_firestores_table() -> None:
    assert value_size(None) == 1
    assert value_size(True) == 1
    assert value_size(3) == 8
    assert value_size(2.5) == 8
    assert value_size(datetime(2024, 1, 1, tzinfo=UTC)) == 8
    assert value_size(b"abc") == 3
    assert value_size("é") == 3  # two UTF-8 bytes + 1
    assert value_size(["a", "bc"]) == 2 + 3
    assert value_size({"a": 1, "b": {"c": "d"}}) == (2 + 8) + (2 + (2 + 2))


def test_strings_are_counted_in_utf8_bytes_not_characters() -> None:
    assert utf8_len("a") == 1
    assert utf8_len("日") == 3
    assert utf8_len("😀") == 4
    assert document_size("c/d", {"t": "😀" * 1000}) == document_size("c/d", {"t": "a" * 4000})


@pytest.mark.parametrize("text", ["😀" * 50, "日本語テキスト" * 20, "aé日😀" * 30, "plain ascii" * 10])
def test_cut_never_splits_a_character(text: str) -> None:
    for limit in range(0, utf8_len(text) + 5):
        cut = cut_utf8(text, limit)
        assert utf8_len(cut) <= limit
        assert text.startswith(cut)
        if len(cut) < len(text):  # the next character would not have fitted
            assert utf8_len(text[: len(cut) + 1]) > limit


def test_cut_keeps_a_string_that_fits() -> None:
    assert cut_utf8("hello", 5) == "hello"
    assert cut_utf8("😀😀", 8) == "😀😀"
    assert cut_utf8("😀😀", 7) == "😀"
    assert cut_utf8("😀", 3) == ""
    assert cut_utf8("anything", 0) == ""


def test_cut_does_not_raise_on_lone_surrogates() -> None:
    assert cut_utf8("a\ud800b", 4) == "a\ud800"


def test_fit_leaves_a_small_document_untouched() -> None:
    doc = {"text": "hi", "html": "<p>hi</p>", "subject": "s"}
    assert fit_strings("a/b", doc, ["text", "html"]) == (doc, False)


def test_fit_cuts_150000_emoji_text_and_html_under_the_target() -> None:
    path = "accounts/a1/conversations/c1/messages/gm_123"
    doc = {"text": "😀" * 150_000, "html": "<p>" + "😀" * 150_000 + "</p>", "subject": "big", "to": ["x@y.test"]}
    fitted, truncated = fit_strings(path, doc, ["text", "html"])
    assert truncated
    assert document_size(path, fitted) <= DEFAULT_TARGET_BYTES < MAX_DOCUMENT_BYTES
    assert doc["text"].startswith(fitted["text"]) and doc["html"].startswith(fitted["html"])
    assert fitted["subject"] == "big" and fitted["to"] == ["x@y.test"]
    # the two bodies share the room: neither is emptied for the other
    assert utf8_len(fitted["text"]) > 400_000 and utf8_len(fitted["html"]) > 400_000


def test_fit_keeps_a_short_field_whole_and_gives_the_rest_to_the_long_one() -> None:
    path = "m/x"
    doc = {"text": "short text", "html": "日" * 400_000}
    fitted, truncated = fit_strings(path, doc, ["text", "html"], target=100_000)
    assert truncated
    assert fitted["text"] == "short text"
    assert document_size(path, fitted) <= 100_000
    assert document_size(path, fitted) > 100_000 - 3  # within one character of the target


def test_fit_empties_cuttable_fields_when_the_rest_alone_is_too_big() -> None:
    doc = {"text": "t" * 10, "keep": "k" * 500}
    fitted, truncated = fit_strings("m/x", doc, ["text"], target=100)
    assert truncated and fitted["text"] == "" and fitted["keep"] == doc["keep"]


def test_fit_ignores_cuttable_names_that_are_not_strings() -> None:
    doc = {"text": None, "html": "h" * 1000}
    fitted, truncated = fit_strings("m/x", doc, ["text", "html"], target=500)
    assert truncated and fitted["text"] is None and document_size("m/x", fitted) <= 500
