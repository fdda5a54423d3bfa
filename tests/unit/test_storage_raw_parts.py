"""R32: attachment bytes come out of one raw message, numbered as Gmail numbers parts."""

from __future__ import annotations

from email.message import EmailMessage

from shared.storage.raw_parts import wanted_parts
from simulator.mime import parse


def _mail(parts: int) -> bytes:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = "carla@client.test", "rep@gmail.test", "files"
    m.set_content("body")
    m.add_alternative("<p>body</p>", subtype="html")
    for i in range(parts):
        m.add_attachment(bytes([i % 256]) * (1000 + i), maintype="application", subtype="octet-stream",
                         filename=f"f{i}.bin")
    return m.as_bytes()


def _gmail_part_ids(raw: bytes) -> dict[str, bytes]:
    """What Gmail (the simulator's faithful parser) calls each attachment part, with its bytes."""
    return {a.part_id: a.data for a in parse(raw, "k").attachments.values()}


def test_r32_every_attachment_is_found_under_gmails_part_id_with_its_bytes():
    raw = _mail(5)
    expected = _gmail_part_ids(raw)
    assert len(expected) == 5
    assert dict(wanted_parts(raw, set(expected))) == expected


def test_r32_only_the_wanted_parts_are_decoded():
    raw = _mail(3)
    first = sorted(_gmail_part_ids(raw))[0]
    assert [pid for pid, _ in wanted_parts(raw, {first})] == [first]
    assert list(wanted_parts(raw, set())) == []


def test_r32_hundreds_of_parts_come_out_of_one_raw_message():
    raw = _mail(500)
    expected = _gmail_part_ids(raw)
    assert dict(wanted_parts(raw, set(expected))) == expected
