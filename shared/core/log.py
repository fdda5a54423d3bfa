"""Structured JSON logs on stdout in Cloud Logging's format, on the stdlib `logging` module.

Cloud Logging parses one JSON object per line and lifts `severity` and
`message`; every other key becomes a searchable jsonPayload field, and
`logging.googleapis.com/labels.execution_id` ties a line to its invocation.
Built on `logging` so that levels filter (`LOG_LEVEL`, default INFO: the
sync's per-message DEBUG lines stay off in production) and warnings of the
client libraries come out structured too. Callers pass ids (accountId,
mailboxId, gmailMessageId…) as keyword fields, never secrets or message
bodies: `redact()` strips the keys that must never reach a log.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from typing import Any

_FORBIDDEN = {
    "refresh_token", "refreshToken", "access_token", "accessToken", "token", "code", "code_verifier",
    "client_secret", "clientSecret", "password", "secret", "raw", "text", "html", "body", "contentBase64",
    "authorization", "Authorization", "state",
}
_SEVERITY = {logging.DEBUG: "DEBUG", logging.INFO: "INFO", logging.WARNING: "WARNING",
             logging.ERROR: "ERROR", logging.CRITICAL: "CRITICAL"}
_FIELDS_ATTR = "structured_fields"
LOGGER_NAME = "gmail_crm_sync"
EXECUTION_ID_LABEL = "logging.googleapis.com/labels"

_setup_lock = threading.Lock()
_logger: logging.Logger | None = None


def redact(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: ("[redacted]" if k in _FORBIDDEN else v) for k, v in fields.items()}


def _execution_id() -> str | None:
    """functions-framework's id for the current request, when it set one (HTTP and CloudEvent)."""
    mod = sys.modules.get("functions_framework.execution_id")
    if mod is None:
        return None
    try:
        ctx = mod._get_current_context()
    except Exception:  # outside a request (RuntimeError from flask), or a framework change
        return None
    return getattr(ctx, "execution_id", None) if ctx is not None else None


class CloudLoggingFormatter(logging.Formatter):
    """One JSON object per record: severity, message, time, logger, fields, execution id."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": _SEVERITY.get(record.levelno, record.levelname),
            "message": record.getMessage(),
            "time": _iso(record.created),
        }
        if record.name != LOGGER_NAME:
            entry["logger"] = record.name
        entry.update(redact(getattr(record, _FIELDS_ATTR, None) or {}))
        if record.exc_info and record.exc_info[0] is not None:
            entry["error"] = record.exc_info[0].__name__  # the type only: tracebacks may quote bodies
        execution_id = _execution_id()
        if execution_id:
            entry[EXECUTION_ID_LABEL] = {"execution_id": execution_id}
        return json.dumps(entry, default=str, ensure_ascii=False)


class _StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stdout is now (tests and functions-framework swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stdout
        super().emit(record)


def logger() -> logging.Logger:
    """The project's logger; the first call installs the JSON handler on the root logger."""
    global _logger
    if _logger is not None:
        return _logger
    with _setup_lock:
        if _logger is None:
            root = logging.getLogger()
            if not any(isinstance(h, _StdoutHandler) for h in root.handlers):
                handler = _StdoutHandler()
                handler.setFormatter(CloudLoggingFormatter())
                root.addHandler(handler)
            if root.level == logging.NOTSET or root.level > logging.WARNING:
                root.setLevel(logging.WARNING)  # libraries: warnings and up
            own = logging.getLogger(LOGGER_NAME)
            own.setLevel(os.environ.get("LOG_LEVEL", "INFO").upper())
            _logger = own
    assert _logger is not None
    return _logger


def log(severity: str, message: str, **fields: Any) -> None:
    level = logging.getLevelName(severity.upper())
    logger().log(level if isinstance(level, int) else logging.INFO, message, extra={_FIELDS_ATTR: fields})


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


def debug(message: str, **fields: Any) -> None:
    log("DEBUG", message, **fields)


def info(message: str, **fields: Any) -> None:
    log("INFO", message, **fields)


def warning(message: str, **fields: Any) -> None:
    log("WARNING", message, **fields)


def error(message: str, **fields: Any) -> None:
    log("ERROR", message, **fields)
