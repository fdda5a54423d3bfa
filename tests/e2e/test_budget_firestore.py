"""shared.core.budget counts a document the way Firestore (the emulator) does: the limit is exact."""

from __future__ import annotations

from typing import Any

import pytest

from shared.core.budget import MAX_DOCUMENT_BYTES, document_size

PATH = "accounts/a1/conversations/c1/messages/gm_budget"


def _doc_of_size(size: int, char: str) -> dict[str, Any]:
    doc: dict[str, Any] = {"subject": "budget", "n": 1, "text": "", "pad": ""}
    fixed = document_size(PATH, doc)
    doc["text"] = char * ((size - fixed) // len(char.encode()))
    # pad to the exact byte with ASCII
    doc["pad"] = "p" * max(0, size - document_size(PATH, doc))
    assert document_size(PATH, doc) == size
    return doc


@pytest.mark.parametrize("char", ["a", "😀"])
def test_r22_a_document_of_exactly_the_limit_is_accepted(clean: Any, firestore_db: Any, char: str) -> None:
    firestore_db.document(PATH).set(_doc_of_size(MAX_DOCUMENT_BYTES, char))
    assert firestore_db.document(PATH).get().exists


@pytest.mark.parametrize("char", ["a", "😀"])
def test_r22_one_byte_over_the_limit_is_refused(clean: Any, firestore_db: Any, char: str) -> None:
    from google.api_core.exceptions import InvalidArgument

    with pytest.raises(InvalidArgument, match="maximum entity size"):
        firestore_db.document(PATH).set(_doc_of_size(MAX_DOCUMENT_BYTES + 1, char))
