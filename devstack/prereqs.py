"""Prerequisites of the emulators, checked before anything starts.

A missing `gcloud` or `java` otherwise surfaces as a cryptic early exit of a
child process; checking first lets `make up` say what to install.
"""

from __future__ import annotations

import re
import shutil
import subprocess

from devstack.procs import StartupError

INSTALL_HINT = "see docs/LOCAL_STACK.md, 'Prerequisites'"


def check_gcloud() -> str:
    path = shutil.which("gcloud")
    if path is None:
        raise StartupError(
            "prerequisites",
            "`gcloud` is not on PATH: install the Google Cloud SDK with the cloud-firestore-emulator "
            f"and pubsub-emulator components ({INSTALL_HINT})",
        )
    return path


def check_java(minimum: int = 11) -> str:
    path = shutil.which("java")
    if path is None:
        raise StartupError(
            "prerequisites",
            f"`java` is not on PATH: the Firestore and Pub/Sub emulators need Java {minimum}+ ({INSTALL_HINT})",
        )
    try:
        out = subprocess.run([path, "-version"], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise StartupError("prerequisites", f"`java -version` failed: {exc}") from None
    version = parse_java_major(out.stderr + out.stdout)
    if version is not None and version < minimum:
        raise StartupError(
            "prerequisites", f"Java {version} found at {path}; the emulators need Java {minimum}+ ({INSTALL_HINT})"
        )
    return path


def parse_java_major(text: str) -> int | None:
    """'openjdk version "17.0.15"' → 17; 'java version "1.8.0_392"' → 8."""
    m = re.search(r'version "(\d+)(?:\.(\d+))?', text)
    if not m:
        return None
    major = int(m.group(1))
    if major == 1 and m.group(2):
        return int(m.group(2))
    return major


def check_all() -> None:
    check_gcloud()
    check_java()
