"""The matching rules, one behaviour per test (R7, R8, R11-R14, Auto BCC)."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.core.models import ContactRef
from shared.crm.blocklist import Blocklist
from shared.gmail.mime_parse import Address, ParsedMessage
from shared.sync.classify import (
    AccountView,
    CrmSend,
    Delivery,
    build_message,
    classify,
    direction_of,
    is_forward,
    sent_at,
)

REP = "rep@gmail.test"


def msg(sender: str, to: list[str] = (REP,), cc: list[str] = (), bcc: list[str] = (),  # type: ignore[assignment]
        labels: tuple[str, ...] = ("INBOX",), subject: str = "hello", forwarded_part: bool = False) -> ParsedMessage:
    return ParsedMessage(
        gmail_id="g1", thread_id="t1", label_ids=frozenset(labels), internal_date_ms=1_700_000_000_000,
        sender=Address(sender), to=[Address(a) for a in to], cc=[Address(a) for a in cc],
        bcc=[Address(a) for a in bcc], subject=subject, rfc822_message_id="<m@x>", in_reply_to=None,
        references=[], text="hi", html=None, snippet="hi", has_attached_message=forwarded_part)


def contact(cid: str, email: str, assigned: tuple[str, ...] | None = None) -> ContactRef:
    return ContactRef(id=cid, email=email, createdAt=datetime(2024, 1, 1, tzinfo=UTC), assignedUserIds=assigned)


def view(account: str = "acc1", contacts: list[ContactRef] = (), users: set[str] = frozenset(),  # type: ignore[assignment]
         user_ids: tuple[str, ...] = ("u1",), auto_bcc: set[str] = frozenset(),  # type: ignore[assignment]
         thread_conversation: str | None = None, blocklist: list[str] | None = None) -> AccountView:
    return AccountView(account_id=account, user_ids=user_ids, contacts={c.email: c for c in contacts},
                       user_emails=frozenset(users), auto_bcc_addresses=frozenset(auto_bcc),
                       thread_conversation=thread_conversation, blocklist=Blocklist.parse(blocklist or []))


def only(decision_deliveries: list[Delivery]) -> Delivery:
    assert len(decision_deliveries) == 1, decision_deliveries
    return decision_deliveries[0]


def test_direction_sent_label_or_from_the_mailbox_is_outbound() -> None:
    assert direction_of(msg("c@x.com"), REP) == "inbound"
    assert direction_of(msg("c@x.com", labels=("SENT",)), REP) == "outbound"
    assert direction_of(msg("Rep@Gmail.test", to=["c@x.com"], labels=("INBOX",)), REP) == "outbound"


def test_r7_inbound_from_contact_goes_to_its_conversation() -> None:
    d = classify(msg("c@x.com"), REP, [view(contacts=[contact("k1", "c@x.com")])])
    got = only(d.deliveries)
    assert (got.direction, got.contact.id, got.conversation_id, got.user_id) == ("inbound", "k1", "k1", "u1")


def test_r7_rep_only_in_cc_still_syncs() -> None:
    d = classify(msg("c@x.com", to=["other@y.com"], cc=[REP]), REP, [view(contacts=[contact("k1", "c@x.com")])])
    assert only(d.deliveries).contact.id == "k1"


def test_r11_unknown_sender_is_skipped() -> None:
    d = classify(msg("stranger@x.com"), REP, [view(contacts=[contact("k1", "c@x.com")])])
    assert d.deliveries == [] and d.skips[0].reason == "unknown_sender"


def test_r11_inbound_from_a_colleague_is_internal_even_if_also_a_contact() -> None:
    d = classify(msg("boss@corp.com"), REP, [view(contacts=[contact("k1", "boss@corp.com")], users={"boss@corp.com"})])
    assert d.deliveries == [] and d.skips[0].reason == "internal"


def test_r11_outbound_to_colleagues_only_is_internal() -> None:
    d = classify(msg(REP, to=["boss@corp.com"], cc=["ops@corp.com"], labels=("SENT",)), REP,
                 [view(users={"boss@corp.com", "ops@corp.com"})])
    assert d.skips[0].reason == "internal"


def test_r11_outbound_to_colleague_and_contact_syncs_under_contact() -> None:
    d = classify(msg(REP, to=["boss@corp.com", "c@x.com"], labels=("SENT",)), REP,
                 [view(contacts=[contact("k1", "c@x.com")], users={"boss@corp.com"})])
    assert only(d.deliveries).contact.id == "k1"


def test_r11_outbound_to_unknown_recipient_is_skipped() -> None:
    d = classify(msg(REP, to=["stranger@x.com"], labels=("SENT",)), REP, [view()])
    assert d.deliveries == [] and d.skips[0].reason == "unknown_recipient"


def test_r8_reply_from_gmail_is_outbound_under_recipient() -> None:
    d = classify(msg(REP, to=["c@x.com"], labels=("SENT",), subject="Re: offer"), REP,
                 [view(contacts=[contact("k1", "c@x.com")])])
    got = only(d.deliveries)
    assert (got.direction, got.contact.id, got.is_forward) == ("outbound", "k1", False)


def test_r8_forward_by_subject_or_part_is_marked() -> None:
    assert is_forward(msg(REP, subject="Fwd: offer")) and is_forward(msg(REP, subject="FW: offer"))
    assert is_forward(msg(REP, subject="look", forwarded_part=True))
    assert not is_forward(msg(REP, subject="Re: forward planning"))
    d = classify(msg(REP, to=["c@x.com"], labels=("SENT",), subject="Fw: offer"), REP,
                 [view(contacts=[contact("k1", "c@x.com")])])
    assert only(d.deliveries).is_forward


def test_r12_primary_is_first_contact_in_to_then_cc_then_bcc() -> None:
    contacts = [contact("kb", "b@x.com"), contact("kc", "c@x.com"), contact("kd", "d@x.com")]
    m = msg(REP, to=["stranger@x.com", "c@x.com"], cc=["b@x.com"], bcc=["d@x.com"], labels=("SENT",))
    assert only(classify(m, REP, [view(contacts=contacts)]).deliveries).contact.id == "kc"
    m = msg(REP, to=["stranger@x.com"], cc=["zz@x.com", "b@x.com"], bcc=["d@x.com"], labels=("SENT",))
    assert only(classify(m, REP, [view(contacts=contacts)]).deliveries).contact.id == "kb"
    m = msg(REP, to=["stranger@x.com"], bcc=["d@x.com"], labels=("SENT",))
    assert only(classify(m, REP, [view(contacts=contacts)]).deliveries).contact.id == "kd"


def test_r12_cc_and_bcc_are_recorded_on_the_message() -> None:
    m = msg(REP, to=["c@x.com"], cc=["cc1@y.com"], bcc=["bcc1@y.com"], labels=("SENT",))
    d = only(classify(m, REP, [view(contacts=[contact("k1", "c@x.com")])]).deliveries)
    doc = build_message(m, d).to_doc()
    assert (doc["to"], doc["cc"], doc["bcc"], doc["from"]) == (["c@x.com"], ["cc1@y.com"], ["bcc1@y.com"], REP)
    assert doc["direction"] == "outbound" and doc["source"] == "gmail" and doc["contactId"] == "k1"
    assert doc["gmailMessageId"] == "g1" and doc["sentAt"] == datetime.fromtimestamp(1_700_000_000, tz=UTC)


def test_r14_delivers_to_every_linked_account_with_the_contact() -> None:
    views = [view("a1", [contact("k1", "c@x.com")]), view("a2", [contact("k2", "c@x.com")]), view("a3", [])]
    d = classify(msg("c@x.com"), REP, views)
    assert [(x.account_id, x.contact.id) for x in d.deliveries] == [("a1", "k1"), ("a2", "k2")]
    assert [(s.account_id, s.reason) for s in d.skips] == [("a3", "unknown_sender")]


def test_r14_assigned_contact_only_for_assigned_user() -> None:
    views = [view("a1", [contact("k1", "c@x.com", assigned=("u1",))], user_ids=("u1",)),
             view("a2", [contact("k2", "c@x.com", assigned=("someone-else",))], user_ids=("u2",))]
    d = classify(msg("c@x.com"), REP, views)
    assert [x.account_id for x in d.deliveries] == ["a1"]
    assert [(s.account_id, s.reason) for s in d.skips] == [("a2", "not_assigned")]


def test_r14_assignment_picks_the_assigned_one_of_several_linked_users() -> None:
    v = view("a1", [contact("k1", "c@x.com", assigned=("u2",))], user_ids=("u1", "u2"))
    assert only(classify(msg("c@x.com"), REP, [v]).deliveries).user_id == "u2"


def test_r26_inside_one_account_a_contact_assigned_to_a_colleague_is_still_logged() -> None:
    v = view("a1", [contact("k1", "c@x.com", assigned=("carol",))], user_ids=("alice",))
    got = only(classify(msg("c@x.com"), REP, [v]).deliveries)
    assert (got.account_id, got.user_id, got.assigned_elsewhere) == ("a1", "alice", True)


def test_r26_when_every_linked_account_assigned_the_contact_elsewhere_each_logs_it() -> None:
    views = [view("a1", [contact("k1", "c@x.com", assigned=("x",))], user_ids=("u1",)),
             view("a2", [contact("k2", "c@x.com", assigned=("y",))], user_ids=("u2",))]
    assert [x.account_id for x in classify(msg("c@x.com"), REP, views).deliveries] == ["a1", "a2"]


def test_r14_thread_owned_by_one_account_skips_the_others() -> None:
    views = [view("a1", [contact("k1", "c@x.com")]), view("a2", [contact("k2", "c@x.com")])]
    d = classify(msg("c@x.com"), REP, views, thread_owner="a2")
    assert [x.account_id for x in d.deliveries] == ["a2"]
    assert [(s.account_id, s.reason) for s in d.skips] == [("a1", "thread_owned_elsewhere")]


def test_r10_mapped_thread_keeps_its_conversation() -> None:
    v = view(contacts=[contact("k2", "c2@x.com")], thread_conversation="k1")
    got = only(classify(msg("c2@x.com"), REP, [v]).deliveries)
    assert (got.conversation_id, got.contact.id) == ("k1", "k2")


def test_sent_copy_carrying_the_users_auto_bcc_is_left_to_auto_bcc() -> None:
    m = msg(REP, to=["c@x.com"], bcc=["tok123@bcc.example.invalid"], labels=("SENT",))
    d = classify(m, REP, [view(contacts=[contact("k1", "c@x.com")], auto_bcc={"tok123@bcc.example.invalid"})])
    assert d.deliveries == [] and d.skips[0].reason == "auto_bcc_copy"


def test_another_users_auto_bcc_address_is_not_a_recipient_contact() -> None:
    m = msg(REP, to=["other@bcc.example.invalid"], labels=("SENT",))
    d = classify(m, REP, [view(contacts=[contact("k9", "other@bcc.example.invalid")])],
                 auto_bcc_domain="bcc.example.invalid")
    assert d.deliveries == [] and d.skips[0].reason == "internal"


def test_drafts_spam_trash_and_chat_never_sync() -> None:
    for label in ("DRAFT", "SPAM", "TRASH", "CHAT"):
        d = classify(msg("c@x.com", labels=(label,)), REP, [view(contacts=[contact("k1", "c@x.com")])])
        assert d.deliveries == [] and d.skips[0].reason == f"label_{label.lower()}"


def test_r13_contact_lookup_covers_the_usual_capitalisations() -> None:
    from shared.crm.contacts import address_variants

    v = address_variants("carla@client.test")
    for spelling in ("carla@client.test", "Carla@client.test", "Carla@Client.test", "CARLA@CLIENT.TEST"):
        assert spelling in v
    assert "John.Smith@acme.test" in address_variants("john.smith@acme.test")
    assert len(v) <= 10  # keeps `in` queries (30 values) cheap


def test_r9_crm_send_is_left_to_send_email_in_every_account() -> None:
    from dataclasses import replace

    from shared.gmail.mime_build import message_id_for

    m = replace(msg(REP, to=["c@x.com"], labels=("SENT",)), rfc822_message_id=message_id_for("idem1"))
    d = classify(m, REP, [view("a1", [contact("k1", "c@x.com")]), view("a2", [contact("k2", "c@x.com")])])
    assert d.deliveries == [] and {s.reason for s in d.skips} == {"crm_send"}


def crm_sent(to: str = "c@x.com") -> ParsedMessage:
    from dataclasses import replace

    from shared.gmail.mime_build import message_id_for

    return replace(msg(REP, to=[to], labels=("SENT",)), rfc822_message_id=message_id_for("idem1"))


def test_r18b_unfinished_crm_send_is_logged_in_the_sending_account_only() -> None:
    views = [view("a1", [contact("k1", "c@x.com")]), view("a2", [contact("k2", "c@x.com")])]
    d = classify(crm_sent(), REP, views, crm_send=CrmSend("a2", "u7"))
    got = only(d.deliveries)
    assert (got.account_id, got.user_id, got.contact.id, got.source, got.direction) == ("a2", "u7", "k2", "crm",
                                                                                         "outbound")
    assert [(s.account_id, s.reason) for s in d.skips] == [("a1", "crm_send")]
    assert build_message(crm_sent(), got).source == "crm"


def test_r18b_the_records_contact_and_the_threads_conversation_win() -> None:
    v = view("a1", [contact("k1", "c@x.com")], thread_conversation="k0")
    got = only(classify(crm_sent(), REP, [v], crm_send=CrmSend("a1", "u1", contact_id="k5")).deliveries)
    assert (got.contact.id, got.conversation_id) == ("k5", "k0")


def test_r18b_unfinished_crm_send_to_no_contact_is_skipped() -> None:
    d = classify(crm_sent("gone@x.com"), REP, [view("a1", [])], crm_send=CrmSend("a1", "u1"))
    assert d.deliveries == [] and d.skips[0].reason == "crm_send_unmatched"


def test_r21_inbound_from_a_blocked_domain_is_skipped() -> None:
    d = classify(msg("c@mail.x.com"), REP, [view(contacts=[contact("k1", "c@mail.x.com")], blocklist=["x.com"])])
    assert d.deliveries == [] and d.skips[0].reason == "blocklisted"


def test_r21_outbound_with_a_blocked_address_in_cc_is_skipped() -> None:
    m = msg(REP, to=["c@x.com"], cc=["spy@y.com"], labels=("SENT",))
    d = classify(m, REP, [view(contacts=[contact("k1", "c@x.com")], blocklist=["Spy@Y.com"])])
    assert d.deliveries == [] and d.skips[0].reason == "blocklisted"


def test_r21_blocklist_is_per_account() -> None:
    views = [view("a1", [contact("k1", "c@x.com")], blocklist=["x.com"]), view("a2", [contact("k2", "c@x.com")])]
    d = classify(msg("c@x.com"), REP, views)
    assert [x.account_id for x in d.deliveries] == ["a2"] and [s.reason for s in d.skips] == ["blocklisted"]


def test_r21_the_reps_own_domain_on_the_list_does_not_block_its_mail() -> None:
    d = classify(msg("c@x.com", to=["rep@gmail.test", "boss@gmail.test"]), REP,
                 [view(contacts=[contact("k1", "c@x.com")], users={"boss@gmail.test"}, blocklist=["gmail.test"])])
    assert only(d.deliveries).contact.id == "k1"


def test_r8b_forward_of_a_logged_thread_to_a_stranger_is_logged_there() -> None:
    m = msg(REP, to=["stranger@y.com"], labels=("SENT",), subject="Fwd: offer")
    got = only(classify(m, REP, [view(contacts=[], thread_conversation="k1")]).deliveries)
    assert (got.conversation_id, got.contact.id, got.is_forward, got.direction) == ("k1", "k1", True, "outbound")


def test_r8b_forward_outside_a_logged_thread_is_not_logged() -> None:
    m = msg(REP, to=["stranger@y.com"], labels=("SENT",), subject="Fwd: offer")
    assert classify(m, REP, [view()]).skips[0].reason == "unknown_recipient"


def test_r8b_forward_of_a_logged_thread_to_a_colleague_stays_internal() -> None:
    m = msg(REP, to=["boss@corp.com"], labels=("SENT",), subject="Fwd: offer")
    d = classify(m, REP, [view(users={"boss@corp.com"}, thread_conversation="k1")])
    assert d.deliveries == [] and d.skips[0].reason == "internal"


def test_r19_new_message_flags_come_from_its_labels() -> None:
    d = only(classify(msg("c@x.com", labels=("INBOX", "UNREAD", "STARRED")), REP,
                      [view(contacts=[contact("k1", "c@x.com")])]).deliveries)
    doc = build_message(msg("c@x.com", labels=("INBOX", "UNREAD", "STARRED")), d).to_doc()
    assert (doc["read"], doc["starred"], doc["trashed"], doc["deletedInGmail"]) == (False, True, False, False)
    doc = build_message(msg("c@x.com", labels=("INBOX",)), d).to_doc()
    assert (doc["read"], doc["starred"]) == (True, False)


def test_r22_absurd_internal_dates_are_logged_as_seen() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert sent_at(1_700_000_000_000, now) == datetime.fromtimestamp(1_700_000_000, tz=UTC)
    assert sent_at(253_402_300_800_000 * 10, now) == now  # past year 9999
    assert sent_at(-62_135_596_800_000 * 2, now) == now  # before year 1
    assert sent_at(int(datetime(2030, 1, 1, tzinfo=UTC).timestamp() * 1000), now) == now  # the future
