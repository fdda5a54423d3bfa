"""The `messages` function (0.3): a logged message whole (R32) and the CRM's changes made in Gmail (R33).

Routes (docs/API_MESSAGES.md has payloads and every error), behind the CRM's
invoker identity (private, like `oauth`) and `Authorization: Bearer <CRM API key>`:

  GET  /body    ?accountId&conversationId&messageId -> {text, html}
  POST /modify  {accountId, conversationId, messageId, read?, starred?, trashed?} -> {applied: [mailbox ids]}

Errors: 400 invalid_request, 401, 404 not_found (no such message in this
account), 409 not_connected (no mailbox it came through is connected),
409 missing_scopes (a mailbox connected before 0.3: the rep must reconnect),
409 reauth_required, 503 gmail_unavailable. The operations live in
shared/messages/; this adapter validates input; their refusals
(shared/messages/errors.py) carry their own answers.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from shared.http.answers import ApiError, dispatch_crm, handles_errors, json_response, read_json
from shared.http.validate import invalid, require_id

if TYPE_CHECKING:
    import flask

CRM_KEY_SECRET = "crm-api-key"
IDS = ("accountId", "conversationId", "messageId")
FLAGS = ("read", "starred", "trashed")
_FIRESTORE_RESERVED = re.compile(r"^(\.|\.\.|__.*__)$")


@handles_errors
def handle(request: flask.Request) -> Any:
    return dispatch_crm(request, ROUTES, CRM_KEY_SECRET)  # the operations' refusals carry their answers


def _ids(values: dict[str, Any]) -> tuple[str, str, str]:
    ids = tuple(require_id(values, k) for k in IDS)
    for name, value in zip(IDS, ids, strict=True):
        if _FIRESTORE_RESERVED.match(value):
            raise invalid(name, "is not a valid id")
    return ids[0], ids[1], ids[2]


def body(request: flask.Request) -> Any:
    from shared.messages.body import read_body

    return json_response(read_body(*_ids({k: request.args.get(k) for k in IDS})))


def modify(request: flask.Request) -> Any:
    from shared.messages.modify import FlagChange, modify_message

    values = read_json(request)
    ids = _ids(values)
    unknown = sorted(set(values) - {*IDS, *FLAGS})
    if unknown:
        raise invalid(unknown[0], "is not a field of this request")
    flags: dict[str, bool] = {}
    for name in FLAGS:
        if name in values:
            if not isinstance(values[name], bool):
                raise invalid(name, "must be true or false")
            flags[name] = values[name]
    if not flags:
        raise ApiError(400, "invalid_request", "give at least one of read, starred, trashed")
    return json_response({"applied": modify_message(*ids, FlagChange(**flags))})


ROUTES = {"/body": ("GET", body), "/modify": ("POST", modify)}
