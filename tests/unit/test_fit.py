"""R22: byte budgets (shared/core/budget.py) and fitting a message document (shared/crm/fit.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.core.budget import FIRESTORE_MAX_DOCUMENT_BYTES, clean_text, cut_utf8, document_size, utf8_len
from shared.crm.fit import MESSAGE_BUDGET, fit_message

PATH = "accounts/acme/conversations/carla/messages/gm_1"
CJK = "漢" * 300_000  # 900,000 bytes of UTF-8, 300,000 characters


def message(text: str | None = "hi", html: str | None = None, **extra: object) -> dict[str, object]:
    return {"direction": "inbound", "from": "carla@client.test", "to": ["rep@gmail.test"], "subject": "s",
            "text": text, "html": html, "sentAt": datetime.now(UTC), "truncated": False, "attachments": [], **extra}


def test_r22_cut_is_counted_in_bytes_at_a_character_boundary() -> None:
    assert cut_utf8("漢字", 5) == "漢" and cut_utf8("漢字", 6) == "漢字" and cut_utf8("漢字", 2) == ""
    assert cut_utf8("é😀", 4) == "é" and cut_utf8("abc", 10) == "abc"
    assert utf8_len(cut_utf8(CJK, 500_000)) == 499_998 and utf8_len(CJK) == 900_000


def test_r22_document_size_counts_utf8_bytes_names_and_values() -> None:
    assert document_size("c/d", {"a": "漢"}) == (2 + 2 + 16) + (2 + 4) + 32
    assert document_size("", {"n": 1, "b": True, "z": None, "l": ["ab", 2], "m": {"k": "v"}}) == \
        16 + (2 + 8) + (2 + 1) + (2 + 1) + (2 + 3 + 8) + (2 + 2 + 2) + 32


def test_r22_lone_surrogates_become_replacement_characters() -> None:
    assert clean_text("a\ud800b") == "a\ufffdb"
    fitted = fit_message(message(text="x\udc80"), PATH)
    assert fitted.doc is not None and fitted.doc["text"] == "x\ufffd"
    assert fitted.doc["text"].encode("utf-8")


def test_r22_a_document_that_fits_is_stored_whole() -> None:
    fitted = fit_message(message(text="a" * 500_000), PATH)
    assert fitted.doc is not None and not fitted.truncated and fitted.doc["text"] == "a" * 500_000


def test_r22_cjk_text_and_html_are_cut_to_fit_and_marked() -> None:
    fitted = fit_message(message(text=CJK, html=f"<p>{CJK}</p>"), PATH)
    doc = fitted.doc
    assert doc is not None and fitted.truncated and doc["truncated"] is True
    assert document_size(PATH, doc) <= MESSAGE_BUDGET < FIRESTORE_MAX_DOCUMENT_BYTES
    assert CJK.startswith(doc["text"]) and len(doc["text"]) > 100_000
    assert f"<p>{CJK}".startswith(doc["html"]) and len(doc["html"]) > 100_000


def test_r22_a_short_text_is_kept_whole_when_only_html_is_huge() -> None:
    fitted = fit_message(message(text="short", html=CJK + CJK), PATH)
    assert fitted.doc is not None and fitted.doc["text"] == "short" and fitted.truncated


def test_r22_when_the_rest_alone_is_too_large_nothing_is_stored() -> None:
    attachments = [{"filename": "f" * 200 + str(i), "mimeType": "text/plain", "size": 1, "gmailAttachmentId": "x" * 40}
                   for i in range(5000)]
    fitted = fit_message(message(text=CJK, attachments=attachments), PATH)
    assert fitted.doc is None and fitted.reason == "too_large"
