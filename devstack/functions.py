"""Serving a Cloud Function locally under functions-framework.

The stack serves the real entry points of `main.py` from the repository root,
exactly as they are deployed; tests may serve their own small targets (any
`source` file) with the same helper.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

from devstack.procs import ManagedProcess, tcp_ready

REPO_ROOT = Path(__file__).resolve().parent.parent
FUNCTION_NAMES = ("oauth", "gmail_push", "send_email", "quota_reset", "auto_bcc", "oauth_browser", "attachments",
                  "contacts_index", "messages")
LOCAL_RETURN_URL_ALLOWLIST = "http://localhost:*/,http://127.0.0.1:*/"
LOCAL_AUTO_BCC_DOMAIN = "bcc.localhost"
LOCAL_AUTO_BCC_RATE_PER_MINUTE = "100000"


def function_command(target: str, port: int, source: Path, host: str = "127.0.0.1") -> list[str]:
    return [
        sys.executable, "-m", "functions_framework",
        "--source", str(source), "--target", target, "--host", host, "--port", str(port),
    ]


def serve_function(
    name: str,
    target: str,
    port: int,
    log_dir: Path,
    env: Mapping[str, str],
    source: Path | None = None,
    host: str = "127.0.0.1",
    ready_timeout: float = 30.0,
    wait: bool = True,
) -> ManagedProcess:
    """Start `target` from `source` (default: the repo's main.py) and wait until its port answers.

    `env` is the process's whole environment (the stack passes one without any
    inherited Google endpoints). The function module itself may not exist yet: main.py imports it on first
    call, so the server still starts (and answers 500 for that function).
    """
    src = source or REPO_ROOT / "main.py"
    full_env = {**env, "PYTHONUNBUFFERED": "1"}
    proc = ManagedProcess(
        name=f"function {name}",
        argv=function_command(target, port, src, host),
        log_path=log_dir / f"function-{name}.log",
        env=full_env,
        cwd=REPO_ROOT,
    ).start()
    if wait:
        proc.wait_ready(tcp_ready(host, port), ready_timeout, f"port {port}")
    return proc
