"""Secret Manager's REST `versions:access` (and version metadata) on the simulator.

google-cloud-secret-manager with `transport="rest"` and an `api_endpoint`
override calls `GET /v1/projects/P/secrets/S/versions/V:access`; this answers
it as Google does: the resolved version in `name` (also for `latest`, which is
how the project learns a key's version number), base64 `payload.data`, and
`payload.dataCrc32c` as a decimal string (proto3 JSON renders int64 that way).
Errors carry Google's JSON error envelope so the client raises the same
`NotFound` / `PermissionDenied` / `InvalidArgument` exceptions.

Secrets come from the config (`secrets: {name: [v1, v2, ...]}`); `POST
/sim/secrets/{name}` adds a version, which is how tests rotate a key. Google's
own `POST …/versions/V:disable` and `:enable` change a version's state; a
disabled version answers `versions:access` with 400 FAILED_PRECONDITION, as
Google does, and `latest` still names the newest version whatever its state.
Added versions and states survive `POST /sim/reset`, like the config's secrets.
"""

from __future__ import annotations

import base64
import hashlib
import re
import threading
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from simulator.context import ctx

bp = Blueprint("sim_secret_manager", __name__)

_EXT = "sim_secrets"


def _crc32c_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), what `payload.dataCrc32c` carries. Pure Python: secrets are small, and
    google-crc32c is not a dependency of the Secret Manager client here."""
    crc = 0xFFFFFFFF
    for b in data:
        crc = (crc >> 8) ^ _CRC32C[(crc ^ b) & 0xFF]
    return crc ^ 0xFFFFFFFF


class SecretStore:
    """Versions per secret name, numbered from 1; thread-safe (tests rotate while functions read)."""

    def __init__(self, initial: dict[str, list[str]]) -> None:
        self._lock = threading.Lock()
        now = _now()
        self._versions: dict[str, list[tuple[bytes, str]]] = {
            name: [(v.encode("utf-8"), now) for v in values] for name, values in initial.items()
        }
        self._disabled: set[tuple[str, int]] = set()

    def set_enabled(self, name: str, number: int, enabled: bool) -> None:
        with self._lock:
            (self._disabled.discard if enabled else self._disabled.add)((name, number))

    def enabled(self, name: str, number: int) -> bool:
        with self._lock:
            return (name, number) not in self._disabled

    def add(self, name: str, data: bytes) -> int:
        with self._lock:
            versions = self._versions.setdefault(name, [])
            versions.append((data, _now()))
            return len(versions)

    def get(self, name: str, version: str) -> tuple[int, bytes, str] | None:
        """(number, data, createTime) of a version; `latest` is the newest. None if absent."""
        with self._lock:
            versions = self._versions.get(name)
            if not versions:
                return None
            n = len(versions) if version == "latest" else int(version)
            if not 1 <= n <= len(versions):
                return None
            data, created = versions[n - 1]
            return n, data, created

    def exists(self, name: str) -> bool:
        with self._lock:
            return bool(self._versions.get(name))


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def store() -> SecretStore:
    """The app's store, built from the config on first use."""
    ext = current_app.extensions
    s = ext.get(_EXT)
    if s is None:
        with _init_lock:
            s = ext.get(_EXT)
            if s is None:
                s = ext[_EXT] = SecretStore(ctx().config.secrets)
    return s


_init_lock = threading.Lock()


def project_number(project_id: str) -> str:
    """Google answers with the project number; a stable 12-digit number stands in for it."""
    return str(100000000000 + int(hashlib.sha256(project_id.encode()).hexdigest(), 16) % 900000000000)


def _error(code: int, status: str, message: str) -> Response:
    resp = jsonify({"error": {"code": code, "message": message, "status": status}})
    resp.status_code = code
    return resp


