"""`python -m devstack up`: the local stack in the foreground (what `make up` runs).

Starts everything, writes <run-dir>/endpoints.json, prints where things are,
and on Ctrl-C, SIGTERM or SIGHUP stops every part it started (each in its own
process group, so the emulators' Java children go too) before exiting.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from devstack.functions import FUNCTION_NAMES, REPO_ROOT
from devstack.procs import StartupError
from devstack.stack import DEFAULT_PROJECT, Stack, StackSettings

DEFAULT_PORTS = {"firestore": 8086, "pubsub": 8085, "storage": 8084, "simulator": 8089, "console": 8090,
                 "functions": 8091}


class _Shutdown(Exception):
    """Raised from the signal handler to unwind into the cleanup path."""


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the local stack in the foreground")
    up.add_argument("--project", default=os.environ.get("DEVSTACK_PROJECT", DEFAULT_PROJECT))
    up.add_argument("--run-dir", type=Path,
                    default=Path(os.environ.get("DEVSTACK_RUN_DIR", REPO_ROOT / ".devstack")),
                    help="where endpoints.json, logs/ and the simulator config go (default .devstack/)")
    up.add_argument("--firestore-port", type=int,
                    default=_env_int("DEVSTACK_FIRESTORE_PORT", DEFAULT_PORTS["firestore"]))
    up.add_argument("--pubsub-port", type=int,
                    default=_env_int("DEVSTACK_PUBSUB_PORT", DEFAULT_PORTS["pubsub"]))
    up.add_argument("--storage-port", type=int,
                    default=_env_int("DEVSTACK_STORAGE_PORT", DEFAULT_PORTS["storage"]),
                    help="the Cloud Storage emulator (fake-gcs-server)")
    up.add_argument("--simulator-port", type=int,
                    default=_env_int("DEVSTACK_SIMULATOR_PORT", DEFAULT_PORTS["simulator"]))
    up.add_argument("--console-port", type=int,
                    default=_env_int("DEVSTACK_CONSOLE_PORT", DEFAULT_PORTS["console"]),
                    help="the developer console (0: any free port)")
    up.add_argument("--functions-port", type=int,
                    default=_env_int("DEVSTACK_FUNCTIONS_PORT", DEFAULT_PORTS["functions"]),
                    help=f"first of {len(FUNCTION_NAMES)} consecutive ports: " + ", ".join(FUNCTION_NAMES)
                    + " (0: any free ports)")
    up.add_argument("--timeout", type=float, default=55.0, help="seconds to wait for the stack to be ready")
    return parser.parse_args(argv)


def settings_from_args(args: argparse.Namespace) -> StackSettings:
    base = args.functions_port
    return StackSettings(
        project_id=args.project,
        firestore_port=args.firestore_port,
        pubsub_port=args.pubsub_port,
        simulator_port=args.simulator_port,
        storage_port=args.storage_port,
        console=True,
        console_port=args.console_port,
        function_ports={name: (base + i if base else 0) for i, name in enumerate(FUNCTION_NAMES)},
        run_dir=args.run_dir.resolve(),
        ready_timeout=args.timeout,
    )


def status_text(stack: Stack, endpoints_path: Path) -> str:
    e = stack.endpoints
    lines = [
        f"Local stack is up in {stack.started_in:.1f} s (project {e['projectId']}).",
        "  (ready after: " + ", ".join(f"{part} {t:.1f} s" for part, t in stack.ready_after.items()) + ")",
        f"  Firestore emulator  {e['firestore']}",
        f"  Pub/Sub emulator    {e['pubsub']}",
        f"  Google simulator    {e['google']}  (admin API under /sim/)",
        f"  Developer console   {e['console']}" if "console" in e else "  (no developer console)",
    ]
    lines += [f"  function {name:<11} {url}" for name, url in e["functions"].items()]
    lines += [
        f"Endpoints, API keys and the OAuth client: {endpoints_path}",
        f"Logs: {stack.log_dir}/",
        "Press Ctrl-C to stop everything.",
    ]
    return "\n".join(lines)


def up(args: argparse.Namespace) -> int:
    def on_signal(signum: int, _frame: FrameType | None) -> None:
        raise _Shutdown(signal.Signals(signum).name)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)

    settings = settings_from_args(args)
    assert settings.run_dir is not None
    endpoints_path = settings.run_dir / "endpoints.json"
    with contextlib.suppress(FileNotFoundError):
        endpoints_path.unlink()  # a stale file from an earlier run would point at dead ports
    stack = Stack(settings)
    print(f"Starting the local stack (logs in {stack.log_dir}/) …", flush=True)
    code = 0
    try:
        stack.start()
        stack.write_endpoints(endpoints_path)
        print(status_text(stack, endpoints_path), flush=True)
        while True:
            dead = stack.dead_parts()
            if dead:
                print(f"Stopping: {', '.join(dead)} exited unexpectedly (see {stack.log_dir}/).",
                      file=sys.stderr, flush=True)
                code = 1
                break
            time.sleep(0.5)
    except _Shutdown as exc:
        print(f"\nReceived {exc}; stopping the local stack …", flush=True)
    except StartupError as exc:
        print(f"The local stack did not start.\n{exc}", file=sys.stderr, flush=True)
        code = 1
    finally:
        # A second Ctrl-C must not interrupt the cleanup and leave processes behind.
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        stack.stop()
        with contextlib.suppress(FileNotFoundError):
            endpoints_path.unlink()
    print("Local stack stopped.", flush=True)
    return code


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.command == "up":
        return up(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
