"""An instance's first send: its libraries, clients and secrets, in an order that overlaps network and CPU.

Importing the Google client libraries is most of a cold start, and it is CPU
work: two threads importing at once only contend (for the GIL and the import
locks), so it is done by one thread at a time. What can overlap with it are
the first request's network waits. So: Secret Manager's library first, then
its three reads go out in the background (SPEC: first-request secret reads in
parallel) while this thread imports Firestore's; the libraries the send needs
later are imported by one background thread while the request waits for
Firestore, in the order the send needs them: google-auth's token transport and
Gmail's discovery client first (the send waits for them past its reserve
commit, `gmail_ready`), then Cloud Storage's (R32: the log keeps the message
whole right after Gmail's answer), Pub/Sub and its channel last, while the send waits for
Gmail and its log commit (the event's publish waits for it, `ready`), so
Pub/Sub's import delays only the event, not Gmail's send.
"""

from __future__ import annotations

import importlib
import threading

from shared.core import log, secrets
from shared.core.clients import event_publisher, firestore_client, secret_client
from shared.gmail.service import warm_connection
from shared.storage.objects import configured

_lock = threading.Lock()
_started = False
_rest: threading.Thread | None = None
_gmail = threading.Event()


def start(secret_names: list[str]) -> None:
    """On an instance's first request (a no-op after): returns once the secrets are read."""
    global _started, _rest
    if _started:
        return
    with _lock:
        if _started:
            return
        secret_client()  # Secret Manager's library and client
        reads = threading.Thread(target=secrets.prefetch, args=(secret_names,), name="warmup-secrets")
        reads.start()
        firestore_client()  # Firestore's library, while the secrets are on their way
        _rest = threading.Thread(target=_later_libraries, name="warmup-libraries", daemon=True)
        _rest.start()
        reads.join()
        _started = True


def gmail_ready() -> None:
    """Wait for the token transport and the Gmail client (at once when they are there or never started)."""
    if _rest is not None:
        _gmail.wait()


def ready() -> None:
    """Wait for every background import, Pub/Sub's last (returns at once when there are none left)."""
    rest = _rest
    if rest is not None:
        rest.join()


def pending() -> bool:
    rest = _rest
    return rest is not None and rest.is_alive()


def _later_libraries() -> None:
    try:
        import google.auth.transport.requests  # noqa: F401  # lazy: the warm-up's point (the token refresh)

        warm_connection()
    except Exception as exc:  # each is built again where it is used; this only saved time
        log.warning("warm-up incomplete", error=type(exc).__name__)
    finally:
        _gmail.set()
    try:  # R32: the log keeps the message whole in Cloud Storage right after Gmail's answer
        if configured():
            importlib.import_module("google.cloud.storage")  # the warm-up's point (the log's object write)
    except Exception as exc:
        log.warning("warm-up incomplete", error=type(exc).__name__)
    try:
        _open_pubsub()
    except Exception as exc:
        log.warning("warm-up incomplete", error=type(exc).__name__)


def _open_pubsub() -> None:
    """Build the Pub/Sub client and open its channel, so the event's Publish does not wait for the
    connection (in production a TLS handshake)."""
    import grpc  # lazy: gRPC (cold start)

    try:
        # the generated client's gRPC transport, the only one it is built with
        channel = event_publisher().transport.grpc_channel  # type: ignore[attr-defined]
        grpc.channel_ready_future(channel).result(timeout=5)
    except grpc.FutureTimeoutError:
        log.warning("Pub/Sub channel not ready yet; the event's Publish will connect")
