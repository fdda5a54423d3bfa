"""The one refusal type (shared/core/refusal.py): every domain refusal answers by its class (issue 19).

Each row is the answer the adapters gave before through their own tables (send's
ApiError, connect's code → status map, auto_bcc's and attachments' class-name
maps): status, code and message must stay byte for byte the same.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest

from shared.attachments import fetch as attachments
from shared.auto_bcc import document, log_copy, message, rate_limit
from shared.connect import errors as connect
from shared.core.refusal import Refusal
from shared.http.answers import ApiError, handles_errors
from shared.messages import errors as messages
from shared.send import answers as send

ROOT = Path(__file__).resolve().parents[2]
PENDING = ("this message was sent from the CRM moments ago; its attachment ids are not recorded yet: read the "
           "message again shortly")

ANSWERS: list[tuple[Refusal, int, dict[str, Any]]] = [
    # attachments: the class's own text, never the id it was raised with
    (attachments.AttachmentNotFound("m1"), 404, {"error": "not_found", "message": "no such message or attachment"}),
    (attachments.AttachmentPending("a1"), 409, {"error": "attachment_pending", "message": PENDING}),
    (attachments.MailboxNotConnected("mb1"), 409,
     {"error": "not_connected", "message": "the mailbox this message came from is no longer connected"}),
    (attachments.MailboxReauthRequired("mb1"), 409,
     {"error": "reauth_required", "message": "the rep must connect Gmail again to open this attachment"}),
    (attachments.GmailBusy("transient"), 503,
     {"error": "gmail_unavailable", "message": "Gmail did not answer; try again shortly"}),
    (attachments.AttachmentTooLarge("a1"), 413,
     {"error": "too_large", "message": "the attachment is larger than 25 MB; open it in Gmail"}),
    # auto_bcc: the text the operation raised
    (log_copy.UnknownAddress("unknown Auto BCC address"), 404,
     {"error": "not_found", "message": "unknown Auto BCC address"}),
    (message.MalformedMessage("the body is empty"), 400,
     {"error": "malformed_message", "message": "the body is empty"}),
    (log_copy.SenderNotUser("not the user"), 403, {"error": "sender_not_user", "message": "not the user"}),
    (log_copy.SenderNotAuthenticated("dmarc=fail"), 403,
     {"error": "sender_not_authenticated", "message": "dmarc=fail"}),
    (rate_limit.RateLimited(30, 12), 429,
     {"error": "rate_limited", "message": "more than 30 copies a minute for this Auto BCC address; retry in 12 s",
      "retryAfterSeconds": 12, "limitPerMinute": 30}),
    (log_copy.Blocklisted("blocklisted"), 422, {"error": "blocklisted", "message": "blocklisted"}),
    (log_copy.NoRecipient("nobody"), 422, {"error": "no_recipient", "message": "nobody"}),
    (log_copy.AttachmentsTooLarge("too big"), 413, {"error": "too_large", "message": "too big"}),
    (document.NotStorable("bulk"), 413, {"error": "too_large", "message": "bulk"}),
    # connect: 404 for a missing user, 409 for a mailbox not (or no longer) usable, 400 otherwise
    (connect.UserNotFound("no such user in this account"), 404,
     {"error": "not_found", "message": "no such user in this account"}),
    (connect.NotConnected("no Gmail"), 409, {"error": "not_connected", "message": "no Gmail"}),
    (connect.ReauthRequired("again"), 409, {"error": "reauth_required", "message": "again"}),
    (connect.ReturnUrlRefused("returnUrl: bad", field="returnUrl"), 400,
     {"error": "invalid_request", "message": "returnUrl: bad", "field": "returnUrl"}),
    (connect.ReturnUrlRefused("not allowed", code="return_url_not_allowed", field="returnUrl"), 400,
     {"error": "return_url_not_allowed", "message": "not allowed", "field": "returnUrl"}),
    (connect.StateRejected("OAuth state rejected: expired", code="expired"), 400,
     {"error": "expired", "message": "OAuth state rejected: expired"}),
    (connect.StateRejected("OAuth state rejected"), 400, {"error": "invalid_state", "message": "OAuth state rejected"}),
    # messages (R32, R33): the class's own text, never the ids it was raised with
    (messages.MessageNotFound("m1"), 404, {"error": "not_found", "message": "no such message"}),
    (messages.NotConnected("m1"), 409,
     {"error": "not_connected", "message": "no mailbox this message came through is connected"}),
    (messages.MissingScopes(["mb1"]), 409,
     {"error": "missing_scopes", "message": "a mailbox this message came through was connected without "
      "permission to change mail (gmail.modify): the rep must connect again"}),
    (messages.ReauthRequired("mb1"), 409, {"error": "reauth_required", "message": "the rep must connect Gmail again"}),
    (messages.GmailBusy("transient"), 503,
     {"error": "gmail_unavailable", "message": "Gmail did not answer; try again shortly"}),
    # send: spelled out where raised
    (send.not_found("contactId", "contact"), 404,
     {"error": "not_found", "message": "contact not found in this account", "field": "contactId"}),
    (send.rate_limited(), 429,
     {"error": "rate_limited", "message": "Gmail is rate-limiting this mailbox; retry shortly",
      "retryAfterSeconds": 5}),
]


def answer(refusal: Exception) -> tuple[int, dict[str, Any]]:
    @handles_errors
    def handler() -> None:
        raise refusal

    resp = handler()
    return resp.status_code, json.loads(resp.get_data())


def _name(value: Any) -> str | None:
    return type(value).__name__ if isinstance(value, Exception) else None


@pytest.mark.parametrize(("refusal", "status", "body"), ANSWERS, ids=_name)
def test_issue19_each_domain_refusal_is_answered_by_its_class(refusal: Refusal, status: int,
                                                              body: dict[str, Any]) -> None:
    assert answer(refusal) == (status, body)


def test_issue19_a_renamed_refusal_keeps_its_answer() -> None:
    # the class-name maps turned a renamed exception into a 500
    class ListedParty(log_copy.Blocklisted):
        pass

    assert answer(ListedParty("blocked")) == (422, {"error": "blocklisted", "message": "blocked"})


def test_issue19_a_refusal_is_not_an_internal_error_but_anything_else_is() -> None:
    assert answer(ValueError("boom")) == (500, {"error": "internal", "message": "internal error"})
    assert answer(ApiError(401, "unauthorized", "missing or invalid API key"))[0] == 401


def test_issue19_auto_bcc_refusals_stay_value_errors_for_their_parsers() -> None:
    assert issubclass(message.MalformedMessage, ValueError) and issubclass(document.NotStorable, ValueError)


def test_issue19_nothing_maps_refusals_by_class_name() -> None:
    # `MAP[type(exc).__name__]`: a subscript keyed by a class's name
    keyed: list[str] = []
    for path in sorted([*(ROOT / "functions").glob("*.py"), *(ROOT / "shared").rglob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Attribute) \
                    and node.slice.attr == "__name__":
                keyed.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert keyed == []
