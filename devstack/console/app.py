"""The console's web app (Flask, served by cheroot): one server-rendered page that updates itself.

The page is HTML rendered here from Jinja templates; a small script
(static/console.js, no build step, nothing loaded from elsewhere) keeps it
live without reloads: the crm-events stream arrives as Server-Sent Events,
and the data panels are re-rendered here and swapped in (`/fragments`) after
each event and every couple of seconds, so changes that publish no event
(a revoked token, an expired watch) show too.

The console has no login: it listens on loopback only, answers only requests
addressed to its own host name (no DNS rebinding), refuses cross-site POSTs
(Origin check), and sends a Content-Security-Policy that allows only itself.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import flask

from devstack.console import mail, store
from devstack.console.actions import ActionError, Actions
from devstack.console.feed import EventFeed

log = logging.getLogger("devstack.console")

KEEPALIVE_SECONDS = 5.0  # also how soon a closed page's stream frees its server thread
FRAGMENTS = ("mailboxes", "accounts", "conversations", "simulator", "datalists")
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")


def when(value: Any) -> str:
    """A Firestore timestamp, epoch milliseconds or ISO text as 'YYYY-MM-DD HH:MM:SS' UTC ('' if none)."""
    if value is None or value == "":
        return ""
    if isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
        value = datetime.fromtimestamp(int(value) / 1000, UTC)
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def create_app(actions: Actions, feed: EventFeed, own_url: str) -> flask.Flask:
    app = flask.Flask(__name__)
    app.jinja_env.filters["when"] = when
    app.jinja_env.filters["tojson_pretty"] = lambda v: json.dumps(v, indent=2, sort_keys=True, default=str)
    host_port = own_url.split("://", 1)[1].rstrip("/")
    port = host_port.rsplit(":", 1)[1]
    allowed_hosts = {host_port, f"localhost:{port}", f"127.0.0.1:{port}"}
    allowed_origins = {f"http://{h}" for h in allowed_hosts}

    @app.before_request
    def _guard() -> Any:
        if flask.request.host not in allowed_hosts:
            return flask.Response("unknown host\n", 421, mimetype="text/plain")
        origin = flask.request.headers.get("Origin")
        if flask.request.method == "POST" and origin is not None and origin not in allowed_origins:
            return flask.jsonify(error="cross_site", message="the console accepts its own page's requests only"), 403
        return None

    @app.after_request
    def _headers(resp: flask.Response) -> flask.Response:
        resp.headers.setdefault("Content-Security-Policy", CSP)
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("Referrer-Policy", "no-referrer")
        if resp.mimetype in ("text/html", "application/json"):
            resp.headers.setdefault("Cache-Control", "no-store")
        return resp

    # -- rendering ------------------------------------------------------------------------

    def gmail_labels(address: str) -> dict[str, list[str]]:
        try:
            return {m["id"]: list(m.get("labelIds") or []) for m in actions.sim.messages(address)}
        except Exception:
            return {}

    def sim_mailbox(address: str) -> dict[str, Any] | None:
        try:
            return actions.sim.mailbox(address)
        except Exception:
            return None

    def context() -> dict[str, Any]:
        errors: list[str] = []
        try:
            mailboxes = [(mid, data, sim_mailbox(str(data.get("address", ""))))
                         for mid, data in store.mailboxes(actions.db)]
            accounts = store.accounts(actions.db, gmail_labels, {mid: str(d.get("address")) for mid, d, _ in mailboxes})
        except Exception as exc:
            log.exception("reading Firestore failed")
            errors.append(f"Firestore: {type(exc).__name__}: {exc}")
            mailboxes, accounts = [], []
        try:
            faults: Any = actions.sim.faults()
            stats: Any = actions.sim.stats()
            sim_addresses: list[str] = actions.sim.mailboxes()
        except Exception as exc:
            errors.append(f"simulator: {type(exc).__name__}: {exc}")
            faults, stats, sim_addresses = None, None, []
        return {
            "mailboxes": mailboxes, "accounts": accounts, "faults": faults, "stats": stats,
            "sim_addresses": sim_addresses, "errors": errors, "endpoints": actions.endpoints,
            "has_attachments": "attachments" in actions.endpoints.functions,
            "state_fields": store.STATE_FIELDS, "label_changes": ("read", "unread", "star", "unstar", "trash",
                                                                  "untrash"),
        }

    def fragments() -> dict[str, str]:
        ctx = context()
        return {name: flask.render_template(f"_{name}.html", **ctx) for name in FRAGMENTS}

    @app.get("/")
    def page() -> str:
        return flask.render_template("page.html", fragments=fragments(), endpoints=actions.endpoints,
                                     notice=flask.request.args.get("notice", ""),
                                     notice_kind=flask.request.args.get("kind", "ok"))

    @app.get("/fragments")
    def fragments_json() -> flask.Response:
        return flask.jsonify(fragments())

    @app.get("/health")
    def health() -> tuple[flask.Response, int]:
        if feed.error:
            return flask.jsonify(ok=False, events=feed.error), 503
        if not feed.ready.is_set():
            return flask.jsonify(ok=False, events="subscribing to crm-events"), 503
        return flask.jsonify(ok=True, events="subscribed"), 200

    # -- crm-events -----------------------------------------------------------------------

    @app.get("/events")
    def events_json() -> flask.Response:
        after = int(flask.request.args.get("after", "0") or 0)
        return flask.jsonify(events=[e.to_json() for e in feed.after(after)])

    @app.get("/events/stream")
    def events_stream() -> flask.Response:
        header = flask.request.headers.get("Last-Event-ID") or flask.request.args.get("after") or "0"
        start = int(header) if header.isdigit() else 0

        def generate() -> Iterator[str]:
            seq = start
            yield "retry: 2000\n\n"
            while not feed.closed:
                events = feed.wait_after(seq, KEEPALIVE_SECONDS)
                if not events:
                    yield ": keep-alive\n\n"
                    continue
                for e in events:
                    seq = e.seq
                    yield f"id: {e.seq}\nevent: crm-event\ndata: {json.dumps(e.to_json(), default=str)}\n\n"

        return flask.Response(generate(), mimetype="text/event-stream",
                              headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    # -- connect through the real consent page ----------------------------------------------

    @app.get("/connect")
    def connect() -> Any:
        args = flask.request.args
        account_id, user_id = args.get("accountId", ""), args.get("userId", "")
        back = f"{own_url}/connected?" + urlencode({"accountId": account_id, "userId": user_id})
        try:
            url = actions.connect_url(account_id, user_id, back)
        except ActionError as err:
            return _back_home(f"connect {account_id}/{user_id}: {err.code}: {err.message}", "error")
        return flask.redirect(url, 303)

    @app.get("/connected")
    def connected() -> Any:
        args = flask.request.args
        who = f"{args.get('accountId', '')}/{args.get('userId', '')}"
        if args.get("status") == "connected":
            return _back_home(f"{who} connected Gmail", "ok")
        return _back_home(f"{who} did not connect: {args.get('reason', 'unknown')}", "error")

    def _back_home(notice: str, kind: str) -> Any:
        return flask.redirect("/?" + urlencode({"notice": notice, "kind": kind}), 303)

    # -- attachments through the attachments function (R20) -------------------------------------

    @app.get("/attachment")
    def attachment() -> Any:
        try:
            resp = actions.attachment(dict(flask.request.args))
        except ActionError as err:
            return flask.jsonify(error=err.code, message=err.message), err.status
        passed = {k: v for k, v in resp.headers.items() if k.lower() in ("content-type", "content-disposition")}
        return flask.Response(resp.iter_content(64 * 1024), status=resp.status_code, headers=passed)

    # -- controls ------------------------------------------------------------------------

    @app.post("/actions/<name>")
    def action(name: str) -> tuple[flask.Response, int]:
        form = flask.request.form
        f = {k: form.get(k, "") for k in form}
        try:
            handler = _HANDLERS.get(name)
            if handler is None:
                raise ActionError(404, "unknown_action", f"no action {name!r}")
            message = handler(actions, f, flask.request.files)
        except ActionError as err:
            return flask.jsonify(error=err.code, message=err.message), err.status
        log.info("console action %s", name)
        return flask.jsonify(ok=True, message=message), 200

    return app


def _upload(files: Any) -> mail.Upload | None:
    storage = files.get("attachment")
    if storage is None or not storage.filename:
        return None
    return mail.Upload(storage.filename, storage.mimetype or "application/octet-stream", storage.read())


def _msg(f: dict[str, str]) -> tuple[str, str, str]:
    return f.get("accountId", ""), f.get("conversationId", ""), f.get("messageId", "")


_HANDLERS: dict[str, Any] = {
    "deliver": lambda a, f, files: a.deliver(f.get("from", ""), f.get("name", ""), f.get("to", ""),
                                             f.get("subject", ""), f.get("text", ""), _upload(files)),
    "reply": lambda a, f, files: a.reply(*_msg(f), f.get("text", "")),
    "forward": lambda a, f, files: a.forward(*_msg(f), f.get("to", ""), f.get("text", "")),
    "gmail": lambda a, f, files: a.relabel(*_msg(f), f.get("change", "")),
    "gmail-delete": lambda a, f, files: a.delete_in_gmail(*_msg(f)),
    "revoke": lambda a, f, files: a.revoke(f.get("address", "")),
    "expire-watch": lambda a, f, files: a.expire_watch(f.get("address", "")),
    "faults": lambda a, f, files: a.set_faults(f.get("spec", "")),
    "disconnect": lambda a, f, files: a.disconnect(f.get("accountId", ""), f.get("userId", "")),
    "add-user": lambda a, f, files: a.add_user(f.get("accountId", ""), f.get("userId", ""), f.get("email", ""),
                                               f.get("name", "")),
    "add-contact": lambda a, f, files: a.add_contact(f.get("accountId", ""), f.get("contactId", ""),
                                                     f.get("email", ""), f.get("name", "")),
}
