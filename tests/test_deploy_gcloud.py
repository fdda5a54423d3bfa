"""The CI deploy check (issue 23): the deploy, read against the installed Cloud SDK itself.

Google cannot be reached here, so a first deployment in a new project is
checked the way a careful operator would: every gcloud command deploy.sh's dry
run prints (with every optional setting, so every branch is in the plan) and
every gcloud command of the operator's guide (docs/OPERATIONS.md) must be a
command of the installed SDK, with flags its `--help` lists and values among
the choices it names; the plan's order must create the Firestore database
before any Firestore trigger and Cloud Build's `infra` step must run first;
every service account id must fit Google's 30 characters; and what
`gcloud builds submit` uploads (`gcloud meta list-files-for-upload`) must hold
what the build runs.

`gcloud <command> --help` takes a second or more, so each command's help is
read once per test session (cached by command path, read four at a time) and
kept in pytest's cache under the SDK's version for the next session.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.test_deploy import SETTINGS, Run, dry_run

ROOT = Path(__file__).resolve().parent.parent
GCLOUD = shutil.which("gcloud")
OPERATIONS = ROOT / "docs" / "OPERATIONS.md"
FUNCTIONS_IGNORE = ".gcloudignore.functions"
# Every optional setting set, so the plan holds every command deploy.sh can run.
EVERY_OPTION = {**SETTINGS, "INBOUND_INVOKER_SA": "relay@acme-crm.iam.gserviceaccount.com",
                "BUILD_SERVICE_ACCOUNT": "builder@acme-crm-prod.iam.gserviceaccount.com"}
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def require_gcloud() -> str:
    assert GCLOUD, "the deploy check reads the installed Cloud SDK's --help: install gcloud (the stack needs it too)"
    return GCLOUD


# ------------------------------------------------------------ the SDK's --help


@dataclass(frozen=True)
class Help:
    """What `gcloud <path> --help` says a command accepts."""

    path: tuple[str, ...]
    flags: frozenset[str]
    choices: dict[str, frozenset[str]] = field(default_factory=dict)  # flag -> the values it allows


def parse_help(text: str) -> tuple[tuple[str, ...], bool, frozenset[str], dict[str, frozenset[str]]]:
    """(command path, is a group, flags, choices) from one --help page."""
    text = ANSI.sub("", text)
    name = re.search(r"^NAME\n\s+gcloud ([a-z0-9 -]*?) - ", text, re.M)
    assert name, text[:500]
    path = tuple(name.group(1).split())
    synopsis = text.split("DESCRIPTION", 1)[0]
    is_group = bool(re.search(r"\b(GROUP|COMMAND)\b", synopsis))
    names: set[str] = set()
    for negatable, flag in re.findall(r"--(\[no-\])?([a-z0-9][a-z0-9-]*)", text):
        names.add(flag)
        if negatable:
            names.add("no-" + flag)
    for flag in list(names):  # "Use --no-FLAG to disable" spells the negation out
        if f"--no-{flag}" in text:
            names.add("no-" + flag)
    choices: dict[str, frozenset[str]] = {}
    for flag, metavar in re.findall(r"^\s+--([a-z0-9-]+)=([A-Z_]+)", text, re.M):
        listed = re.search(rf"\b{metavar} must be one of:\s*([a-z0-9_,\s-]+?)\.", text)
        if listed:
            choices[flag] = frozenset(v.strip() for v in listed.group(1).split(",") if v.strip())
    return path, is_group, frozenset(names), choices


class HelpCache:
    """gcloud --help, read once per command path for the whole test session."""

    def __init__(self, gcloud: str) -> None:
        self.gcloud = gcloud
        self.by_path: dict[tuple[str, ...], Help] = {}
        self.errors: dict[tuple[str, ...], str] = {}
        self.lock = threading.Lock()
        self.calls = 0
        self.env = {**os.environ, "TERM": "dumb", "PAGER": "cat", "CLOUDSDK_CORE_DISABLE_PROMPTS": "1"}

    def known(self, tokens: tuple[str, ...]) -> Help | str | None:
        with self.lock:
            for n in range(len(tokens), 0, -1):
                if tokens[:n] in self.by_path:
                    return self.by_path[tokens[:n]]
            return self.errors.get(tokens)

    def resolve(self, tokens: tuple[str, ...]) -> Help | str:
        """The help of the command `gcloud <tokens...>` names (positionals included), or why there is none."""
        found = self.known(tokens)
        if found is not None:
            return found
        proc = subprocess.run([self.gcloud, *tokens, "--help"], capture_output=True, text=True, timeout=180,
                              env=self.env, stdin=subprocess.DEVNULL)
        with self.lock:
            if proc.returncode != 0:
                self.errors[tokens] = (proc.stderr or proc.stdout).strip().splitlines()[-1]
                return self.errors[tokens]
            path, is_group, flags, choices = parse_help(proc.stdout)
            if is_group:
                self.errors[tokens] = f"`gcloud {' '.join(path)}` is a command group, not a command"
                return self.errors[tokens]
            self.by_path[path] = Help(path, flags, choices)
            return self.by_path[path]

    def resolve_all(self, commands: list[list[str]]) -> None:
        """Read every needed help page, four at a time, without reading one twice: first one command per
        two-word prefix, then per three-word prefix, then the rest (mostly known by then)."""
        keys = sorted({leading(c) for c in commands})
        with ThreadPoolExecutor(max_workers=4) as pool:
            for width in (2, 3, None):
                todo: dict[tuple[str, ...], tuple[str, ...]] = {}
                for key in keys:
                    if self.known(key) is None:
                        todo.setdefault(key[:width] if width else key, key)
                list(pool.map(self.resolve, todo.values()))
        self.calls = len(self.by_path) + len(self.errors)

    def dump(self) -> dict[str, Any]:
        return {" ".join(path): {"flags": sorted(h.flags), "choices": {k: sorted(v) for k, v in h.choices.items()}}
                for path, h in self.by_path.items()}

    def load(self, stored: dict[str, Any]) -> None:
        for path, h in stored.items():
            key = tuple(path.split())
            self.by_path[key] = Help(key, frozenset(h["flags"]),
                                     {k: frozenset(v) for k, v in h["choices"].items()})


def leading(cmd: list[str]) -> tuple[str, ...]:
    """The words after `gcloud` before the first flag: the command path and its positionals."""
    out = []
    for arg in cmd[1:]:
        if arg.startswith("-"):
            break
        out.append(arg)
    return tuple(out)


def problems_of(cmd: list[str], helps: HelpCache) -> list[str]:
    """Everything about one command line the installed SDK would refuse."""
    found = helps.resolve(leading(cmd))
    line = " ".join(cmd)
    if isinstance(found, str):
        return [f"{line}\n    not a gcloud command: {found}"]
    out = []
    for arg in cmd[1 + len(found.path):]:
        if not arg.startswith("--"):
            continue
        name, has_value, value = arg[2:].partition("=")
        if name not in found.flags:
            out.append(f"{line}\n    `gcloud {' '.join(found.path)}` has no --{name}")
        elif has_value and name in found.choices and value not in found.choices[name] and "<" not in value:
            out.append(f"{line}\n    --{name}={value}: must be one of {sorted(found.choices[name])}")
    return out


def sdk_version(gcloud: str) -> str | None:
    """The installed SDK's version (its VERSION file), or None when it cannot be told."""
    version = Path(os.path.realpath(gcloud)).parent.parent / "VERSION"
    return version.read_text().strip() if version.is_file() else None


