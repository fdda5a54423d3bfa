"""Structured JSON logs on stdout in Cloud Logging's format.

Cloud Logging parses one JSON object per line and lifts `severity` and
`message`; every other key becomes a searchable jsonPayload field. Callers pass
ids (accountId, mailboxId, gmailMessageId…) as keyword fields, never secrets or
message bodies: `redact()` strips the keys that must never reach a log.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

_FORBIDDEN = {
    "refresh_token", "refreshToken", "access_token", "accessToken", "token", "code", "code_verifier",
    "client_secret", "clientSecret", "password", "secret", "raw", "text", "html", "body", "contentBase64",
    "authorization", "Authorization", "state",
}
_lock = threading.Lock()


def redact(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: ("[redacted]" if k in _FORBIDDEN else v) for k, v in fields.items()}


def log(severity: str, message: str, **fields: Any) -> None:
    entry: dict[str, Any] = {"severity": severity, "message": message, "time": _now()}
    entry.update(redact(fields))
    line = json.dumps(entry, default=str, ensure_ascii=False)
    with _lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def _now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


def debug(message: str, **fields: Any) -> None:
    log("DEBUG", message, **fields)


def info(message: str, **fields: Any) -> None:
    log("INFO", message, **fields)


def warning(message: str, **fields: Any) -> None:
    log("WARNING", message, **fields)


def error(message: str, **fields: Any) -> None:
    log("ERROR", message, **fields)
