"""R33's pure parts: the CRM's change as Gmail label edits, and which grants lack gmail.modify."""

from __future__ import annotations

from shared.connect.scopes import missing_from
from shared.messages.modify import FlagChange
from shared.messages.targets import can_modify

MODIFY = "https://www.googleapis.com/auth/gmail.modify"
READONLY = "https://www.googleapis.com/auth/gmail.readonly"
SEND = "https://www.googleapis.com/auth/gmail.send"
FULL = "https://mail.google.com/"


def test_r33_read_and_star_are_one_label_edit():
    assert FlagChange(read=True, starred=True).labels() == (["STARRED"], ["UNREAD"])
    assert FlagChange(read=False, starred=False).labels() == (["UNREAD"], ["STARRED"])


def test_r33_trash_alone_edits_no_label_and_only_given_fields_are_written():
    assert FlagChange(trashed=True).labels() == ([], [])
    assert FlagChange(trashed=False).fields() == {"trashed": False}


def test_r33_a_pre_03_grant_misses_gmail_modify_and_a_03_grant_misses_nothing():
    assert missing_from([READONLY, SEND]) == [MODIFY]
    assert missing_from([MODIFY, SEND]) == []
    assert missing_from([FULL]) == []


def test_r33_only_modify_or_full_mail_may_change_messages():
    assert not can_modify([READONLY, SEND])
    assert can_modify([MODIFY, SEND]) and can_modify([FULL])
    assert not can_modify(None)