@pytest.fixture(scope="session")
def helps(request: pytest.FixtureRequest) -> Iterator[HelpCache]:
    """Read once per session; kept between sessions in pytest's cache under the SDK's version, so a
    second `make test` with the same SDK reads no --help again (another SDK version reads them anew)."""
    gcloud = require_gcloud()
    cache = HelpCache(gcloud)
    store, version = getattr(request.config, "cache", None), sdk_version(gcloud)
    key = f"gmail-crm-sync/gcloud-help/{version}"
    if store is not None and version:
        cache.load(store.get(key, {}))
    yield cache
    if store is not None and version:
        store.set(key, cache.dump())


# ------------------------------------------------------------ the plan


def gcloud_commands(run: Run) -> list[list[str]]:
    return [c for c in run.commands if c and c[0] == "gcloud"]


@pytest.fixture(scope="module")
def plan(tmp_path_factory: pytest.TempPathFactory, helps: HelpCache) -> Run:
    run = dry_run(tmp_path_factory.mktemp("plan"), env=EVERY_OPTION)
    assert run.returncode == 0, run.stderr
    helps.resolve_all(gcloud_commands(run) + runbook_commands())
    return run


def runbook_commands() -> list[list[str]]:
    """Every gcloud command of docs/OPERATIONS.md: code blocks (continuations joined, after pipes) and inline code."""
    text = OPERATIONS.read_text()
    lines: list[str] = []
    for block in re.findall(r"```(?:sh|bash|console)?\n(.*?)```", text, re.S):
        lines += block.replace("\\\n", " ").splitlines()
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    lines += re.findall(r"`(gcloud [^`]+)`", prose)
    out = []
    for line in lines:
        line = line.split(" #", 1)[0]
        # A command substitution's gcloud is a command too: `$(gcloud ... --format='value(x)')`.
        chunks = line.split("$(")
        parts = [p for i, chunk in enumerate(chunks)
                 for p in re.split(r"\||&&|;", chunk.rsplit(")", 1)[0] if i else chunk)]
        for part in parts:
            if part.strip().startswith("gcloud "):
                out.append(shlex.split(part.strip()))
    return out


