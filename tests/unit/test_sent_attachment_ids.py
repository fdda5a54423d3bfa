"""Specs of how the sync gives a CRM-sent message its attachments' Gmail ids (R20, shared/attachments/sent_ids.py).

send_email logs `{filename, mimeType, size}` per attachment; the sync, having
fetched the sent message, fills in `gmailAttachmentId` by position, confirmed
by filename, and only where it is missing.
"""

from __future__ import annotations

from shared.attachments.sent_ids import fill_ids, is_pending
from shared.gmail.mime_parse import AttachmentMeta


def logged(*names: str) -> list[dict[str, object]]:
    return [{"filename": n, "mimeType": "application/pdf", "size": 10 + i} for i, n in enumerate(names)]


def fetched(*pairs: tuple[str, str | None]) -> list[AttachmentMeta]:
    return [AttachmentMeta(filename=n, mimeType="application/pdf", size=1, gmailAttachmentId=i) for n, i in pairs]


def test_r20_ids_are_filled_in_by_position_and_nothing_else_changes() -> None:
    stored = logged("offer.pdf", "chart.png")
    out = fill_ids(stored, fetched(("offer.pdf", "ANG1"), ("chart.png", "ANG2")))
    assert out == [{**stored[0], "gmailAttachmentId": "ANG1"}, {**stored[1], "gmailAttachmentId": "ANG2"}]
    assert "gmailAttachmentId" not in stored[0]  # the stored list is not mutated


def test_r20_filenames_match_as_the_mime_carries_them() -> None:
    # mime_build sends the last path component without control characters; Unicode compares normalized
    stored = logged("C:\\tmp\\Preisübersicht 東京.pdf", "Cafe\u0301.txt")
    out = fill_ids(stored, fetched(("Preisübersicht 東京.pdf", "ANG1"), ("Caf\u00e9.txt", "ANG2")))
    assert out is not None and [a["gmailAttachmentId"] for a in out] == ["ANG1", "ANG2"]


def test_r20_an_entry_whose_part_has_another_name_keeps_no_id() -> None:
    out = fill_ids(logged("offer.pdf", "chart.png"), fetched(("offer.pdf", "ANG1"), ("other.png", "ANG2")))
    assert out is not None and out[0]["gmailAttachmentId"] == "ANG1" and is_pending(out[1])


def test_r20_ids_already_there_are_never_overwritten_and_nothing_to_fill_writes_nothing() -> None:
    stored = [{**a, "gmailAttachmentId": "OLD"} for a in logged("offer.pdf")]
    assert fill_ids(stored, fetched(("offer.pdf", "NEW"))) is None
    assert fill_ids(logged("offer.pdf"), fetched(("offer.pdf", None))) is None  # Gmail gave no id (inline data)
    assert fill_ids(logged("offer.pdf", "b.pdf"), fetched(("offer.pdf", "ANG1"))) == [  # fewer parts than entries
        {**logged("offer.pdf")[0], "gmailAttachmentId": "ANG1"}, logged("offer.pdf", "b.pdf")[1]]


def test_r20_filling_twice_is_idempotent() -> None:
    parts = fetched(("offer.pdf", "ANG1"))
    once = fill_ids(logged("offer.pdf"), parts)
    assert once is not None and fill_ids(once, parts) is None


def test_r20_a_stored_list_of_unexpected_shape_is_left_alone() -> None:
    assert fill_ids(["offer.pdf"], fetched(("offer.pdf", "ANG1"))) is None
