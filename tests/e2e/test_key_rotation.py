"""Issue 23, keys: a CRM key rotated or revoked in Secret Manager reaches a warm instance without a restart.

The `attachments` function (a reader of the CRM key the old runbook forgot) runs with a short
SECRET_TTL_SECONDS; the key is rotated through the simulator's Secret Manager (a new version, then
Google's versions:disable of the old one). A request that passes the key check and then lacks its
parameters answers 400; one whose key is refused answers 401.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.e2e.sync_steps import wait_for

pytestmark = pytest.mark.e2e

SECRET = "crm-api-key"


@pytest.fixture
def rotating(clean: Any, function_env: Any, sim_client: Any) -> Iterator[dict[str, Any]]:
    function_env("attachments", SECRET_TTL_SECONDS="0.2")
    old = clean.secrets.crm_api_key
    added: list[int] = []
    yield {"url": clean.function_url("attachments"), "old": old, "added": added}
    # every other test keeps using the stack's key: make it latest again, the rotated one disabled
    restored = sim_client.add_secret_version(SECRET, old)["version"]
    for n in added:
        sim_client.set_secret_version_enabled(clean.project_id, SECRET, n, True)
    for n in added:
        sim_client.set_secret_version_enabled(clean.project_id, SECRET, n, False)
    sim_client.set_secret_version_enabled(clean.project_id, SECRET, restored, True)


def checked(url: str, key: str) -> int:
    """400 when the key passed (no parameters), 401 when it was refused."""
    return requests.get(url, headers={"Authorization": f"Bearer {key}"}, timeout=30).status_code


def test_keys_rotation_overlaps_then_disabling_the_old_version_revokes_it_on_warm_instances(
        rotating: dict[str, Any], clean: Any, sim_client: Any) -> None:
    url, old = rotating["url"], rotating["old"]
    assert checked(url, old) == 400  # warm: the old key is cached

    new = sim_client.add_secret_version(SECRET, "rotated-crm-key-2")["version"]
    rotating["added"].append(new)
    wait_for(lambda: checked(url, "rotated-crm-key-2") == 400 or None, what="the new key accepted, no restart")
    assert checked(url, old) == 400  # the overlap: callers not moved yet keep working

    sim_client.set_secret_version_enabled(clean.project_id, SECRET, new - 1, False)  # the rotation ends
    wait_for(lambda: checked(url, old) == 401 or None, what="the old key refused, no restart")
    assert checked(url, "rotated-crm-key-2") == 400
