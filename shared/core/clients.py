"""Process-wide Google clients, created on first use and reused.

Cold start matters for Cloud Functions: each client library is imported only
when a function first asks for its client, and the client lives as long as the
instance. The Firestore and Pub/Sub clients honour FIRESTORE_EMULATOR_HOST and
PUBSUB_EMULATOR_HOST by themselves; Secret Manager has no emulator, so locally
it talks REST to the Google simulator.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from shared.core.config import get_config
from shared.core.roundtrips import instrument

if TYPE_CHECKING:
    from google.cloud import firestore, secretmanager
    from google.cloud.pubsub import PublisherClient
    from google.pubsub_v1.services.publisher.client import PublisherClient as GapicPublisherClient

_lock = threading.Lock()


@lru_cache(maxsize=1)
def firestore_client() -> firestore.Client:
    from google.cloud import firestore  # lazy: Firestore library (cold start)

    with _lock:
        # metered: round trips, reads and writes per invocation (shared/core/roundtrips.py)
        client: firestore.Client = instrument(firestore.Client(project=get_config().project_id))
        return client


@lru_cache(maxsize=1)
def publisher() -> PublisherClient:
    from google.cloud.pubsub import PublisherClient, types  # lazy: Pub/Sub library (cold start)

    with _lock:
        # Events are few and latency matters more than batching for a live CRM UI.
        return PublisherClient(batch_settings=types.BatchSettings(max_latency=0.01))


@lru_cache(maxsize=1)
def event_publisher() -> GapicPublisherClient:
    """Pub/Sub's generated client alone, for callers that send their messages in one Publish request
    themselves (shared.core.events). The batching client above wraps this one; importing it as well costs
    about 55 ms more of an instance's cold start for a batcher such callers never use. It honours
    PUBSUB_EMULATOR_HOST by itself, as the batching client does."""
    from google.pubsub_v1.services.publisher.client import (  # lazy: Pub/Sub library (cold start)
        PublisherClient as Gapic,
    )

    with _lock:
        return Gapic()


@lru_cache(maxsize=1)
def secret_client() -> secretmanager.SecretManagerServiceClient:
    from google.cloud import secretmanager  # lazy: Secret Manager library (cold start)

    cfg = get_config()
    kwargs: dict[str, Any] = {}
    if cfg.secret_manager_endpoint:
        from google.auth.credentials import AnonymousCredentials  # lazy: google-auth (cold start)

        kwargs = {
            "transport": "rest",
            "client_options": {"api_endpoint": cfg.secret_manager_endpoint},
            "credentials": AnonymousCredentials(),
        }
    with _lock:
        return secretmanager.SecretManagerServiceClient(**kwargs)


def reset_clients() -> None:
    """Forget every cached client (tests that change the environment)."""
    for f in (firestore_client, publisher, event_publisher, secret_client):
        f.cache_clear()
