"""The simulator's own admin API under `/sim/`: what tests and CRM developers drive it with.

Mailboxes are created, fed from outside (`deliver`), written to as the rep
from Gmail's UI (`send`), inspected (`messages`, `raw`), changed as the rep
would in Gmail (`modify`, `read`, `unread`, `star`, `unstar`, `trash`,
`untrash`, `delete`), and have their tokens revoked (a
password change). Faults, run-time settings, counters and a full reset are
here too. Errors are `{"error": code, "message": text}` with a 4xx status.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import Any

import flask

from simulator.context import ctx
from simulator.errors import GmailError
from simulator.gmail_api import send_checked
from simulator.state import LABEL_ACTIONS, InvalidArgument, NotFound, StoredMessage

bp = flask.Blueprint("admin", __name__, url_prefix="/sim")


class AdminError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@bp.errorhandler(AdminError)
def _admin_error(err: AdminError) -> tuple[flask.Response, int]:
    return flask.jsonify(error=err.code, message=err.message), err.status


def _not_found(err: NotFound) -> tuple[flask.Response, int]:
    return flask.jsonify(error="not_found", message=f"not found: {err}"), 404


def _invalid(err: InvalidArgument) -> tuple[flask.Response, int]:
    return flask.jsonify(error="invalid_argument", message=str(err)), 400


def answer_state_errors(blueprint: flask.Blueprint) -> None:
    """The admin API's answers to an unknown mailbox or message (404) and a bad argument (400), for every
    blueprint under /sim/."""
    blueprint.register_error_handler(NotFound, _not_found)
    blueprint.register_error_handler(InvalidArgument, _invalid)


answer_state_errors(bp)


@bp.errorhandler(GmailError)
def _gmail_error(err: GmailError) -> tuple[flask.Response, int]:
    code = {429: "rate_limited", 413: "too_large"}.get(err.code, "gmail_error")
    return flask.jsonify(error=code, message=err.message, gmailError=err.body()["error"]), err.code


def _json() -> dict[str, Any]:
    try:
        body = json.loads(flask.request.get_data() or b"{}")
    except ValueError:
        raise AdminError(400, "malformed_json", "request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise AdminError(400, "malformed_json", "request body must be a JSON object")
    return body


def _raw() -> bytes:
    ctype = (flask.request.mimetype or "").lower()
    if ctype not in ("message/rfc822", "application/octet-stream", "text/plain"):
        raise AdminError(415, "unsupported_media_type", "send the raw message as Content-Type: message/rfc822")
    raw = flask.request.get_data()
    if not raw.strip():
        raise AdminError(400, "empty_message", "the request body must be an RFC 822 message")
    return raw


@bp.get("/health")
def health() -> flask.Response:
    return flask.jsonify(ok=True)


@bp.post("/mailboxes")
def create_mailbox() -> tuple[flask.Response, int]:
    address = _json().get("address")
    if not isinstance(address, str) or "@" not in address:
        raise AdminError(400, "invalid_address", "body must be {\"address\": \"<email address>\"}")
    box, created = ctx().state.create_mailbox(address)
    return flask.jsonify(address=box.address, historyId=str(box.history_id)), 201 if created else 200


@bp.get("/mailboxes")
def list_mailboxes() -> flask.Response:
    return flask.jsonify(mailboxes=ctx().state.addresses())


@bp.get("/mailboxes/<address>")
def get_mailbox(address: str) -> flask.Response:
    c = ctx()
    with c.state.lock:
        box = c.state.require(address)
        watch = box.watch.to_json() if box.watch else None
        if box.watch is not None and watch is not None:
            watch["expired"] = box.watch.expiration <= int(time.time() * 1000)
        out = {
            "address": box.address,
            "historyId": str(box.history_id),
            "messagesTotal": len(box.messages),
            "watch": watch,
        }
    out["activeTokens"] = c.tokens.active_tokens(box.address)
    return flask.jsonify(out)


@bp.post("/mailboxes/<address>/deliver")
def deliver(address: str) -> flask.Response:
    raw = _raw()
    when = flask.request.args.get("internalDate")
    if when is not None and not when.isdigit():
        raise AdminError(400, "invalid_argument", "internalDate must be milliseconds since the epoch")
    labels = [lbl for raw_ids in flask.request.args.getlist("labelIds") for lbl in raw_ids.split(",") if lbl]
    msg = ctx().state.deliver(address, raw, int(when) if when else None, labels)
    return flask.jsonify(id=msg.id, threadId=msg.thread_id, labelIds=list(msg.label_ids),
                         historyId=str(msg.history_id))


@bp.post("/mailboxes/<address>/send")
def send_as_user(address: str) -> flask.Response:
    c = ctx()
    box = c.state.require(address)
    sent = send_checked(c, box.address, _raw(), from_ui=True).obj
    return flask.jsonify(id=sent["id"], threadId=sent["threadId"])


@bp.get("/mailboxes/<address>/messages")
def list_messages(address: str) -> flask.Response:
    c = ctx()
    label = flask.request.args.get("label")
    out = []
    for m in c.state.list_messages(address, [label] if label else [], None, include_spam_trash=True):
        headers: dict[str, str] = {}
        for name, value in m.parsed.headers:
            headers.setdefault(name, value)
        out.append(
            {
                "id": m.id,
                "threadId": m.thread_id,
                "labelIds": list(m.label_ids),
                "internalDate": str(m.internal_date),
                "headers": headers,
                "sizeEstimate": len(m.raw),
            }
        )
    return flask.jsonify(messages=out)


@bp.get("/mailboxes/<address>/messages/<msg_id>/raw")
def raw_message(address: str, msg_id: str) -> flask.Response:
    msg, _, _ = ctx().state.message(address, msg_id)
    return flask.Response(msg.raw, mimetype="message/rfc822")


@bp.post("/mailboxes/<address>/messages/<msg_id>/modify")
def modify(address: str, msg_id: str) -> flask.Response:
    body = _json()
    add, remove = body.get("addLabelIds") or [], body.get("removeLabelIds") or []
    if not isinstance(add, list) or not isinstance(remove, list):
        raise AdminError(400, "invalid_argument", "addLabelIds and removeLabelIds are lists of label ids")
    if not all(isinstance(x, str) for x in [*add, *remove]):
        raise AdminError(400, "invalid_argument", "label ids are strings")
    return _changed(ctx().state.modify(address, msg_id, add, remove))


@bp.post("/mailboxes/<address>/messages/<msg_id>/<action>")
def label_action(address: str, msg_id: str, action: str) -> flask.Response:
    """The rep in Gmail's UI: read, unread, star, unstar, trash, untrash (history and a notification, as Gmail)."""
    change = LABEL_ACTIONS.get(action)
    if change is None:
        raise AdminError(404, "unknown_action", f"no action {action!r}; one of {', '.join(LABEL_ACTIONS)} or modify")
    return _changed(ctx().state.modify(address, msg_id, *change))


