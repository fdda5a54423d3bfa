"""One configuration object read from the environment.

The same code runs against Google in production and against the local stack
(emulators + Google simulator) here; only these values differ.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import urlsplit

from shared.core.url_allowlist import UrlRule, parse_allowlist, url_allowed

GMAIL_READONLY = "https://www.googleapis.com/auth/gmail.readonly"
GMAIL_MODIFY = "https://www.googleapis.com/auth/gmail.modify"  # 0.3 (R33): read, and change labels and trash
GMAIL_FULL = "https://mail.google.com/"
GMAIL_SEND = "https://www.googleapis.com/auth/gmail.send"
# What connect asks for (R1, R33). gmail.modify includes reading; a connection made before 0.3 holds
# gmail.readonly instead, keeps syncing, and reports gmail.modify in GET /status `missingScopes`.
REQUIRED_SCOPES: tuple[str, ...] = (GMAIL_MODIFY, GMAIL_SEND)


class ConfigError(RuntimeError):
    """A required setting is missing or malformed."""


def _quota_model(name: str) -> str:
    if name not in ("2026", "legacy"):
        raise ValueError(f"GMAIL_QUOTA_MODEL must be 2026 or legacy, not {name!r}")
    return name


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


@dataclass(frozen=True)
class Config:
    project_id: str
    gmail_api_root: str = "https://gmail.googleapis.com/"
    oauth_auth_uri: str = "https://accounts.google.com/o/oauth2/v2/auth"
    oauth_token_uri: str = "https://oauth2.googleapis.com/token"
    oauth_revoke_uri: str = "https://oauth2.googleapis.com/revoke"
    secret_manager_endpoint: str | None = None
    oauth_redirect_uri: str | None = None
    return_url_allowlist: tuple[str, ...] = ("https://",)
    gmail_watch_topic: str = "gmail-watch"
    crm_events_topic: str = "crm-events"
    daily_tick_topic: str = "daily-tick"
    daily_send_limit: int = 500
    send_limit_timezone: str = "UTC"
    auto_bcc_domain: str = "bcc.example.invalid"
    auto_bcc_authserv_id: str | None = None  # the inbound relay's authserv-id (its Authentication-Results)
    auto_bcc_rate_per_minute: int = 30  # copies per Auto BCC address per minute
    sync_lease_seconds: int = 60
    sync_stale_seconds: int = 180
    gmail_retry_budget_seconds: float = 20.0
    send_lease_seconds: float = 120.0
    quota_reset_budget_seconds: float = 50.0
    sync_max_pass_seconds: float = 200.0
    # issue 11 (scale): the sync's control path and its ticks; the soak shortens them together
    sync_control_topic: str = "sync-control"
    sync_deadline_seconds: float = 240.0
    sync_sweep_seconds: int = 1800
    sync_sweep_shards: int = 16
    watch_renew_within_seconds: int = 172800
    gmail_quota_model: str = "2026"  # Gmail's limits for projects since May 2026 (shared/gmail/pacing.py)
    gmail_user_units_per_second: float | None = None  # None: 90 % of the model's per-user limit
    sync_users_cache_seconds: float = 300.0
    secret_ttl_seconds: float = 60.0
    emulate_ttl: bool = False
    local_stack: bool = False
    storage_bucket: str | None = None  # R32: the mail bucket (bodies, attachment bytes); unset: not kept
    _allow: tuple[UrlRule, ...] = field(default=(), repr=False, compare=False)

    def topic_path(self, short_name: str) -> str:
        return f"projects/{self.project_id}/topics/{short_name}"

    @property
    def gmail_watch_topic_path(self) -> str:
        return self.topic_path(self.gmail_watch_topic)

    @property
    def oauth_start_uri(self) -> str | None:
        """`<oauth_browser>/start` (R24): it sits next to the redirect URI's `/callback` on one public function,
        so the session cookie it sets is sent back to the callback."""
        uri = self.oauth_redirect_uri
        if not uri or not uri.endswith("/callback"):
            return None
        return uri[: -len("callback")] + "start"

    @property
    def oauth_cookies_secure(self) -> bool:
        """Session cookies are `Secure` unless the callback is plain http on this machine (the local stack)."""
        parts = urlsplit(self.oauth_redirect_uri or "")
        return not (parts.scheme == "http" and parts.hostname in ("localhost", "127.0.0.1", "::1"))

    @property
    def sync_control_topic_path(self) -> str:
        return self.topic_path(self.sync_control_topic)

    def return_url_allowed(self, url: str) -> bool:
        """By scheme, host, port and path prefix (shared/core/url_allowlist.py), never a regex search."""
        rules = self._allow or parse_allowlist(",".join(self.return_url_allowlist))
        return url_allowed(rules, url)

    @classmethod
    def from_env(cls) -> Config:
        project = _env("GOOGLE_CLOUD_PROJECT") or _env("GCP_PROJECT")
        if not project:
            raise ConfigError("GOOGLE_CLOUD_PROJECT is not set")
        sim = _env("GOOGLE_SIMULATOR_URL")
        sim = sim.rstrip("/") if sim else None

        def endpoint(name: str, sim_path: str, default: str | None) -> str | None:
            return _env(name) or (f"{sim}{sim_path}" if sim else default)

        allow = tuple(p.strip() for p in (_env("RETURN_URL_ALLOWLIST", "https://") or "").split(",") if p.strip())
        try:
            return cls(
                project_id=project,
                gmail_api_root=endpoint("GMAIL_API_ROOT", "/", "https://gmail.googleapis.com/") or "",
                oauth_auth_uri=endpoint("OAUTH_AUTH_URI", "/o/oauth2/v2/auth", cls.oauth_auth_uri) or "",
                oauth_token_uri=endpoint("OAUTH_TOKEN_URI", "/token", cls.oauth_token_uri) or "",
                oauth_revoke_uri=endpoint("OAUTH_REVOKE_URI", "/revoke", cls.oauth_revoke_uri) or "",
                secret_manager_endpoint=endpoint("SECRET_MANAGER_ENDPOINT", "", None),
                oauth_redirect_uri=_env("OAUTH_REDIRECT_URI"),
                return_url_allowlist=allow,
                gmail_watch_topic=_env("GMAIL_WATCH_TOPIC", "gmail-watch") or "gmail-watch",
                crm_events_topic=_env("CRM_EVENTS_TOPIC", "crm-events") or "crm-events",
                daily_tick_topic=_env("DAILY_TICK_TOPIC", "daily-tick") or "daily-tick",
                daily_send_limit=int(_env("DAILY_SEND_LIMIT", "500") or 500),
                send_limit_timezone=_env("SEND_LIMIT_TIMEZONE", "UTC") or "UTC",
                auto_bcc_domain=_env("AUTO_BCC_DOMAIN", "bcc.example.invalid") or "",
                auto_bcc_authserv_id=_env("AUTO_BCC_AUTHSERV_ID"),
                auto_bcc_rate_per_minute=max(1, int(_env("AUTO_BCC_RATE_PER_MINUTE", "30") or 30)),
                sync_lease_seconds=int(_env("SYNC_LEASE_SECONDS", "60") or 60),
                sync_stale_seconds=int(_env("SYNC_STALE_SECONDS", "180") or 180),
                gmail_retry_budget_seconds=float(_env("GMAIL_RETRY_BUDGET_SECONDS", "20") or 20),
                send_lease_seconds=float(_env("SEND_LEASE_SECONDS", "120") or 120),
                quota_reset_budget_seconds=float(_env("QUOTA_RESET_BUDGET_SECONDS", "50") or 50),
                sync_max_pass_seconds=float(_env("SYNC_MAX_PASS_SECONDS", "200") or 200),
                sync_control_topic=_env("SYNC_CONTROL_TOPIC", "sync-control") or "sync-control",
                sync_deadline_seconds=float(_env("SYNC_DEADLINE_SECONDS", "240") or 240),
                sync_sweep_seconds=int(_env("SYNC_SWEEP_SECONDS", "1800") or 1800),
                sync_sweep_shards=max(1, int(_env("SYNC_SWEEP_SHARDS", "16") or 16)),
                watch_renew_within_seconds=int(_env("WATCH_RENEW_WITHIN_SECONDS", "172800") or 172800),
                gmail_quota_model=_quota_model(_env("GMAIL_QUOTA_MODEL", "2026") or "2026"),
                gmail_user_units_per_second=float(_env("GMAIL_USER_UNITS_PER_SECOND") or 0) or None,
                sync_users_cache_seconds=float(_env("SYNC_USERS_CACHE_SECONDS", "300") or 300),
                secret_ttl_seconds=float(_env("SECRET_TTL_SECONDS", "60") or 60),
                # The Firestore emulator has no TTL policies: the local stack's daily tick does their job.
                emulate_ttl=(_env("EMULATE_TTL") or ("1" if sim else "0")) == "1",
                local_stack=sim is not None,
                storage_bucket=_env("STORAGE_BUCKET"),
                _allow=parse_allowlist(",".join(allow)),
            )
        except ValueError as exc:  # AllowlistError included
            raise ConfigError(f"malformed setting: {exc}") from exc


@lru_cache(maxsize=1)
def get_config() -> Config:
    """The process-wide configuration; `get_config.cache_clear()` re-reads it (tests)."""
    return Config.from_env()
