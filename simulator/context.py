"""Everything one simulator instance holds, reachable from any request as `ctx()`."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from simulator.config import Settings, SimConfig
from simulator.faults import Faults
from simulator.notifier import Notifier
from simulator.quota import MODELS, Quota
from simulator.state import GmailState
from simulator.tokens import TokenStore


@dataclass
class Upload:
    """A resumable upload session of messages.send (`uploadType=resumable`)."""

    address: str
    metadata: dict[str, Any]
    total: int | None
    data: bytearray = field(default_factory=bytearray)


@dataclass
class SimContext:
    config: SimConfig
    state: GmailState
    tokens: TokenStore
    faults: Faults
    quota: Quota
    notifier: Notifier
    settings: Settings = field(default_factory=Settings)
    uploads: dict[str, Upload] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def build(cls, config: SimConfig) -> SimContext:
        faults = Faults(config.seed)
        state = GmailState()
        notifier = Notifier(config.pubsub_emulator_host, faults, config.settings.notification_min_interval_ms)
        context = cls(
            config=config,
            state=state,
            tokens=TokenStore(access_ttl_seconds=config.settings.access_token_ttl_seconds),
            faults=faults,
            quota=Quota(),
            notifier=notifier,
        )

        def on_change(address: str, history_id: int, labels: tuple[str, ...]) -> None:
            box = state.get(address)
            if box is not None:
                state.note_lapse(box)
            notifier.changed(address, history_id, labels, box.watch if box else None)

        state.listeners.append(on_change)
        context.apply_settings(config.settings)
        return context

    def apply_settings(self, settings: Settings) -> None:
        """Make run-time settings effective in every part that reads one."""
        with self.lock:
            self.settings = settings
            self.tokens.access_ttl_seconds = settings.access_token_ttl_seconds
            self.quota.configure(MODELS[settings.quota_model], settings.rate_limit_units_per_second,
                                 settings.project_rate_limit_units_per_second, settings.rate_burst_seconds)
            self.notifier.min_interval_ms = settings.notification_min_interval_ms
            self.state.history_retention = settings.history_retention
        self.state.apply_retention()

    def reset(self) -> None:
        """`POST /sim/reset`: empty mailboxes, tokens, faults, counters; settings as configured.

        Secrets and OAuth clients come from the configuration and stay.
        """
        self.notifier.reset()
        self.state.reset()
        self.tokens.reset()
        self.faults.reset()
        self.quota.reset()
        with self.lock:
            self.uploads.clear()
        self.apply_settings(self.config.settings)


def ctx() -> SimContext:
    import flask

    sim: SimContext = flask.current_app.extensions["sim"]
    return sim
