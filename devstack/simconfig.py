"""The Google simulator's configuration for one stack, with fresh secrets.

Every stack gets its own OAuth client, encryption keys and API keys, so
nothing secret is committed or shared between runs. The file holding them
lives in the stack's run directory (mode 0600); only the two API keys and the
OAuth client reach endpoints.json, because the contract (SPEC §6) puts them
there for CRM developers.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class StackSecrets:
    client_id: str
    client_secret: str
    token_encryption_key: str  # base64 of 32 bytes
    oauth_state_key: str  # base64 of 32 bytes
    crm_api_key: str
    inbound_api_key: str

    @classmethod
    def generate(cls) -> StackSecrets:
        return cls(
            client_id=f"{secrets.token_hex(8)}-local.apps.googleusercontent.com",
            client_secret=f"GOCSPX-{secrets.token_urlsafe(24)}",
            token_encryption_key=base64.b64encode(secrets.token_bytes(32)).decode(),
            oauth_state_key=base64.b64encode(secrets.token_bytes(32)).decode(),
            crm_api_key=f"crm-{secrets.token_urlsafe(24)}",
            inbound_api_key=f"inbound-{secrets.token_urlsafe(24)}",
        )

    def secret_versions(self) -> dict[str, list[str]]:
        """Secret Manager contents as ARCHITECTURE.md names them (one version each)."""
        return {
            "oauth-client": [json.dumps({"clientId": self.client_id, "clientSecret": self.client_secret})],
            "token-encryption-key": [self.token_encryption_key],
            "oauth-state-key": [self.oauth_state_key],
            "crm-api-key": [self.crm_api_key],
            "inbound-api-key": [self.inbound_api_key],
        }


def simulator_config(
    project_id: str,
    pubsub_host: str,
    redirect_uri: str,
    stack_secrets: StackSecrets,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "projectId": project_id,
        "pubsubEmulatorHost": pubsub_host,
        "oauthClients": [
            {
                "clientId": stack_secrets.client_id,
                "clientSecret": stack_secrets.client_secret,
                "redirectUris": [redirect_uri],
            }
        ],
        "secrets": stack_secrets.secret_versions(),
    }
    config.update(overrides or {})
    return config


def write_private_json(path: Path, data: dict[str, Any]) -> None:
    """Write JSON readable by the owner only (it holds keys)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
        fh.write("\n")