def test_issue23_every_command_of_the_deploy_plan_is_a_command_of_the_installed_sdk(
        plan: Run, helps: HelpCache) -> None:
    unknown = [p for c in gcloud_commands(plan) for p in problems_of(c, helps) if "not a gcloud command" in p]
    assert not unknown, "\n".join(unknown)


def test_issue23_every_flag_of_the_deploy_plan_is_one_its_command_accepts_with_an_allowed_value(
        plan: Run, helps: HelpCache) -> None:
    bad = [p for c in gcloud_commands(plan) for p in problems_of(c, helps)]
    assert not bad, "\n".join(dict.fromkeys(bad))


def test_issue23_every_gcloud_command_of_the_operators_guide_is_right_for_the_installed_sdk(
        plan: Run, helps: HelpCache) -> None:
    commands = runbook_commands()
    assert len(commands) >= 15, "the runbook's commands were not found"
    bad = [p for c in commands for p in problems_of(c, helps)]
    assert not bad, "\n".join(dict.fromkeys(bad))


def test_the_help_reader_refuses_an_unknown_flag_a_bad_choice_and_a_group(plan: Run, helps: HelpCache) -> None:
    # The check itself, on commands the plan already read (no extra --help).
    assert problems_of(["gcloud", "pubsub", "topics", "create", "t", "--no-such-flag"], helps)
    assert problems_of(["gcloud", "firestore", "indexes", "composite", "create", "--query-scope=galaxy"], helps)
    assert not problems_of(["gcloud", "firestore", "indexes", "composite", "create",
                            "--query-scope=collection-group"], helps)
    assert not problems_of(["gcloud", "functions", "deploy", "f", "--no-allow-unauthenticated"], helps)


# ------------------------------------------------------------ the order


def first_index(run: Run, *prefix: str) -> int:
    cmds = run.commands
    return next(i for i, c in enumerate(cmds) if c[: len(prefix)] == list(prefix))


def firestore_trigger_deploys(run: Run) -> list[int]:
    return [i for i, c in enumerate(run.commands) if c[:3] == ["gcloud", "functions", "deploy"]
            and any(a.startswith("--trigger-event-filters=type=google.cloud.firestore") for a in c)]


def test_issue23_a_full_run_creates_the_database_before_any_function(plan: Run) -> None:
    database = first_index(plan, "gcloud", "firestore", "databases", "create")
    assert database < first_index(plan, "gcloud", "functions", "deploy")


@pytest.mark.parametrize("target", ["contacts_index"])
def test_issue23_a_firestore_triggered_function_deployed_alone_makes_sure_of_the_database_first(
        tmp_path: Path, target: str) -> None:
    run = dry_run(tmp_path, target)
    assert run.returncode == 0, run.stderr
    triggers = firestore_trigger_deploys(run)
    assert triggers, "no Firestore-triggered deploy in the plan"
    assert first_index(run, "gcloud", "firestore", "databases", "describe") < min(triggers)
    assert first_index(run, "gcloud", "firestore", "databases", "create") < min(triggers)


def test_issue23_cloud_build_runs_infra_before_any_function() -> None:
    build = yaml.safe_load((ROOT / "cloudbuild.yaml").read_text())
    steps = build["steps"]
    infra = next(i for i, s in enumerate(steps) if s.get("args", [])[:2] == ["./deploy.sh", "infra"])
    for s in steps:
        if s.get("args", [])[:1] == ["./deploy.sh"] and s["args"][1:] != ["infra"]:
            assert steps[infra]["id"] in s.get("waitFor", []), f"{s['id']} does not wait for infra"


def test_issue23_cloud_resource_manager_is_enabled_for_iam_bindings_and_project_lookups(plan: Run) -> None:
    enable = plan.find("gcloud", "services", "enable")[0]
    assert "cloudresourcemanager.googleapis.com" in enable
    assert first_index(plan, "gcloud", "services", "enable") < first_index(plan, "gcloud", "projects")


# ------------------------------------------------------------ service account ids


def max_prefix() -> int:
    names = subprocess.run(["bash", str(ROOT / "deploy.sh"), "--list-functions"], capture_output=True, text=True,
                           check=True, timeout=30).stdout.split()
    return 30 - 1 - max(len(n) for n in names)


