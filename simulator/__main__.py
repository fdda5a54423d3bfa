"""`python -m simulator --config PATH [--host 127.0.0.1] --port N`

Prints `simulator listening on http://HOST:PORT` once it accepts connections,
then serves until SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from simulator.app import create_app, serve
from simulator.config import SimConfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulator", description=__doc__)
    parser.add_argument("--config", help="JSON configuration (docs/SIMULATOR.md); defaults if omitted")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8089)
    args = parser.parse_args(argv)
    config = SimConfig.load(args.config) if args.config else SimConfig()
    app = create_app(config)
    server = serve(app, args.host, args.port)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(f"simulator listening on http://{args.host}:{server.server_port}", flush=True)
    server.serve_forever()
    app.extensions["sim"].notifier.stop()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