def _resolve(project: str, secret: str, version: str) -> tuple[str, int, bytes, str] | Response:
    """(canonical name, number, data, createTime), or the error answer Google would give."""
    pid = ctx().config.project_id
    number = project_number(pid)
    requested = f"projects/{project}/secrets/{secret}/versions/{version}"
    if project not in (pid, number):
        return _error(
            403,
            "PERMISSION_DENIED",
            f"Permission 'secretmanager.versions.access' denied for resource '{requested}' (or it may not exist).",
        )
    if version != "latest" and not (version.isdigit() and int(version) > 0):
        return _error(400, "INVALID_ARGUMENT", "Invalid resource field value in the request.")
    s = store()
    if not s.exists(secret):
        return _error(404, "NOT_FOUND", f"Secret [projects/{number}/secrets/{secret}] not found or has no versions.")
    found = s.get(secret, version)
    if found is None:
        return _error(
            404, "NOT_FOUND", f"Secret Version [projects/{number}/secrets/{secret}/versions/{version}] not found."
        )
    n, data, created = found
    return f"projects/{number}/secrets/{secret}/versions/{n}", n, data, created


@bp.route("/v1/projects/<project>/secrets/<secret>/versions/<version>:access", methods=["GET"])
def access_version(project: str, secret: str, version: str) -> Response:
    resolved = _resolve(project, secret, version)
    if isinstance(resolved, Response):
        return resolved
    name, number, data, _ = resolved
    if not store().enabled(secret, number):
        return _error(400, "FAILED_PRECONDITION", f"Secret Version [{name}] is in DISABLED state.")
    return jsonify(
        {
            "name": name,
            "payload": {
                "data": base64.b64encode(data).decode("ascii"),
                "dataCrc32c": str(crc32c(data)),
            },
        }
    )


@bp.route("/v1/projects/<project>/secrets/<secret>/versions/<version>", methods=["GET"])
def get_version(project: str, secret: str, version: str) -> Response:
    resolved = _resolve(project, secret, version)
    if isinstance(resolved, Response):
        return resolved
    name, number, _, created = resolved
    return jsonify(_version_body(name, created, store().enabled(secret, number)))


def _version_body(name: str, created: str, enabled: bool) -> dict[str, Any]:
    return (
        {
            "name": name,
            "createTime": created,
            "state": "ENABLED" if enabled else "DISABLED",
            "replicationStatus": {"automatic": {}},
            "etag": f'"{hashlib.sha256(name.encode()).hexdigest()[:14]}"',
        }
    )


@bp.route("/v1/projects/<project>/secrets/<secret>/versions/<version>:disable", methods=["POST"])
def disable_version(project: str, secret: str, version: str) -> Response:
    return _set_state(project, secret, version, enabled=False)


@bp.route("/v1/projects/<project>/secrets/<secret>/versions/<version>:enable", methods=["POST"])
def enable_version(project: str, secret: str, version: str) -> Response:
    return _set_state(project, secret, version, enabled=True)


def _set_state(project: str, secret: str, version: str, enabled: bool) -> Response:
    """Google's versions.disable / versions.enable: the version's metadata, in its new state."""
    resolved = _resolve(project, secret, version)
    if isinstance(resolved, Response):
        return resolved
    name, number, _, created = resolved
    store().set_enabled(secret, number, enabled)
    return jsonify(_version_body(name, created, enabled))


_SECRET_ID = re.compile(r"^[A-Za-z0-9_-]{1,255}$")


def _bad(message: str) -> Response:
    resp = jsonify({"error": "invalid_argument", "message": message})
    resp.status_code = 400
    return resp


@bp.route("/sim/secrets/<name>", methods=["POST"])
def add_version(name: str) -> Response:
    """Admin: add a version (key rotation). Body `{"value": str}` or `{"valueBase64": str}`."""
    if not _SECRET_ID.match(name):
        return _bad("secret names are 1-255 letters, digits, '-' or '_'")
    body: Any = request.get_json(silent=True)
    data: bytes
    if isinstance(body, dict) and isinstance(body.get("value"), str):
        data = body["value"].encode("utf-8")
    elif isinstance(body, dict) and isinstance(body.get("valueBase64"), str):
        try:
            data = base64.b64decode(body["valueBase64"], validate=True)
        except ValueError:
            return _bad("valueBase64 is not base64")
    else:
        return _bad('body must be {"value": "<string>"} or {"valueBase64": "<base64>"}')
    n = store().add(name, data)
    number = project_number(ctx().config.project_id)
    resp = jsonify({"name": f"projects/{number}/secrets/{name}/versions/{n}", "version": n})
    resp.status_code = 201
    return resp
