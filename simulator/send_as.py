"""Gmail's send-as aliases: `users.settings.sendAs.list` and a `/sim/` way to set them.

Gmail lists the primary address first (`isPrimary`, `isDefault` unless another
alias is the default) and then the custom "from" addresses the user added
under Settings → Accounts → "Send mail as", each with its `verificationStatus`
(`accepted` once the owner of the address confirmed, else `pending`). The
method is allowed under `gmail.readonly` (the discovery document lists it), so
the sync can read a rep's aliases with the scope it already has (R28).

Kept apart from simulator/gmail_api.py: it only registers one more route there.
"""

from __future__ import annotations

import json
from typing import Any

import flask

from simulator.admin import answer_state_errors
from simulator.context import SimContext, ctx
from simulator.gmail_api import Call, Reply, route
from simulator.state import InvalidArgument

bp = flask.Blueprint("send_as", __name__, url_prefix="/sim")


answer_state_errors(bp)

STATUSES = ("accepted", "pending")


def _primary(address: str, default: bool) -> dict[str, Any]:
    return {"sendAsEmail": address, "displayName": "", "replyToAddress": "", "signature": "",
            "isPrimary": True, "isDefault": default, "treatAsAlias": False}


@route("GET", "/settings/sendAs", "gmail.users.settings.sendAs.list")
def send_as_list(context: SimContext, call: Call, address: str, p: dict[str, str]) -> Reply:
    with context.state.lock:
        box = context.state.require(address)
        aliases = [dict(a) for a in box.send_as]
        primary_default = not any(a.get("isDefault") for a in aliases)
        return Reply.json({"sendAs": [_primary(box.address, primary_default), *aliases]})


def _alias(item: Any) -> dict[str, Any]:
    if isinstance(item, str):
        item = {"sendAsEmail": item}
    if not isinstance(item, dict) or not isinstance(item.get("sendAsEmail"), str) or "@" not in item["sendAsEmail"]:
        raise InvalidArgument("each alias is an address or {sendAsEmail, displayName?, verificationStatus?, "
                              "isDefault?}")
    status = item.get("verificationStatus", "accepted")
    if status not in STATUSES:
        raise InvalidArgument(f"verificationStatus must be one of {', '.join(STATUSES)}")
    return {"sendAsEmail": item["sendAsEmail"].strip(), "displayName": str(item.get("displayName") or ""),
            "replyToAddress": "", "signature": "", "isPrimary": False, "isDefault": bool(item.get("isDefault")),
            "treatAsAlias": True, "verificationStatus": status}


@bp.put("/mailboxes/<address>/sendAs")
def set_send_as(address: str) -> flask.Response:
    """Replace the mailbox's aliases: `{"sendAs": ["a@x", {"sendAsEmail": "b@y", "verificationStatus":
    "pending"}]}` (a plain address is an accepted alias). The primary address is always listed first."""
    try:
        body = json.loads(flask.request.get_data() or b"{}")
    except ValueError:
        raise InvalidArgument("request body is not valid JSON") from None
    items = body.get("sendAs") if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise InvalidArgument('the body is {"sendAs": [...]}')
    aliases = [_alias(i) for i in items]
    state = ctx().state
    with state.lock:
        box = state.require(address)
        box.send_as = [a for a in aliases if a["sendAsEmail"].lower() != box.address.lower()]
        return flask.jsonify(sendAs=[_primary(box.address, True)["sendAsEmail"],
                                     *[a["sendAsEmail"] for a in box.send_as]])
