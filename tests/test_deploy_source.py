"""The deploy-source decision, proven: each entry point served from exactly the upload.

`gcloud functions deploy --source=. --ignore-file=.gcloudignore.functions` (as
deploy.sh runs it) uploads what `.gcloudignore.functions` lets through;
the Python buildpack installs `requirements.txt` and nothing else; Cloud Run
then serves `main.py` with functions-framework. This test rebuilds that: it
copies exactly the files `.gcloudignore.functions` admits (matched by the small gitignore
matcher below, itself checked against `gcloud meta list-files-for-upload`) into
a temporary folder, creates a fresh venv there with only `requirements.txt`
(CPython 3.12, the runtime, when this machine has it), and serves every entry
point from that folder with the stack's emulators and Google simulator behind
it. Each must import and answer through its own code.

The function modules land one by one; a function whose `functions/<name>.py`
does not exist yet is skipped with that reason (remove nothing: the skip ends
by itself when the module arrives).
"""

from __future__ import annotations

import base64
import fnmatch
import glob
import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devstack.procs import ManagedProcess, free_port, tcp_ready

ROOT = Path(__file__).resolve().parent.parent
HTTP_FUNCTIONS = ("oauth", "send_email", "auto_bcc", "attachments", "messages")  # behind a key
BROWSER_FUNCTIONS = ("oauth_browser",)  # public, behind a signed state
EVENT_FUNCTIONS = ("gmail_push", "quota_reset")
ALL_FUNCTIONS = HTTP_FUNCTIONS + BROWSER_FUNCTIONS + EVENT_FUNCTIONS
# What each function deploy uploads (deploy.sh passes it as --ignore-file); .gcloudignore is the build's.
FUNCTIONS_IGNORE = ".gcloudignore.functions"
# Which function modules exist right now (the rest arrive with their issues).
PRESENT = {fn: (ROOT / "functions" / f"{fn}.py").exists() for fn in ALL_FUNCTIONS}


def require_module(fn: str) -> None:
    if not PRESENT[fn]:
        pytest.skip(f"functions/{fn}.py does not exist yet (its issue has not landed)")


# ------------------------------------------------------------ .gcloudignore


@dataclass(frozen=True)
class Rule:
    pattern: str
    negate: bool
    dir_only: bool
    anchored: bool

    def matches(self, rel: str, is_dir: bool) -> bool:
        if self.dir_only and not is_dir:
            return False
        if self.anchored:  # a glob never crosses "/": match segment by segment
            parts, globs = rel.split("/"), self.pattern.split("/")
            return len(parts) == len(globs) and all(map(fnmatch.fnmatchcase, parts, globs))
        return fnmatch.fnmatchcase(rel.rsplit("/", 1)[-1], self.pattern)


def parse_gcloudignore(text: str) -> list[Rule]:
    """The gitignore subset .gcloudignore uses: comments, !negation, /anchors, dir/ and globs (no **)."""
    rules = []
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        line = line[1:] if negate else line
        dir_only = line.endswith("/")
        line = line.rstrip("/")
        assert "**" not in line, "extend this matcher before using ** in .gcloudignore"
        anchored = "/" in line
        rules.append(Rule(line.lstrip("/"), negate, dir_only, anchored))
    return rules


def ignored(rules: list[Rule], rel: str, is_dir: bool) -> bool:
    verdict = False
    for rule in rules:  # the last matching rule wins, as in git
        if rule.matches(rel, is_dir):
            verdict = not rule.negate
    return verdict


def files_to_upload(root: Path, ignore_file: str = FUNCTIONS_IGNORE) -> list[str]:
    """Relative paths gcloud would upload; an ignored folder is not entered (gitignore semantics)."""
    rules = parse_gcloudignore((root / ignore_file).read_text())
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath).relative_to(root).as_posix()
        prefix = "" if base == "." else base + "/"
        dirnames[:] = sorted(d for d in dirnames if not ignored(rules, prefix + d, True))
        out.extend(prefix + f for f in sorted(filenames) if not ignored(rules, prefix + f, False))
    return sorted(out)


def test_gcloudignore_matching_here_is_what_gcloud_uploads(tmp_path: Path) -> None:
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        pytest.skip("gcloud is not installed")
    # `meta list-files-for-upload` has no --ignore-file: ask it about a copy of the tree (empty files with the
    # same names) whose .gcloudignore is the functions' file.
    mirror = tmp_path / "tree"
    for rel in gcloud_upload_list(gcloud, ROOT):
        (mirror / rel).parent.mkdir(parents=True, exist_ok=True)
        (mirror / rel).write_text("")
    shutil.copy2(ROOT / FUNCTIONS_IGNORE, mirror / ".gcloudignore")
    shutil.copy2(ROOT / FUNCTIONS_IGNORE, mirror / FUNCTIONS_IGNORE)
    assert gcloud_upload_list(gcloud, mirror) == files_to_upload(ROOT)


