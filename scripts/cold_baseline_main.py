"""The cold-start baseline of scripts/bench_send.py: Cloud Functions that only import send_email's libraries.

Served by functions-framework exactly as send_email is (`--source` this file),
so both sides pay the same interpreter, functions-framework and server start.
`CLIENT_LIBS` is the list of the client libraries send_email imports on its
path (functions-framework imports Flask itself); the benchmark checks that a
first send imports every one of them.
"""

from __future__ import annotations

import importlib
from typing import Any

import functions_framework

CLIENT_LIBS = ("google.cloud.firestore", "google.pubsub_v1", "google.cloud.secretmanager",
               "googleapiclient.discovery", "googleapiclient.http", "google.oauth2.credentials",
               "google.auth.transport.requests", "google_auth_httplib2", "httplib2",
               "cryptography.hazmat.primitives.ciphers.aead")


@functions_framework.http
def baseline(request: Any) -> Any:
    """The libraries, imported on the first request as send_email imports them (lazily), and nothing else."""
    for name in CLIENT_LIBS:
        importlib.import_module(name)
    return "ok"


@functions_framework.http
def baseline_collector_paused(request: Any) -> Any:
    """The same with the garbage collector paused as send_email pauses it (like for like)."""
    from shared.core.coldstart import first_request

    with first_request("baseline"):
        for name in CLIENT_LIBS:
            importlib.import_module(name)
    return "ok"
