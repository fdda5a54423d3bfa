"""deploy.sh for real (not --dry-run), against a stand-in `gcloud` that keeps state.

Google cannot be reached here, so a small `gcloud` replacement on PATH
remembers what exists (resources, bindings, jobs, indexes) and answers like
gcloud does: describe fails for what is absent, create fails with
ALREADY_EXISTS for what is present. That is enough to prove the script's own
logic, which the dry run cannot: a second run creates nothing and fails on
nothing, a create lost to a parallel run is accepted, and values looked up at
run time (project number, Eventarc subscription) reach the commands that need
them.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = {
    "PROJECT_ID": "acme-crm-prod",
    "REGION": "europe-west1",
    "CRM_INVOKER_SA": "crm-backend@acme-crm.iam.gserviceaccount.com",
    "OAUTH_REDIRECT_BASE": "https://europe-west1-acme-crm-prod.cloudfunctions.net/oauth-browser",
}

FAKE_GCLOUD = r'''#!/usr/bin/env python3
"""A stateful stand-in for gcloud (tests/test_deploy_idempotent.py)."""
import json, os, sys

state_path = os.environ["FAKE_GCLOUD_STATE"]
state = json.load(open(state_path)) if os.path.exists(state_path) else {
    "resources": [], "bindings": [], "calls": [], "race": os.environ.get("FAKE_GCLOUD_RACE", "")}
args = sys.argv[1:]
state["calls"].append(args)
VERBS = ("describe", "create", "update", "enable", "deploy", "add-iam-policy-binding",
         "add-invoker-policy-binding", "list")
verb_at = next(i for i, a in enumerate(args) if a in VERBS)
kind, verb, rest = " ".join(args[:verb_at]), args[verb_at], args[verb_at + 1:]
positional = [a for a in rest if not a.startswith("--") and a != "pubsub"]
flags = dict(a[2:].split("=", 1) if "=" in a else (a[2:], "") for a in rest if a.startswith("--"))
name = positional[0] if positional else flags.get("database", "")
if kind == "iam service-accounts":
    name = name.split("@")[0]          # describe takes the email, create the account id
if kind == "firestore indexes composite":
    name = " ".join(sorted(a for a in rest if a.startswith(("--collection-group", "--field-config"))))
key = f"{kind}/{name}"
out, code = "", 0

def save():
    json.dump(state, open(state_path, "w"))

if verb == "describe" and kind == "projects":
    out = "123456789012"
elif verb == "describe" and kind == "functions":
    out = f"projects/p/locations/r/triggers/{name}-trigger"
elif verb == "describe" and kind == "eventarc triggers":
    out = f"projects/p/subscriptions/eventarc-{name.rsplit('/', 1)[-1]}-sub"
elif verb == "describe":
    if key == state["race"]:           # a parallel run creates it right after this describe
        state["race"] = ""
        state["resources"].append(key)
        code = 1
    elif key not in state["resources"]:
        code = 1
elif verb == "create":
    if key in state["resources"]:
        sys.stderr.write(f"ERROR: ALREADY_EXISTS: {key} already exists\n")
        code = 1
    else:
        state["resources"].append(key)
elif verb == "update" and kind == "scheduler jobs" and key not in state["resources"]:
    code = 1
elif verb in ("add-iam-policy-binding", "add-invoker-policy-binding"):
    binding = [kind, name, flags.get("member"), flags.get("role", "roles/run.invoker")]
    if binding not in state["bindings"]:
        state["bindings"].append(binding)
elif verb == "list":
    out = ""                          # no secret has a version yet
save()
if out:
    print(out)
sys.exit(code)
'''


def run_deploy(tmp_path: Path, *args: str, race: str = "") -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "gcloud"
    fake.write_text(FAKE_GCLOUD)
    fake.chmod(0o755)
    state_file = tmp_path / "state.json"
    if race and state_file.exists():
        state = json.loads(state_file.read_text())
        state["race"] = race
        state_file.write_text(json.dumps(state))
    calls_before = len(json.loads(state_file.read_text())["calls"]) if state_file.exists() else 0
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path), "FAKE_GCLOUD_STATE": str(state_file),
           "FAKE_GCLOUD_RACE": race, **SETTINGS}
    proc = subprocess.run(["bash", str(ROOT / "deploy.sh"), *args], env=env, capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    state = json.loads(state_file.read_text())
    state["calls"] = state["calls"][calls_before:]  # this run's calls only
    return proc, state


def creates(state: dict[str, Any]) -> list[list[str]]:
    return [c for c in state["calls"] if "create" in c[:5]]


@pytest.fixture(scope="module")
def twice(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any], str]:
    tmp = tmp_path_factory.mktemp("twice")
    first, state1 = run_deploy(tmp)
    assert first.returncode == 0, first.stderr[-3000:]
    bindings_after_first = list(state1["bindings"])
    second, state2 = run_deploy(tmp)
    assert second.returncode == 0, second.stderr[-3000:]
    assert state2["bindings"] == bindings_after_first, "the second run added a grant"
    return state1, state2, second.stderr


def test_first_run_creates_everything_once(twice: tuple[dict[str, Any], dict[str, Any], str]) -> None:
    state1, _, _ = twice
    made = [" ".join(c) for c in creates(state1)]
    assert made and len(made) == len(set(made))
    assert any(c[:3] == ["pubsub", "topics", "create"] for c in creates(state1))
    # one per function (contacts_index too, R11b; messages, R33)
    assert len([c for c in state1["calls"] if c[:2] == ["functions", "deploy"]]) == 9


def test_second_run_creates_nothing_and_fails_on_nothing(twice: tuple[dict[str, Any], dict[str, Any], str]) -> None:
    _, state2, _ = twice
    # Only composite-index creation is attempted again; ALREADY_EXISTS is success there.
    assert [c for c in creates(state2) if c[:3] != ["firestore", "indexes", "composite"]] == []
    verbs = [c[:4] for c in state2["calls"] if c[:3] == ["scheduler", "jobs", "update"]]
    assert len(verbs) == 2  # existing jobs are updated, not re-created
    control = [c for c in state2["calls"] if c[:4] == ["pubsub", "subscriptions", "update", "sync-control-push"]]
    assert len(control) == 1  # the control subscription too (its settings follow the script)


def test_run_time_lookups_reach_the_commands_that_need_them(
    twice: tuple[dict[str, Any], dict[str, Any], str]
) -> None:
    state1, _, _ = twice
    updates = [c for c in state1["calls"] if c[:3] == ["pubsub", "subscriptions", "update"]]
    control = [c for c in state1["calls"] if c[:4] == ["pubsub", "subscriptions", "create", "sync-control-push"]]
    endpoint = [a for a in control[0] if a.startswith("--push-endpoint=")] if len(control) == 1 else []
    # the function's URL was looked up at run time (the stand-in answers its describe with a fixed path)
    assert endpoint == ["--push-endpoint=projects/p/locations/r/triggers/gmail-push-trigger"
                        "/projects/acme-crm-prod/topics/sync-control"]
    assert sorted(u[3] for u in updates) == [
        "projects/p/subscriptions/eventarc-gmail-push-trigger-sub",
        "projects/p/subscriptions/eventarc-quota-reset-trigger-sub",
    ]
    agent = "serviceAccount:service-123456789012@gcp-sa-pubsub.iam.gserviceaccount.com"
    assert ["pubsub topics", "dead-letters", agent, "roles/pubsub.publisher"] in state1["bindings"]


def test_secrets_without_a_value_are_named_in_a_warning(twice: tuple[dict[str, Any], dict[str, Any], str]) -> None:
    _, _, stderr = twice
    assert "these secrets have no value yet: oauth-client token-encryption-key" in stderr


def test_a_create_lost_to_a_parallel_run_is_not_an_error(tmp_path: Path) -> None:
    proc, _ = run_deploy(tmp_path, "quota_reset", race="pubsub topics/crm-events")
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc, state = run_deploy(tmp_path, "quota_reset")
    assert proc.returncode == 0
    assert "pubsub topics/crm-events" in state["resources"]
