"""cloudbuild.yaml: tests first, then the infrastructure (the Firestore database), then every function."""

from __future__ import annotations

import re
import subprocess
import warnings
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
# deploy.sh's FUNCTION_TABLE is the one list of functions.
FUNCTIONS = tuple(subprocess.run(["bash", str(ROOT / "deploy.sh"), "--list-functions"], capture_output=True, text=True,
                                 check=True, timeout=30).stdout.split())
# Google keeps google-cloud-cli images for a year (cloud-sdk-docker's README, "Package retention policy").
IMAGE_RETENTION_DAYS = 365


@pytest.fixture(scope="module")
def build() -> dict[str, Any]:
    doc = yaml.safe_load((ROOT / "cloudbuild.yaml").read_text())
    assert isinstance(doc, dict) and doc["steps"]
    return doc


def steps_by_id(build: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["id"]: s for s in build["steps"]}


def ancestors(build: dict[str, Any], step_id: str) -> set[str]:
    """Every step that must finish before step_id (Cloud Build: no waitFor = all earlier steps)."""
    steps = build["steps"]
    ids = [s["id"] for s in steps]
    step = steps_by_id(build)[step_id]
    direct = step.get("waitFor")
    if direct is None:
        direct = ids[: ids.index(step_id)]
    out: set[str] = set()
    for d in direct:
        if d == "-":
            continue
        out |= {d} | ancestors(build, d)
    return out


def command(step: dict[str, Any]) -> str:
    return " ".join([step.get("entrypoint", ""), *step.get("args", [])])


def deploy_steps(build: dict[str, Any]) -> dict[str, str]:
    """function name -> step id, for steps that run ./deploy.sh <function>."""
    out: dict[str, str] = {}
    for s in build["steps"]:
        args = s.get("args", [])
        if args[:1] == ["./deploy.sh"] and len(args) == 2 and args[1] in FUNCTIONS:
            out[args[1]] = s["id"]
    return out


def test_cloudbuild_yaml_parses_with_unique_step_ids(build: dict[str, Any]) -> None:
    ids = [s["id"] for s in build["steps"]]
    assert len(ids) == len(set(ids))


def test_first_step_runs_the_test_suite_with_the_emulators_and_python312(build: dict[str, Any]) -> None:
    test = build["steps"][0]
    assert "emulators" in test["name"]  # gcloud + Firestore/Pub/Sub emulators + Java
    script = command(test)
    assert "make test" in script
    assert "_PYTHON_VERSION" in script and build["substitutions"]["_PYTHON_VERSION"] == "3.12"


def test_every_function_is_deployed_through_deploy_sh_in_its_own_step(build: dict[str, Any]) -> None:
    assert set(deploy_steps(build)) == set(FUNCTIONS)


def test_no_step_deploys_before_the_tests_pass(build: dict[str, Any]) -> None:
    test_id = build["steps"][0]["id"]
    for s in build["steps"][1:]:
        assert test_id in ancestors(build, s["id"]), f"{s['id']} may run before the tests"
    for s in build["steps"]:
        if "gcloud functions deploy" in command(s) or re.search(r"(^|\s)\./deploy\.sh\s", command(s)):
            assert s["id"] != test_id


def infra_step(build: dict[str, Any]) -> str:
    infra = [s for s in build["steps"] if s.get("args", [])[:2] == ["./deploy.sh", "infra"]]
    assert len(infra) == 1
    return str(infra[0]["id"])


def test_infrastructure_step_runs_right_after_the_tests(build: dict[str, Any]) -> None:
    assert steps_by_id(build)[infra_step(build)]["waitFor"] == [build["steps"][0]["id"]]


def test_issue23_every_function_deploys_after_the_infrastructure_creates_the_database(build: dict[str, Any]) -> None:
    # The contacts_index Firestore trigger is validated against the database when it is created.
    infra = infra_step(build)
    for fn, step_id in deploy_steps(build).items():
        assert infra in ancestors(build, step_id), f"{fn} may deploy before the Firestore database exists"


def test_function_deploys_run_in_parallel_right_after_the_infrastructure(build: dict[str, Any]) -> None:
    by_id = steps_by_id(build)
    for step_id in deploy_steps(build).values():
        assert by_id[step_id]["waitFor"] == [infra_step(build)]


def test_the_function_steps_are_deploy_sh_function_table(build: dict[str, Any]) -> None:
    assert FUNCTIONS and "contacts_index" in FUNCTIONS
    assert sorted(deploy_steps(build)) == sorted(FUNCTIONS)


def test_project_and_region_come_from_substitutions(build: dict[str, Any]) -> None:
    env = build["options"]["env"]
    assert "PROJECT_ID=$PROJECT_ID" in env
    assert "REGION=${_REGION}" in env
    assert "_REGION" in build["substitutions"]


def test_no_secret_values_in_the_build_file() -> None:
    text = (ROOT / "cloudbuild.yaml").read_text()
    assert not re.search(r"(?i)(api[_-]?key|secret|password|token)\s*[:=]\s*['\"]?[A-Za-z0-9+/_-]{12,}", text)
    assert "GOCSPX-" not in text  # Google OAuth client secrets
    assert "secretEnv" not in text and "availableSecrets" not in text


def test_issue15_no_step_pipes_a_download_into_a_shell(build: dict[str, Any]) -> None:
    for s in build["steps"]:
        script = command(s)
        assert not re.search(r"(curl|wget)[^|;&\n]*\|\s*(env\s+[^|;&\n]*)?(ba|z|da)?sh\b", script), s["id"]
        assert "install.sh" not in script, s["id"]


def test_issue15_every_step_image_is_pinned_to_a_version(build: dict[str, Any]) -> None:
    for s in build["steps"]:
        image = s["name"]
        assert "@sha256:" in image or re.search(r":\d+\.\d+\.\d+(-[a-z]+)?$", image), f"{s['id']}: {image}"


def test_issue15_tools_installed_by_pip_are_pinned(build: dict[str, Any]) -> None:
    script = command(build["steps"][0])
    # (the project's own dependencies come from requirements.txt through `uv pip install -c`)
    installs = re.findall(r"(?<!uv )pip install (?:-\S+ )*(\S+)", script)
    assert installs, "the test step installs uv from PyPI"
    for spec in installs:
        assert "==" in spec, spec
    assert re.fullmatch(r"\d+\.\d+\.\d+", build["substitutions"]["_UV_VERSION"])


def image_version(image: str) -> tuple[int, ...]:
    match = re.search(r":(\d+)\.(\d+)\.(\d+)(-[a-z]+)?$", image)
    assert match, image
    return tuple(int(g) for g in match.groups()[:3])


def test_issue23_the_sdk_images_are_one_version_released_within_googles_retention(build: dict[str, Any]) -> None:
    versions = {image_version(s["name"]) for s in build["steps"]}
    assert len(versions) == 1, f"every step on one google-cloud-cli version, not {sorted(versions)}"
    assert versions.pop() >= (573, 0, 0), "older than the newest version this file was checked against"
    released = date.fromisoformat(build["substitutions"]["_SDK_RELEASED"])
    age = (datetime.now(UTC).date() - released).days
    assert age <= IMAGE_RETENTION_DAYS, (
        f"google-cloud-cli images from {released} are {age} days old: Google deletes them after a year; "
        "pin a current version (and its release date in _SDK_RELEASED)")
    if age > IMAGE_RETENTION_DAYS - 60:
        warnings.warn(f"the google-cloud-cli images are {age} days old; renew the pin before Google deletes them",
                      stacklevel=1)