@bp.post("/mailboxes/<address>/threads/<thread_id>/<action>")
def thread_action(address: str, thread_id: str, action: str) -> flask.Response:
    """The rep acting on a whole conversation in Gmail's UI: one history record for all of its messages."""
    change = LABEL_ACTIONS.get(action)
    if change is None:
        raise AdminError(404, "unknown_action", f"no action {action!r}; one of {', '.join(LABEL_ACTIONS)}")
    c = ctx()
    msgs = c.state.modify_thread(address, thread_id, *change)
    with c.state.lock:
        box = c.state.require(address)
        return flask.jsonify(
            id=thread_id,
            messages=[{"id": m.id, "threadId": m.thread_id, "labelIds": list(m.label_ids)} for m in msgs],
            historyId=str(box.history_id),
        )


def _changed(msg: StoredMessage) -> flask.Response:
    with ctx().state.lock:  # labels and historyId of one moment
        return flask.jsonify(
            id=msg.id, threadId=msg.thread_id, labelIds=list(msg.label_ids), historyId=str(msg.history_id)
        )


@bp.delete("/mailboxes/<address>/messages/<msg_id>")
def delete(address: str, msg_id: str) -> tuple[str, int]:
    """The rep deletes the message for ever in Gmail (from Trash): history `messagesDeleted`."""
    ctx().state.delete(address, msg_id)
    return "", 204


@bp.post("/mailboxes/<address>/watch/expire")
def expire_watch(address: str) -> flask.Response:
    """The watch reached its expiration (Gmail's last at most 7 days): no more notifications until renewed."""
    c = ctx()
    with c.state.lock:
        box = c.state.require(address)
        if box.watch is None:
            raise AdminError(409, "no_watch", f"{box.address} has no watch")
        box.watch = replace(box.watch, expiration=int(time.time() * 1000))
        return flask.jsonify(box.watch.to_json())


@bp.post("/mailboxes/<address>/revoke")
def revoke(address: str) -> flask.Response:
    c = ctx()
    box = c.state.require(address)
    return flask.jsonify(revoked=c.tokens.revoke_all(box.address))


@bp.get("/faults")
def get_faults() -> flask.Response:
    return flask.jsonify(ctx().faults.spec())


@bp.put("/faults")
def put_faults() -> flask.Response:
    c = ctx()
    try:
        c.faults.set(_json())
    except ValueError as exc:
        raise AdminError(400, "invalid_faults", str(exc)) from None
    return flask.jsonify(c.faults.spec())


@bp.get("/settings")
def get_settings() -> flask.Response:
    return flask.jsonify(ctx().settings.to_json())


@bp.put("/settings")
def put_settings() -> flask.Response:
    c = ctx()
    try:
        settings = c.settings.updated(_json())
    except ValueError as exc:
        raise AdminError(400, "invalid_settings", str(exc)) from None
    c.apply_settings(settings)
    return flask.jsonify(settings.to_json())


@bp.post("/reset")
def reset() -> flask.Response:
    ctx().reset()
    return flask.jsonify(ok=True)


@bp.get("/stats")
def stats() -> flask.Response:
    """Counters: quota units, calls and refusals per mailbox and method or reason, the project's daily units,
    the limits in force, notifications and watches."""
    c = ctx()
    return flask.jsonify(**c.quota.stats(), notifications=c.notifier.stats(), watches=c.state.watch_summary())
