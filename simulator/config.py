"""The simulator's settings: one JSON file (camelCase keys) or a dict built in code.

A few of them (token lifetime, quota model and rate limits, sending limit, notification interval,
history retention, watch lifetime) can change at run time through `PUT /sim/settings`; those
live in `Settings`, and `POST /sim/reset` puts them back to what the file said.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

QUOTA_MODELS = ("2026", "legacy")  # simulator/quota.py MODELS


@dataclass(frozen=True)
class OAuthClient:
    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...] = ()


@dataclass(frozen=True)
class Settings:
    """What a test may change while the simulator runs (`PUT /sim/settings`)."""

    access_token_ttl_seconds: int = 3600
    quota_model: str = "2026"  # Gmail's limits for projects since May 2026; "legacy" for older ones
    rate_limit_units_per_second: float | None = None  # per user; None: the model's (2026: 100, legacy: 250)
    project_rate_limit_units_per_second: float | None = None  # None: the model's (1,200,000 a minute)
    rate_burst_seconds: float | None = None  # the rate buckets hold this many seconds; None: the model's (10 / 1)
    daily_send_limit: int = 500
    notification_min_interval_ms: int = 1000
    history_retention: int | None = None
    watch_lifetime_seconds: int = 7 * 86400  # Gmail's: a watch expires 7 days after users.watch

    _KEYS = {
        "accessTokenTtlSeconds": "access_token_ttl_seconds",
        "quotaModel": "quota_model",
        "rateLimitUnitsPerSecond": "rate_limit_units_per_second",
        "projectRateLimitUnitsPerSecond": "project_rate_limit_units_per_second",
        "rateBurstSeconds": "rate_burst_seconds",
        "dailySendLimit": "daily_send_limit",
        "notificationMinIntervalMs": "notification_min_interval_ms",
        "historyRetention": "history_retention",
        "watchLifetimeSeconds": "watch_lifetime_seconds",
    }

    _NULLABLE = frozenset({"historyRetention", "rateLimitUnitsPerSecond", "projectRateLimitUnitsPerSecond",
                           "rateBurstSeconds"})

    def updated(self, changes: dict[str, Any]) -> Settings:
        """A copy with camelCase `changes` applied; ValueError names an unknown or ill-typed key."""
        kw: dict[str, Any] = {}
        for key, value in changes.items():
            attr = self._KEYS.get(key)
            if attr is None:
                raise ValueError(f"unknown setting {key!r}")
            if key == "quotaModel":
                if value not in QUOTA_MODELS:
                    raise ValueError(f"quotaModel must be one of {', '.join(QUOTA_MODELS)}")
                kw[attr] = value
                continue
            if key in self._NULLABLE and value is None:
                kw[attr] = None
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"{key} must be a non-negative number")
            if key == "watchLifetimeSeconds" and value < 1:
                raise ValueError("watchLifetimeSeconds must be at least 1")
            kw[attr] = float(value) if key.endswith(("UnitsPerSecond", "BurstSeconds")) else int(value)
        return replace(self, **kw)

    def to_json(self) -> dict[str, Any]:
        return {key: getattr(self, attr) for key, attr in self._KEYS.items()}


@dataclass(frozen=True)
class SimConfig:
    project_id: str = "local-project"
    pubsub_emulator_host: str | None = None
    oauth_clients: tuple[OAuthClient, ...] = ()
    secrets: dict[str, list[str]] = field(default_factory=dict)
    settings: Settings = field(default_factory=Settings)
    seed: int = 0

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SimConfig:
        known = {"projectId", "pubsubEmulatorHost", "oauthClients", "secrets", "seed", *Settings._KEYS}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown simulator config keys: {', '.join(unknown)}")
        clients = tuple(
            OAuthClient(
                client_id=str(c["clientId"]),
                client_secret=str(c["clientSecret"]),
                redirect_uris=tuple(str(u) for u in c.get("redirectUris", [])),
            )
            for c in d.get("oauthClients", [])
        )
        secrets = {
            str(k): [str(v) for v in (vs if isinstance(vs, list) else [vs])] for k, vs in d.get("secrets", {}).items()
        }
        settings = Settings().updated({k: v for k, v in d.items() if k in Settings._KEYS})
        return cls(
            project_id=str(d.get("projectId", "local-project")),
            pubsub_emulator_host=d.get("pubsubEmulatorHost") or None,
            oauth_clients=clients,
            secrets=secrets,
            settings=settings,
            seed=int(d.get("seed", 0)),
        )

    @classmethod
    def load(cls, path: str | Path) -> SimConfig:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    # Flat accessors in the brief's names, so other parts need not know about Settings.
    @property
    def access_token_ttl_seconds(self) -> int:
        return self.settings.access_token_ttl_seconds

    @property
    def rate_limit_units_per_second(self) -> float | None:
        return self.settings.rate_limit_units_per_second

    @property
    def daily_send_limit(self) -> int:
        return self.settings.daily_send_limit

    @property
    def notification_min_interval_ms(self) -> int:
        return self.settings.notification_min_interval_ms

    @property
    def history_retention(self) -> int | None:
        return self.settings.history_retention


__all__ = ["OAuthClient", "Settings", "SimConfig"]
