"""Firestore triggers for the local stack: the emulator's listen stream → CloudEvents to functions.

In production, Eventarc delivers `google.cloud.firestore.document.v1.written`
CloudEvents for document writes matching a path pattern (deploy.sh's
`contacts_index`). The emulator has no triggers, so this small process does
their job the way the Pub/Sub emulator's push subscriptions do for the other
functions: it listens (Firestore's Listen API, through the client's
`on_snapshot` on a collection-group query) and POSTs, for every created,
changed or deleted matching document, a CloudEvent in binary content mode with
the attributes Firestore's trigger sets (`type`, `source`, `subject`
`documents/<path>`, and the extensions `database`, `namespace`, `document`,
`location`, `project`). The data is JSON (`{"value"|"oldValue": {"name"}}`):
the receiving function reads the document itself. A failed delivery is retried
with backoff, like a trigger deployed with `--retry`.

Usage: python -m devstack.firestore_triggers --project P --health-port N
           --route 'accounts/{accountId}/contacts/{contactId}=http://127.0.0.1:PORT/'
Ready (GET /health answers 200) once every listen stream has its first snapshot.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import queue
import re
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

EVENT_TYPE = "google.cloud.firestore.document.v1.written"
DELIVERY_ATTEMPTS = 12
MAX_BACKOFF_SECONDS = 5.0


@dataclass(frozen=True)
class Route:
    pattern: str  # e.g. accounts/{accountId}/contacts/{contactId}
    url: str

    @property
    def collection_id(self) -> str:
        return self.pattern.split("/")[-2]

    def matches(self, path: str) -> bool:
        regex = "^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(self.pattern)) + "$"
        return re.match(regex, path) is not None


def parse_route(text: str) -> Route:
    pattern, sep, url = text.partition("=")
    parts = pattern.strip("/").split("/")
    if not sep or not url or len(parts) % 2:
        raise argparse.ArgumentTypeError(f"--route wants 'coll/{{id}}/…/{{id}}=URL', got {text!r}")
    return Route(pattern.strip("/"), url)


def cloud_event(project: str, path: str, deleted: bool, at: datetime) -> tuple[dict[str, str], bytes]:
    """Headers and body of the CloudEvent Firestore's trigger sends for a write of `path`."""
    name = f"projects/{project}/databases/(default)/documents/{path}"
    stamp = at.isoformat().replace("+00:00", "Z")
    headers = {
        "Content-Type": "application/json",
        "ce-specversion": "1.0",
        "ce-id": hashlib.sha256(f"{path}\x00{stamp}\x00{deleted}".encode()).hexdigest()[:32],
        "ce-type": EVENT_TYPE,
        "ce-source": f"//firestore.googleapis.com/projects/{project}/databases/(default)",
        "ce-subject": f"documents/{path}",
        "ce-time": stamp,
        "ce-database": "(default)",
        "ce-namespace": "(default)",
        "ce-document": path,
        "ce-location": "nam5",
        "ce-project": project,
    }
    body = {"oldValue": {"name": name}} if deleted else {"value": {"name": name}}
    return headers, json.dumps(body).encode("utf-8")


class Feeder:
    def __init__(self, project: str, routes: list[Route]) -> None:
        self.project = project
        self.routes = routes
        self.outbox: queue.Queue[tuple[Route, str, bool, datetime]] = queue.Queue()
        self.ready = threading.Event()
        self._first: set[str] = set()
        self._watches: list[Any] = []

    def start(self) -> None:
        from google.cloud import firestore

        client = firestore.Client(project=self.project)
        for route in self.routes:
            query = client.collection_group(route.collection_id)
            self._watches.append(query.on_snapshot(self._callback(route)))
        threading.Thread(target=self._deliver_forever, name="deliver", daemon=True).start()

    def _callback(self, route: Route) -> Any:
        def on_snapshot(_docs: Any, changes: Any, read_time: Any) -> None:
            if route.pattern not in self._first:
                # The first snapshot lists what exists already: a trigger fires only for new writes.
                self._first.add(route.pattern)
                if len(self._first) == len(self.routes):
                    self.ready.set()
                return
            at = read_time if isinstance(read_time, datetime) else datetime.now(UTC)
            for change in changes:
                path = change.document.reference.path
                if route.matches(path):
                    self.outbox.put((route, path, change.type.name == "REMOVED", at))

        return on_snapshot

    def _deliver_forever(self) -> None:
        while True:
            route, path, deleted, at = self.outbox.get()
            headers, body = cloud_event(self.project, path, deleted, at)
            for attempt in range(DELIVERY_ATTEMPTS):
                try:
                    req = urllib.request.Request(route.url, data=body, headers=headers, method="POST")
                    with urllib.request.urlopen(req, timeout=60) as resp:
                        if resp.status < 300:
                            break
                except (urllib.error.URLError, OSError) as exc:
                    print(f"delivery of {path} failed ({exc}); attempt {attempt + 1}", file=sys.stderr, flush=True)
                time.sleep(min(MAX_BACKOFF_SECONDS, 0.1 * 2 ** attempt))
            else:
                print(f"gave up delivering {path}", file=sys.stderr, flush=True)


def serve_health(feeder: Feeder, port: int, host: str) -> ThreadingHTTPServer:
    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            ok = feeder.ready.is_set()
            self.send_response(200 if ok else 503)
            self.end_headers()
            self.wfile.write(b"ok" if ok else b"listening not started")

        def log_message(self, *_args: Any) -> None:
            return

    server = ThreadingHTTPServer((host, port), Health)
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    return server


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--project", required=True)
    ap.add_argument("--route", action="append", type=parse_route, required=True)
    ap.add_argument("--health-port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    args = ap.parse_args(argv)
    feeder = Feeder(args.project, args.route)
    serve_health(feeder, args.health_port, args.host)
    feeder.start()
    print(f"firestore triggers: {', '.join(r.pattern for r in args.route)}", flush=True)
    threading.Event().wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
