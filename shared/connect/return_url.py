"""Where the rep's browser goes back to: the CRM's `returnUrl`, allow-listed and signed into the state.

`/connect` checks the URL against RETURN_URL_ALLOWLIST; `/start` and
`/callback` trust a returnUrl only inside a state we signed, and check the list
again (it may have been tightened in between). The outcome is added to the
URL's query (`status=connected` or `status=error&reason=<code>`), keeping the
CRM's own parameters.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from shared.connect.errors import ReturnUrlRefused, StateRejected
from shared.connect.oauth_state import StateClaims, StateError, state_key, verify_state
from shared.core.config import get_config


def check_return_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c.isspace() for c in url):
        raise ReturnUrlRefused("returnUrl: must be an absolute http(s) URL", field="returnUrl")
    if not get_config().return_url_allowed(url):
        raise ReturnUrlRefused("returnUrl is not on the allow-list", code="return_url_not_allowed", field="returnUrl")
    return url


def trusted_claims(state: str) -> StateClaims:
    """The claims of a state we signed whose returnUrl is still allowed, or StateRejected."""
    try:
        claims = verify_state(state_key(), state)
    except StateError as err:
        raise StateRejected(f"OAuth state rejected: {err.message}", code=err.reason) from None
    if not get_config().return_url_allowed(claims.return_url):
        raise StateRejected("OAuth state rejected: returnUrl is no longer allowed")
    return claims


def outcome_location(return_url: str, reason: str) -> str:
    """`returnUrl` with `status=connected`, or `status=error&reason=<reason>`, in its query."""
    parts = urlsplit(return_url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in ("status", "reason")]
    query += [("status", "connected")] if reason == "connected" else [("status", "error"), ("reason", reason)]
    return urlunsplit(parts._replace(query=urlencode(query)))
