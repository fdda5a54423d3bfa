"""R29: forwards are read from the subject prefix and the headers, never from the body (shared/gmail/forwards.py)."""

from __future__ import annotations

import pytest

from shared.gmail.forwards import is_forward, is_forward_subject, leading_prefix

NO_HEADERS: dict[str, str] = {}


@pytest.mark.parametrize("subject", [
    "Fwd: Angebot", "FWD: Angebot", "Fw: Angebot", "FW: Angebot",  # English: Gmail, Outlook, Apple Mail
    "WG: Angebot",  # German
    "TR: Devis", "TR : Devis",  # French (with the French space before the colon)
    "RV: Presupuesto",  # Spanish
    "ENC: Orçamento",  # Portuguese
    "I: Preventivo",  # Italian
    "VS: Tilbud",  # Danish, Norwegian
    "VB: Offert",  # Swedish
    "Doorst: Offerte",  # Dutch
    "PD: Oferta",  # Polish
    "转发\uff1a报价", "転送: 見積もり",  # Chinese (full-width colon), Japanese
    "Fwd[2]: Angebot", "FW(3): Angebot",  # counters
    "[EXTERNAL] FW: Angebot",  # a tag in front
    "[Fwd: Angebot]",  # the old bracketed form
    "  fwd:Angebot",
])
def test_r29_forward_prefixes_of_the_common_mail_clients_languages(subject: str) -> None:
    assert is_forward_subject(subject)


@pytest.mark.parametrize("subject", [
    "Re: Fwd: Angebot",  # a reply in a thread that began with a forward: the first prefix decides
    "AW: WG: Angebot", "SV: VS: Tilbud", "RE: TR: Devis", "Antw: Doorst: Offerte",
    "Forward planning", "Fwd planning: Q3",  # words, not prefixes
    "Tree: a subject with a colon", "Info: Treffen", "Meeting: tomorrow",
    "", "Angebot",
])
def test_r29_replies_and_plain_subjects_are_not_forwards(subject: str) -> None:
    assert not is_forward_subject(subject)


def test_r29_the_first_prefix_says_reply_or_forward() -> None:
    assert leading_prefix("AW: Angebot") == "reply"
    assert leading_prefix("WG: AW: Angebot") == "forward"
    assert leading_prefix("Angebot") is None


def test_r29_thunderbirds_forward_header_marks_a_forward() -> None:
    assert is_forward("Angebot", {"x-forwarded-message-id": "<a@b>"}, False)


def test_r29_a_redirected_message_is_a_forward() -> None:
    assert is_forward("Angebot", {"resent-from": "rep@gmail.test"}, False)


def test_r29_an_attached_message_is_a_forward_unless_the_subject_says_reply() -> None:
    assert is_forward("have a look", NO_HEADERS, True)
    assert not is_forward("Re: have a look", NO_HEADERS, True)


def test_r29_a_plain_reply_is_not_a_forward() -> None:
    assert not is_forward("Re: Angebot", NO_HEADERS, False)
