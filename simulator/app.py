"""The simulator's Flask app and its threaded HTTP/1.1 server."""

from __future__ import annotations

import threading
from typing import Any

import flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from simulator.config import SimConfig
from simulator.context import SimContext


def create_app(config: SimConfig) -> flask.Flask:
    from simulator import admin, batch, gmail_api, oauth, secret_manager

    app = flask.Flask("simulator")
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["sim"] = SimContext.build(config)
    for bp in (gmail_api.bp, batch.bp, admin.bp, oauth.bp, secret_manager.bp):
        app.register_blueprint(bp)
    return app


class _Handler(WSGIRequestHandler):
    # Keep-alive: httplib2 (google-api-python-client) and requests reuse connections.
    protocol_version = "HTTP/1.1"

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # one line per request would cost more than the request itself


def serve(app: flask.Flask, host: str = "127.0.0.1", port: int = 0) -> BaseWSGIServer:
    """A threaded server for `app`, bound (port 0: a free one) but not yet serving."""
    return make_server(host, port, app, threaded=True, request_handler=_Handler)


class BackgroundServer:
    """The app served from a daemon thread (tests, benchmarks): `.url`, `.ctx`, `.stop()`."""

    def __init__(self, config: SimConfig, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = create_app(config)
        self.server = serve(self.app, host, port)
        self.url = f"http://{host}:{self.server.server_port}"
        self.ctx: SimContext = self.app.extensions["sim"]
        self._thread = threading.Thread(target=self.server.serve_forever, name="simulator", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.ctx.notifier.stop()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> BackgroundServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