def gcloud_upload_list(gcloud: str, root: Path) -> list[str]:
    proc = subprocess.run([gcloud, "meta", "list-files-for-upload", str(root)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return sorted(line for line in proc.stdout.splitlines() if line.strip())


def test_gcloudignore_matching_agrees_with_gcloud_on_every_kind_of_file(tmp_path: Path) -> None:
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        pytest.skip("gcloud is not installed")
    shutil.copy2(ROOT / FUNCTIONS_IGNORE, tmp_path / ".gcloudignore")
    for rel in ("main.py", "requirements.txt", "pyproject.toml", "deploy.sh", "README.md", ".env",
                "shared/a.py", "shared/data.json", "shared/__pycache__/a.cpython-312.pyc", "shared/b.pyc",
                "shared/sub/c.py", "shared/.a.py.swp", "functions/oauth.py", "functions/oauth.py~",
                "tests/test_x.py", "simulator/app.py", "devstack/stack.py", "docs/OPERATIONS.md",
                ".venv/bin/python", ".git/HEAD", "scripts/gen_requirements.py", "node_modules/x/index.js"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    proc = subprocess.run(
        [gcloud, "meta", "list-files-for-upload", str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    expected = ["functions/oauth.py", "main.py", "requirements.txt", "shared/a.py", "shared/data.json",
                "shared/sub/c.py"]
    assert sorted(line for line in proc.stdout.splitlines() if line.strip()) == expected
    assert files_to_upload(tmp_path, ".gcloudignore") == expected


def test_upload_holds_only_what_the_runtime_needs() -> None:
    files = files_to_upload(ROOT)
    assert {"main.py", "requirements.txt", "shared/__init__.py", "functions/__init__.py"} <= set(files)
    for path in files:
        top = path.split("/", 1)[0]
        assert top in {"main.py", "requirements.txt", "shared", "functions"}, path
        assert "__pycache__" not in path and not path.endswith((".pyc", ".pyo"))


# ------------------------------------------------------ the uploaded tree, installed


def python312() -> str:
    """The runtime's CPython 3.12 if this machine has one, else the interpreter running the tests."""
    candidates = [sys.executable] if sys.version_info[:2] == (3, 12) else []
    candidates += [shutil.which("python3.12") or ""]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.12*/bin/python3.12")))
    for exe in filter(None, candidates):
        ok = subprocess.run([exe, "-c", "import sys, venv; assert sys.version_info[:2] == (3, 12)"],
                            capture_output=True, timeout=30)
        if ok.returncode == 0:
            return exe
    return sys.executable


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """No PYTHONPATH, no repo venv, no inherited Google settings: only what a deployed function has."""
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR") if k in os.environ}
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra or {})
    return env


@pytest.fixture(scope="session")
def upload_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tree = tmp_path_factory.mktemp("upload") / "workspace"
    for rel in files_to_upload(ROOT):
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, tree / rel)
    return tree


@pytest.fixture(scope="session")
def runtime_python(upload_tree: Path) -> Path:
    """A fresh venv with requirements.txt and nothing else: what the buildpack builds."""
    venv = upload_tree.parent / "venv"
    subprocess.run([python312(), "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    proc = subprocess.run(
        [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q",
         "-r", str(upload_tree / "requirements.txt")],
        capture_output=True, text=True, timeout=900, env=clean_env(),
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return python


@pytest.mark.slow
def test_requirements_install_into_a_consistent_environment(runtime_python: Path) -> None:
    proc = subprocess.run([str(runtime_python), "-m", "pip", "check"], capture_output=True, text=True, timeout=120,
                          env=clean_env())
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.slow
def test_every_uploaded_module_imports_with_only_requirements_txt(upload_tree: Path, runtime_python: Path) -> None:
    modules = ["main"] + [
        p.relative_to(upload_tree).with_suffix("").as_posix().replace("/", ".")
        for p in sorted(upload_tree.glob("*/*.py"))
        if p.name != "__init__.py"
    ]
    code = "import importlib, sys\nfor m in sys.argv[1:]:\n    importlib.import_module(m)\n"
    proc = subprocess.run([str(runtime_python), "-c", code, *modules], cwd=upload_tree, capture_output=True,
                          text=True, timeout=300, env=clean_env({"GOOGLE_CLOUD_PROJECT": "deploy-source-test"}))
    assert proc.returncode == 0, proc.stderr[-4000:]


# ---------------------------------------------------------- serving each entry point


@dataclass
class Served:
    url: str
    process: ManagedProcess


@pytest.fixture(scope="module")
def served(stack: Any, upload_tree: Path, runtime_python: Path) -> Iterator[dict[str, Served]]:
    """Every present entry point under functions-framework from the uploaded tree, started on demand."""
    running: dict[str, Served] = {}
    log_dir = upload_tree.parent / "logs"

    class Servers(dict[str, Served]):
        def __missing__(self, fn: str) -> Served:
            port = free_port("127.0.0.1")
            env = clean_env({**stack.base_function_env(), "OAUTH_REDIRECT_URI": "http://127.0.0.1:9/callback"})
            proc = ManagedProcess(
                name=f"deployed {fn}",
                argv=[str(runtime_python), "-m", "functions_framework", "--source", str(upload_tree / "main.py"),
                      "--target", fn, "--host", "127.0.0.1", "--port", str(port)],
                log_path=log_dir / f"{fn}.log",
                env=env,
                cwd=upload_tree,  # the buildpack's /workspace
            ).start()
            running[fn] = Served(f"http://127.0.0.1:{port}", proc)
            proc.wait_ready(tcp_ready("127.0.0.1", port), 60, f"port {port}")
            self[fn] = running[fn]
            return running[fn]

    try:
        yield Servers()
    finally:
        for s in running.values():
            s.process.stop()


def call(url: str, body: bytes, headers: dict[str, str], method: str = "POST") -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


HTTP_PROBES: dict[str, tuple[str, bytes, dict[str, str]]] = {
    # A CRM call without the API key, to each function's main route.
    "oauth": ("/connect", json.dumps({"accountId": "a1", "userId": "u1", "returnUrl": "http://localhost/x"}).encode(),
              {"Content-Type": "application/json"}),
    "send_email": ("/", json.dumps({"accountId": "a1", "userId": "u1", "contactId": "c1", "subject": "hi",
                                    "text": "hello", "idempotencyKey": "k1"}).encode(),
                   {"Content-Type": "application/json"}),
    "auto_bcc": ("/?to=someone%40bcc.localhost",
                 b"From: a@example.com\r\nTo: b@example.com\r\nSubject: x\r\n\r\nhi\r\n",
                 {"Content-Type": "message/rfc822"}),
    "attachments": ("/?accountId=a1&conversationId=c1&messageId=m1&attachmentId=x1", b"", {}),
    "messages": ("/body?accountId=a1&conversationId=c1&messageId=m1", b"", {}),
}
PROBE_METHODS = {"attachments": "GET", "messages": "GET"}


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.parametrize("fn", HTTP_FUNCTIONS)
def test_http_entry_point_served_from_the_upload_answers_with_its_json_error(
    served: dict[str, Served], fn: str
) -> None:
    require_module(fn)
    path, body, headers = HTTP_PROBES[fn]
    status, raw = call(served[fn].url + path, body, headers, PROBE_METHODS.get(fn, "POST"))
    assert status == 401, (status, raw[:500], served[fn].process.log_tail())
    payload = json.loads(raw)
    assert payload["error"] == "unauthorized" and isinstance(payload["message"], str) and payload["message"]


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.parametrize("fn", BROWSER_FUNCTIONS)
def test_browser_entry_point_served_from_the_upload_refuses_a_forged_state(served: dict[str, Served], fn: str) -> None:
    require_module(fn)
    status, raw = call(served[fn].url + "/start?state=forged.state", b"", {}, method="GET")
    assert status == 400, (status, raw[:500], served[fn].process.log_tail())
    assert json.loads(raw)["error"] == "invalid_state"


def pubsub_cloudevent(topic: str, data: bytes) -> tuple[bytes, dict[str, str]]:
    """A binary-mode CloudEvent as Eventarc delivers a Pub/Sub message to a 2nd-gen function."""
    body = {
        "message": {"data": base64.b64encode(data).decode(), "messageId": uuid.uuid4().hex[:12],
                    "publishTime": "2026-01-01T00:00:00Z", "attributes": {}},
        "subscription": f"projects/deploy-source-test/subscriptions/eventarc-{topic}",
    }
    headers = {
        "Content-Type": "application/json",
        "ce-id": uuid.uuid4().hex,
        "ce-specversion": "1.0",
        "ce-source": f"//pubsub.googleapis.com/projects/deploy-source-test/topics/{topic}",
        "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
        "ce-time": "2026-01-01T00:00:00Z",
    }
    return json.dumps(body).encode(), headers


TOPICS = {"gmail_push": "gmail-watch", "quota_reset": "daily-tick"}


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.parametrize("fn", EVENT_FUNCTIONS)
def test_cloudevent_entry_point_served_from_the_upload_acks_a_malformed_event_and_stays_up(
    served: dict[str, Served], fn: str
) -> None:
    require_module(fn)
    s = served[fn]
    body, headers = pubsub_cloudevent(TOPICS[fn], b"\x00 this is not json {")
    status, raw = call(s.url + "/", body, headers)
    # Acknowledged: a poison message must not be redelivered forever (no retry storm).
    assert 200 <= status < 300, (status, raw[:500], s.process.log_tail())
    log = s.process.log_tail(200)
    assert "ModuleNotFoundError" not in log and "ImportError" not in log, log
    # The server is still there, and an event with no usable content is acknowledged too.
    assert s.process.exited() is None
    status, raw = call(s.url + "/", *pubsub_cloudevent(TOPICS[fn], b"{}"))
    assert 200 <= status < 300, (status, raw[:500], s.process.log_tail())
