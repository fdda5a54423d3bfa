"""A CRM user's Auto BCC address and the route document that resolves it (R16, R16b).

The address is derived (shared/auto_bcc/address.py) from `oauth-state-key` and
(accountId, userId); the `auto_bcc` webhook resolves it through
`sync_auto_bcc/{token}` without the key. The connection transaction writes the
route for a connected user; `GET /status` writes it for a user who never
connected (an Outlook user, R16b), so every address `/status` gives out
resolves the same way.
"""

from __future__ import annotations

from shared.core import paths
from shared.core.models import AutoBccRoute


def route_for(account_id: str, user_id: str) -> tuple[AutoBccRoute, str]:
    """(route document, token): the one derivation of a user's address."""
    from shared.auto_bcc.address import auto_bcc_address, auto_bcc_token
    from shared.connect.oauth_state import state_key
    from shared.core.config import get_config

    token = auto_bcc_token(state_key(), account_id, user_id)
    address = auto_bcc_address(token, get_config().auto_bcc_domain)
    return AutoBccRoute(accountId=account_id, userId=user_id, address=address), token


def ensure_route(account_id: str, user_id: str) -> str:
    """The user's address, its route document created if absent (one read; a write only the first time)."""
    from google.api_core.exceptions import AlreadyExists

    from shared.core.clients import firestore_client

    route, token = route_for(account_id, user_id)
    ref = firestore_client().collection(paths.AUTO_BCC).document(token)
    if not ref.get().exists:
        try:
            ref.create(route.to_doc())
        except AlreadyExists:  # a concurrent /status or connect wrote the same document
            pass
    return route.address
