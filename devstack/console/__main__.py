"""`python -m devstack.console --endpoints .devstack/endpoints.json [--port 8090]`: serve the console.

`make up` starts it with the stack (devstack/stack.py); it can also be started
on its own against a running stack's endpoints file. Served by cheroot (a
kept, threaded WSGI server: one thread per open event stream) on loopback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

DEFAULT_PORT = 8090
THREADS = 24  # each open page holds one for its event stream


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devstack.console", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoints", type=Path, required=True, help="the stack's endpoints.json")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    data = json.loads(args.endpoints.read_text())

    from devstack.console.actions import StackEndpoints

    endpoints = StackEndpoints.from_json(data)
    # The Google clients read the emulator hosts from the environment when they are built.
    os.environ.update({"FIRESTORE_EMULATOR_HOST": endpoints.firestore, "PUBSUB_EMULATOR_HOST": endpoints.pubsub,
                       "GOOGLE_CLOUD_PROJECT": endpoints.project_id})

    from cheroot import wsgi
    from google.cloud import firestore

    from devstack.console.actions import Actions
    from devstack.console.app import create_app
    from devstack.console.feed import EventFeed

    own_url = f"http://{args.host}:{args.port}"
    feed = EventFeed(endpoints.pubsub, endpoints.project_id).start()
    app = create_app(Actions(endpoints, firestore.Client(project=endpoints.project_id)), feed, own_url)
    server = wsgi.Server((args.host, args.port), app, numthreads=THREADS, server_name="devstack-console")
    server.prepare()
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    threading.Thread(target=server.serve, name="console-http", daemon=True).start()
    print(f"console listening on {own_url}", flush=True)
    stop.wait()
    feed.close()  # ends the open event streams, so the server's threads can finish
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
