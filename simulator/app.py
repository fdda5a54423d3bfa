"""The simulator's Flask app, served by cheroot (a kept WSGI server with HTTP/1.1 keep-alive)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import flask

from simulator.config import SimConfig
from simulator.context import SimContext

# A worker thread serves one request at a time; an idle keep-alive connection waits in cheroot's
# selector, not in a thread. Injected latency faults sleep in the worker, so the pool is wider
# than the CPUs: a slow call must not hold up the calls of other mailboxes.
WORKER_THREADS = 32
IDLE_TIMEOUT_SECONDS = 120  # an idle keep-alive connection is closed after this long
# Above Gmail's own upload limit (36,700,160 bytes, answered 413 in Google's JSON by gmail_api)
# plus multipart and base64 overhead: only a body beyond any Gmail request is cut off by the server.
MAX_REQUEST_BODY_BYTES = 64 * 1024 * 1024


def create_app(config: SimConfig) -> flask.Flask:
    from simulator import admin, batch, gmail_api, oauth, secret_manager, send_as

    app = flask.Flask("simulator")
    app.json.sort_keys = False  # type: ignore[attr-defined]
    context = SimContext.build(config)
    app.extensions["sim"] = context
    for bp in (batch.bp, admin.bp, oauth.bp, secret_manager.bp, send_as.bp):
        app.register_blueprint(bp)
    flask_app = app.wsgi_app

    def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        # Gmail calls are the simulator's hot path (1,000+/s): served without Flask's per-request work.
        if environ.get("PATH_INFO", "").startswith(gmail_api.PREFIXES):
            return gmail_api.wsgi(context, environ, start_response)
        return flask_app(environ, start_response)

    app.wsgi_app = wsgi_app  # type: ignore[method-assign]
    return app


class Server:
    """cheroot's WSGI server for `app`, bound on construction (port 0: a free one), serving on `serve_forever`.

    Not werkzeug's development server: it closes every connection, and a new TCP
    connection per request costs more than the request. cheroot keeps
    connections alive, decodes chunked request bodies (`wsgi.input_terminated`)
    and answers 100-continue, which the Google clients rely on.
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        from cheroot import wsgi

        self._server = wsgi.Server(
            (host, port),
            app,
            numthreads=WORKER_THREADS,
            server_name=host,
            request_queue_size=256,
            timeout=IDLE_TIMEOUT_SECONDS,
            shutdown_timeout=2,
        )
        self._server.max_request_body_size = MAX_REQUEST_BODY_BYTES
        # cheroot keeps at most 10 idle keep-alive connections by default and answers "Connection: close"
        # past that; the local stack's functions and workers hold many more, each reusing its own.
        self._server.keep_alive_conn_limit = None  # type: ignore[assignment]  # None: no limit (cheroot docs)
        self._server.prepare()  # binds and listens: clients may connect from now on
        self.server_port: int = self._server.bind_addr[1]
        self._stopping = threading.Event()
        self._stopped = threading.Event()

    def serve_forever(self) -> None:
        self._server.serve()
        if self._stopping.is_set():
            # cheroot's serve() returns as soon as stop() begins; the worker threads are not daemons, so
            # the process would wait on them if it exited before stop() (in another thread) ended them.
            self._stopped.wait(timeout=10)

    def shutdown(self) -> None:
        self._stopping.set()
        try:
            self._server.stop()
        finally:
            self._stopped.set()

    def server_close(self) -> None:
        """Kept for callers of the former http.server API: `shutdown` already closed the socket."""


def serve(app: flask.Flask, host: str = "127.0.0.1", port: int = 0) -> Server:
    """A keep-alive server for `app`, bound (port 0: a free one) but not yet serving."""
    return Server(app, host, port)


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
        self._thread.join(timeout=10)

    def __enter__(self) -> BackgroundServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
