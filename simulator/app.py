"""The simulator's Flask app and its threaded HTTP/1.1 keep-alive server."""

from __future__ import annotations

import io
import socket
import sys
import threading
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import flask

from simulator.config import SimConfig
from simulator.context import SimContext


def create_app(config: SimConfig) -> flask.Flask:
    from simulator import admin, batch, gmail_api, oauth, secret_manager

    app = flask.Flask("simulator")
    app.json.sort_keys = False  # type: ignore[attr-defined]
    context = SimContext.build(config)
    app.extensions["sim"] = context
    for bp in (batch.bp, admin.bp, oauth.bp, secret_manager.bp):
        app.register_blueprint(bp)
    flask_app = app.wsgi_app

    def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        # Gmail calls are the simulator's hot path (500+/s): served without Flask's per-request work.
        if environ.get("PATH_INFO", "").startswith(gmail_api.PREFIXES):
            return gmail_api.wsgi(context, environ, start_response)
        return flask_app(environ, start_response)

    app.wsgi_app = wsgi_app  # type: ignore[method-assign]
    return app


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive in front of the WSGI app.

    Not werkzeug's server: since werkzeug 2.1 it closes every connection
    ("Connection: close"), and a new TCP connection and thread per request
    cost more than the request itself. httplib2 (google-api-python-client)
    and requests reuse connections, so this handler serves many requests
    per connection: the request body is always read in full (Content-Length
    or chunked) and every answer carries Content-Length.
    """

    protocol_version = "HTTP/1.1"
    timeout = 120  # an idle keep-alive connection is closed after this many seconds
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per request would cost more than the request itself

    def _body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _environ(self, body: bytes) -> dict[str, Any]:
        path, _, query = self.path.partition("?")
        environ: dict[str, Any] = {
            "REQUEST_METHOD": self.command,
            "SCRIPT_NAME": "",
            "PATH_INFO": urllib.parse.unquote(path, "latin-1"),
            "QUERY_STRING": query,
            "SERVER_NAME": self.server.server_address[0],
            "SERVER_PORT": str(self.server.server_address[1]),
            "SERVER_PROTOCOL": self.request_version,
            "REMOTE_ADDR": self.client_address[0],
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.input_terminated": True,
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        if self.headers.get("Content-Type"):
            environ["CONTENT_TYPE"] = self.headers["Content-Type"]
        for name, value in self.headers.items():
            key = "HTTP_" + name.upper().replace("-", "_")
            if key not in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
                environ[key] = f"{environ[key]},{value}" if key in environ else value
        return environ

    def _serve(self) -> None:
        body = self._body()
        status_headers: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status_headers[:] = [status, headers]
            return lambda data: None

        result = self.server.app(self._environ(body), start_response)
        try:
            payload = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        status, headers = status_headers
        lines = [f"HTTP/1.1 {status}"]
        lines += [f"{k}: {v}" for k, v in headers if k.lower() not in ("content-length", "connection")]
        lines.append(f"Content-Length: {len(payload)}")
        if self.close_connection:
            lines.append("Connection: close")
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], app: Any) -> None:
        super().__init__(address, _Handler)
        self.app = app


def serve(app: flask.Flask, host: str = "127.0.0.1", port: int = 0) -> _Server:
    """A threaded keep-alive server for `app`, bound (port 0: a free one) but not yet serving."""
    return _Server((host, port), app)


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
