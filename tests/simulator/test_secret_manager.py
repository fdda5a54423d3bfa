"""Secret Manager's versions:access on the simulator, through the real google-cloud-secret-manager client.

The project reads every secret with `transport="rest"` and an `api_endpoint`
override (shared/core/clients.py); these tests use that exact construction.
"""

from __future__ import annotations

import base64
import uuid
from typing import Any

import pytest
from google.api_core import exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import secretmanager

from simulator.app import create_app
from simulator.client import SimClient
from simulator.config import SimConfig
from simulator.secret_manager import crc32c, project_number


@pytest.fixture(scope="module")
def sm(sim_server: Any) -> secretmanager.SecretManagerServiceClient:
    return secretmanager.SecretManagerServiceClient(
        transport="rest",
        client_options={"api_endpoint": sim_server.url},
        credentials=AnonymousCredentials(),
    )


@pytest.fixture
def project(sim_server: Any) -> str:
    return str(sim_server.ctx.config.project_id)


@pytest.fixture
def secret(sim_server: Any) -> str:
    """A fresh secret with versions v1, v2, v3 (unique name: secrets survive /sim/reset)."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    client = SimClient(sim_server.url)
    for value in ("v1", "v2", "v3"):
        client.add_secret_version(name, value)
    return name


def access(sm: secretmanager.SecretManagerServiceClient, path: str) -> Any:
    return sm.access_secret_version(request={"name": path})


def test_latest_resolves_to_the_newest_version_and_names_its_number(
    sm: secretmanager.SecretManagerServiceClient, project: str, secret: str
) -> None:
    resp = access(sm, f"projects/{project}/secrets/{secret}/versions/latest")
    assert resp.payload.data == b"v3"
    assert resp.name == f"projects/{project_number(project)}/secrets/{secret}/versions/3"


def test_a_specific_version_stays_readable(
    sm: secretmanager.SecretManagerServiceClient, project: str, secret: str
) -> None:
    resp = access(sm, f"projects/{project}/secrets/{secret}/versions/1")
    assert resp.payload.data == b"v1" and resp.name.endswith("/versions/1")


def test_payload_carries_crc32c_of_the_data(
    sm: secretmanager.SecretManagerServiceClient, project: str, secret: str
) -> None:
    resp = access(sm, f"projects/{project}/secrets/{secret}/versions/2")
    assert resp.payload.data_crc32c == crc32c(b"v2")


def test_crc32c_is_castagnoli() -> None:
    assert crc32c(b"123456789") == 0xE3069283  # the standard check value of CRC-32C


def test_project_number_is_accepted_as_well_as_the_id(
    sm: secretmanager.SecretManagerServiceClient, project: str, secret: str
) -> None:
    assert access(sm, f"projects/{project_number(project)}/secrets/{secret}/versions/latest").payload.data == b"v3"


def test_unknown_secret_is_not_found_with_googles_message(
    sm: secretmanager.SecretManagerServiceClient, project: str
) -> None:
    with pytest.raises(exceptions.NotFound) as err:
        access(sm, f"projects/{project}/secrets/no-such-secret/versions/latest")
    assert err.value.message.endswith(  # the REST transport prefixes "GET <url>: "
        f"Secret [projects/{project_number(project)}/secrets/no-such-secret] not found or has no versions."
    )


def test_unknown_version_is_not_found(
    sm: secretmanager.SecretManagerServiceClient, project: str, secret: str
) -> None:
    with pytest.raises(exceptions.NotFound, match="Secret Version"):
        access(sm, f"projects/{project}/secrets/{secret}/versions/4")


def test_another_project_is_permission_denied(sm: secretmanager.SecretManagerServiceClient, secret: str) -> None:
    with pytest.raises(exceptions.Forbidden, match=r"secretmanager\.versions\.access"):
        access(sm, f"projects/someone-else/secrets/{secret}/versions/1")


def test_malformed_version_is_invalid_argument(
    sm: secretmanager.SecretManagerServiceClient, project: str, secret: str
) -> None:
    with pytest.raises(exceptions.BadRequest):
        access(sm, f"projects/{project}/secrets/{secret}/versions/newest")


def test_key_rotation_makes_the_new_version_latest_and_keeps_the_old_one(
    sm: secretmanager.SecretManagerServiceClient, sim_server: Any, project: str, secret: str
) -> None:
    added = SimClient(sim_server.url).add_secret_version(secret, "v4")
    assert added["version"] == 4
    assert access(sm, f"projects/{project}/secrets/{secret}/versions/latest").payload.data == b"v4"
    assert access(sm, f"projects/{project}/secrets/{secret}/versions/3").payload.data == b"v3"


def test_added_versions_survive_reset(
    sm: secretmanager.SecretManagerServiceClient, sim_server: Any, project: str, secret: str
) -> None:
    SimClient(sim_server.url).reset()
    assert access(sm, f"projects/{project}/secrets/{secret}/versions/latest").payload.data == b"v3"


def test_secrets_come_from_the_config_last_value_is_latest() -> None:
    app = create_app(SimConfig.from_dict({"projectId": "cfg-project", "secrets": {"api-key": ["old", "new"]}}))
    web = app.test_client()
    body = web.get("/v1/projects/cfg-project/secrets/api-key/versions/latest:access").get_json()
    assert base64.b64decode(body["payload"]["data"]) == b"new"
    assert body["name"] == f"projects/{project_number('cfg-project')}/secrets/api-key/versions/2"
    assert body["payload"]["dataCrc32c"] == str(crc32c(b"new"))  # int64 as a decimal string, as proto3 JSON


def test_not_found_body_is_googles_error_envelope() -> None:
    app = create_app(SimConfig.from_dict({"projectId": "cfg-project"}))
    resp = app.test_client().get("/v1/projects/cfg-project/secrets/missing/versions/1:access")
    assert resp.status_code == 404
    number = project_number("cfg-project")
    assert resp.get_json() == {
        "error": {
            "code": 404,
            "message": f"Secret [projects/{number}/secrets/missing] not found or has no versions.",
            "status": "NOT_FOUND",
        }
    }


@pytest.mark.parametrize("body", [{}, {"value": 3}, {"valueBase64": "%%%"}])
def test_adding_a_version_needs_a_string_value(body: dict[str, Any]) -> None:
    resp = create_app(SimConfig.from_dict({})).test_client().post("/sim/secrets/k", json=body)
    assert resp.status_code == 400


def test_disabled_version_is_refused_like_google_and_enable_restores_it(
    sm: secretmanager.SecretManagerServiceClient, project: str, secret: str
) -> None:
    path = f"projects/{project}/secrets/{secret}/versions/2"
    disabled = sm.disable_secret_version(request={"name": path})  # the real client's versions:disable
    assert disabled.state == secretmanager.SecretVersion.State.DISABLED
    with pytest.raises(exceptions.BadRequest, match="DISABLED state"):  # FAILED_PRECONDITION over REST
        access(sm, path)
    assert access(sm, f"projects/{project}/secrets/{secret}/versions/3").payload.data == b"v3"
    assert sm.enable_secret_version(request={"name": path}).state == secretmanager.SecretVersion.State.ENABLED
    assert access(sm, path).payload.data == b"v2"