def test_issue23_every_service_account_id_fits_30_characters_with_the_longest_allowed_prefix(tmp_path: Path) -> None:
    prefix = "a" + "b" * (max_prefix() - 1)
    run = dry_run(tmp_path, env={**EVERY_OPTION, "SA_PREFIX": prefix})
    assert run.returncode == 0, run.stderr
    ids = [c[4] for c in run.find("gcloud", "iam", "service-accounts", "create")]
    assert ids and len(ids) == len(set(ids))
    for sa_id in ids:
        assert re.fullmatch(r"[a-z][a-z0-9-]{4,28}[a-z0-9]", sa_id), f"{sa_id!r} ({len(sa_id)} characters)"
    assert max(len(i) for i in ids) == 30


def test_issue23_a_prefix_too_long_for_a_service_account_id_is_refused_before_any_command(tmp_path: Path) -> None:
    run = dry_run(tmp_path, env={**SETTINGS, "SA_PREFIX": "a" * (max_prefix() + 1)})
    assert run.returncode == 2 and not run.stdout and not run.gcloud_called
    assert "SA_PREFIX" in run.stderr and "30" in run.stderr and f"at most {max_prefix()}" in run.stderr


# ------------------------------------------------------------ what Cloud Build receives


def build_upload() -> set[str]:
    proc = subprocess.run([require_gcloud(), "meta", "list-files-for-upload", str(ROOT)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return {line for line in proc.stdout.splitlines() if line.strip()}


def files_the_build_runs(build: dict[str, Any]) -> set[str]:
    """What cloudbuild.yaml's steps run and what those read: deploy.sh and its inputs, make test's inputs."""
    needed = {"Makefile", "pyproject.toml", "requirements.txt", FUNCTIONS_IGNORE}
    for step in build["steps"]:
        script = " ".join([step.get("entrypoint", ""), *step.get("args", [])])
        needed |= {m.lstrip("./") for m in re.findall(r"\./[A-Za-z0-9_./-]+", script)}
        if "make test" in script:  # make test runs lint (shellcheck of named files) and pytest
            make = (ROOT / "Makefile").read_text()
            needed |= set(re.findall(r"shellcheck ([.\w/ -]+)", make)[0].split())
            needed |= {"tests/conftest.py", "tests/__init__.py"}
    deploy = (ROOT / "deploy.sh").read_text()
    needed |= set(re.findall(r"\$SCRIPT_DIR/([\w./-]+)", deploy))
    return needed


def test_issue23_cloud_build_receives_every_file_its_steps_run() -> None:
    build = yaml.safe_load((ROOT / "cloudbuild.yaml").read_text())
    needed = files_the_build_runs(build)
    assert {"deploy.sh", "Makefile", "firestore.indexes.json", FUNCTIONS_IGNORE} <= needed
    missing = needed - build_upload()
    assert not missing, f"gcloud builds submit would not upload: {sorted(missing)}"


def test_issue23_cloud_build_receives_the_whole_source_tree_but_local_state() -> None:
    uploaded = build_upload()
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    if tracked.returncode != 0:  # inside Cloud Build there is no .git: the upload itself is the tree
        pytest.skip("no git checkout here")
    missing = {f for f in tracked.stdout.splitlines() if (ROOT / f).exists()} - uploaded
    assert not missing, f"tracked files gcloud builds submit would leave behind: {sorted(missing)[:20]}"
    for path in uploaded:
        assert not path.startswith((".git/", ".venv/", ".devstack/")) and "__pycache__" not in path, path


def test_issue23_each_function_uploads_only_its_allow_list(plan: Run) -> None:
    for cmd in plan.find("gcloud", "functions", "deploy"):
        assert "--source=." in cmd and f"--ignore-file={FUNCTIONS_IGNORE}" in cmd, cmd[:4]
    assert (ROOT / FUNCTIONS_IGNORE).is_file()


# ------------------------------------------------------------ the operator's guide


def test_issue23_the_operators_guide_lists_every_function_and_the_deployer_roles() -> None:
    text = OPERATIONS.read_text()
    row = next(line for line in text.splitlines() if line.startswith("| functions (2nd gen"))
    names = subprocess.run(["bash", str(ROOT / "deploy.sh"), "--list-functions"], capture_output=True, text=True,
                           check=True, timeout=30).stdout.split()
    for fn in names:
        assert f"`{fn.replace('_', '-')}`" in row, f"{fn} is missing from the functions row"
        assert f"| `{fn}` |" in text, f"{fn} is missing from the grants table"
    for role in ("roles/eventarc.admin", "roles/logging.configWriter", "roles/cloudbuild.builds.editor",
                 "roles/run.builder"):
        assert role in text, role
