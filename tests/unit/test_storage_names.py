"""R32: object names of the whole mail cannot collide across tenants and keep one prefix per account."""

from __future__ import annotations

from shared.storage import names


def test_r32_plain_ids_are_kept_readable():
    assert names.body_name("acct-1", "conv_2", "gm_abc", "html") == \
        "accounts/acct-1/conversations/conv_2/messages/gm_abc/body.html"
    assert names.attachment_name("a", "c", "m", 3) == "accounts/a/conversations/c/messages/m/attachments/3"


def test_r32_ids_with_slashes_or_dots_cannot_escape_their_segment():
    for hostile in ("..", ".", "a/b", "../../other", "~x", "a b", "ü"):
        seg = names.segment(hostile)
        assert "/" not in seg and seg not in (".", "..") and seg.startswith("~")


def test_r32_encoding_is_one_to_one_so_tenants_never_share_a_prefix():
    ids = ["a", "a/b", "a_b", "~YQ", "YQ", "a-b", "a.b", "A", "..", "."]
    segments = [names.segment(i) for i in ids]
    assert len(set(segments)) == len(ids)
    prefixes = [names.account_prefix(i) for i in ids]
    assert not any(p != q and q.startswith(p) for p in prefixes for q in prefixes)


def test_r32_every_object_of_an_account_is_under_its_prefix():
    prefix = names.account_prefix("acct/1")
    assert names.body_name("acct/1", "c", "m", "text").startswith(prefix)
    assert names.attachment_name("acct/1", "c/2", "m", 0).startswith(prefix)
    assert not names.body_name("acct", "c", "m", "text").startswith(prefix)
