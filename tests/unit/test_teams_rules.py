"""Rules of 0.3 for teams, as pure functions: one record per Message-ID (R25), a logged thread stays whole (R27),
visibility per rep (R31). The end-to-end tests with two connected reps are in tests/e2e/test_sync_teams.py."""

from __future__ import annotations

from typing import Any

from shared.crm import paths, visibility
from shared.sync.classify import classify
from tests.unit.test_classify import REP, contact, msg, only, view

DOC: dict[str, Any] = {"subject": "Quote", "text": "body", "html": "<p>body</p>", "snippet": "body",
                       "attachments": [{"filename": "a.pdf"}], "truncated": True, "from": "c@x.com"}


def test_r25_the_message_id_names_the_document_whatever_the_mailbox() -> None:
    assert paths.message_doc_id("<a1@x.com>", "g1") == paths.message_doc_id(" <a1@x.com>\r\n", "g2")
    assert paths.message_doc_id("<a1@x.com>", "g1").startswith("rfc_")
    assert paths.message_doc_id("<a1@x.com>", "g1") != paths.message_doc_id("<a2@x.com>", "g1")


def test_r25_mail_without_a_message_id_keeps_its_mailbox_id() -> None:
    assert paths.message_doc_id(None, "g1") == "gm_g1" == paths.message_doc_id("no brackets", "g1")


def test_r25_the_document_id_gives_its_message_id_back_for_r10b() -> None:
    assert paths.rfc822_of_doc_id(paths.message_doc_id("<a/1+b@x.com>", "g1")) == "<a/1+b@x.com>"
    assert paths.rfc822_of_doc_id("gm_g1") is None and paths.rfc822_of_doc_id("rfc_!!") is None


def test_r25_an_auto_bcc_copy_is_the_same_record_as_the_synced_mail() -> None:
    assert paths.auto_bcc_message_doc_id("<a1@x.com>") == paths.message_doc_id("<a1@x.com>", "g1")
    assert paths.auto_bcc_message_doc_id("sha256:00ff").startswith("ab_")


def test_r27_the_contacts_colleague_replying_all_in_a_logged_thread_is_logged_there() -> None:
    m = msg("colleague@x.com", to=[REP], cc=["c@x.com"], subject="Re: offer")
    got = only(classify(m, REP, [view(thread_conversation="k1")]).deliveries)
    assert (got.conversation_id, got.contact.id, got.direction) == ("k1", "k1", "inbound")


def test_r27_the_reps_answer_to_only_that_colleague_is_logged_there() -> None:
    m = msg(REP, to=["colleague@x.com"], labels=("SENT",), subject="Re: offer")
    got = only(classify(m, REP, [view(thread_conversation="k1")]).deliveries)
    assert (got.conversation_id, got.contact.id, got.is_forward) == ("k1", "k1", False)


def test_r27_a_stranger_outside_a_logged_thread_still_does_not_sync() -> None:
    assert classify(msg("colleague@x.com"), REP, [view()]).skips[0].reason == "unknown_sender"


def test_r27_internal_and_blocklisted_mail_of_a_logged_thread_still_never_syncs() -> None:
    internal = classify(msg("boss@corp.com"), REP, [view(users={"boss@corp.com"}, thread_conversation="k1")])
    blocked = classify(msg("spam@bad.com"), REP, [view(thread_conversation="k1", blocklist=["bad.com"])])
    assert [s.reason for s in internal.skips + blocked.skips] == ["internal", "blocklisted"]


def test_r27_a_contact_in_the_thread_is_still_its_own_primary_contact() -> None:
    m = msg("dora@x.com", subject="Re: offer")
    got = only(classify(m, REP, [view(contacts=[contact("dora", "dora@x.com")], thread_conversation="k1")]).deliveries)
    assert (got.conversation_id, got.contact.id) == ("k1", "dora")


def test_r31_shared_keeps_everything() -> None:
    assert visibility.apply(DOC, "shared") == {**DOC, "visibility": "shared"}


def test_r31_subject_keeps_participants_time_and_subject_only() -> None:
    out = visibility.apply(DOC, "subject")
    kept = (out["subject"], out["text"], out["html"], out["snippet"], out["attachments"])
    assert kept == ("Quote", None, None, "", [])
    assert (out["from"], out["visibility"], out["truncated"]) == ("c@x.com", "subject", False)


def test_r31_metadata_keeps_no_subject_either() -> None:
    out = visibility.apply(DOC, "metadata")
    assert (out["subject"], out["text"], out["from"], out["visibility"]) == ("", None, "c@x.com", "metadata")


def test_r31_unknown_or_missing_levels_are_the_default() -> None:
    assert [visibility.user_level(u) for u in (None, {}, {"emailVisibility": "SUBJECT"}, {"emailVisibility": 3},
                                               {"emailVisibility": "private"})] == [
        "shared", "shared", "subject", "shared", "shared"]


def test_r31_several_reps_saw_it_the_most_open_level_wins() -> None:
    assert visibility.most_open(["metadata", "subject"]) == "subject"
    assert visibility.most_open(["metadata", "shared", "subject"]) == "shared"


def test_r31_a_more_open_copy_upgrades_a_less_open_never_downgrades() -> None:
    closed, open_ = visibility.apply(DOC, "metadata"), visibility.apply(DOC, "shared")
    more = visibility.upgrade(closed, open_)
    assert (more["text"], more["subject"], more["visibility"]) == ("body", "Quote", "shared")
    assert visibility.upgrade(open_, closed) == {} and visibility.upgrade(closed, closed) == {}
