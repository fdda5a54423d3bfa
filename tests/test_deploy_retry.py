"""deploy.sh where Google is eventually consistent (issue 23): retried with backoff, and only there.

A first deployment in a new project meets refusals that go away by themselves:
the Eventarc service agent gets its role minutes after the API is enabled ("it
may take a few minutes before all necessary permissions are propagated"), a new
grant is not seen everywhere at once, Firestore refuses index operations while
others run. A stand-in `gcloud` on PATH fails chosen commands a chosen number of
times with Google's messages; deploy.sh must retry those, give up at once on a
failure that stays, accept an index that already exists, and never let a failed
Firestore operation stop the scheduler jobs. RETRY_FIRST_DELAY=0: no test waits.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = {
    "PROJECT_ID": "acme-crm-prod",
    "REGION": "europe-west1",
    "CRM_INVOKER_SA": "crm-backend@acme-crm.iam.gserviceaccount.com",
    "OAUTH_REDIRECT_BASE": "https://europe-west1-acme-crm-prod.cloudfunctions.net/oauth-browser",
    "RETRY_FIRST_DELAY": "0",
}
EVENTARC_PROPAGATING = (
    "ERROR: (gcloud.functions.deploy) ResponseError: status=[400], code=[Ok], message=[Validation failed for "
    "trigger projects/acme-crm-prod/locations/europe-west1/triggers/gmail-push-123: Invalid resource state for "
    "\"\": Permission denied while using the Eventarc Service Agent. If you recently started to use Eventarc, it "
    "may take a few minutes before all necessary permissions are propagated to the Service Agent. Otherwise, "
    "verify that it has Eventarc Service Agent role.]")
BUILD_FAILED = ("ERROR: (gcloud.functions.deploy) OperationError: code=3, message=Build failed with status: "
                "FAILURE. Could not build the function due to a missing module.")

# Fails a command whose words contain a rule's `match` the rule's `times` (or always: -1) with its message.
FAKE_GCLOUD = r'''#!/usr/bin/env python3
import json, os, sys
args = sys.argv[1:]
line = " ".join(args)
state_path = os.environ["FAKE_STATE"]
state = json.load(open(state_path)) if os.path.exists(state_path) else {"calls": [], "failed": {}}
state["calls"].append(line)
code, out = 0, ""
for i, rule in enumerate(json.loads(os.environ.get("FAKE_RULES", "[]"))):
    if rule["match"] in line:
        done = state["failed"].get(str(i), 0)
        if rule["times"] < 0 or done < rule["times"]:
            state["failed"][str(i)] = done + 1
            sys.stderr.write(rule["message"] + "\n")
            code = 1
        break
else:
    if " describe " in f" {line} " and "--format=" not in line:
        code = 1                                   # a fresh project: nothing exists yet
    elif "--format=" in line:
        out = "x"                                  # a looked-up value
json.dump(state, open(state_path, "w"))
if out:
    print(out)
sys.exit(code)
'''


def deploy(tmp_path: Path, *targets: str, rules: list[dict[str, Any]]) -> tuple[subprocess.CompletedProcess[str],
                                                                                 list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "gcloud").write_text(FAKE_GCLOUD)
    (bin_dir / "gcloud").chmod(0o755)
    state = tmp_path / "state.json"
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path), "FAKE_STATE": str(state),
           "FAKE_RULES": json.dumps(rules), **SETTINGS}
    proc = subprocess.run(["bash", str(ROOT / "deploy.sh"), *targets], env=env, capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    calls = json.loads(state.read_text())["calls"] if state.exists() else []
    return proc, calls


def count(calls: list[str], *words: str) -> int:
    return sum(all(w in c for w in words) for c in calls)


def test_issue23_a_trigger_deploy_refused_while_the_eventarc_agent_propagates_is_retried(tmp_path: Path) -> None:
    proc, calls = deploy(tmp_path, "gmail_push",
                         rules=[{"match": "functions deploy gmail-push", "times": 2, "message": EVENTARC_PROPAGATING}])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert count(calls, "functions deploy gmail-push") == 3
    assert "retrying" in proc.stderr


def test_issue23_a_firestore_trigger_deploy_waits_for_the_database_and_the_agent(tmp_path: Path) -> None:
    proc, calls = deploy(tmp_path, "contacts_index", rules=[
        {"match": "functions deploy contacts-index", "times": 1,
         "message": "ERROR: (gcloud.functions.deploy) NOT_FOUND: Database '(default)' does not exist."}])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert count(calls, "firestore databases create") == 1
    assert calls.index(next(c for c in calls if "firestore databases create" in c)) < calls.index(
        next(c for c in calls if "functions deploy contacts-index" in c))
    assert count(calls, "functions deploy contacts-index") == 2


def test_issue23_a_deploy_failure_that_stays_is_not_retried(tmp_path: Path) -> None:
    proc, calls = deploy(tmp_path, "gmail_push",
                         rules=[{"match": "functions deploy gmail-push", "times": -1, "message": BUILD_FAILED}])
    assert proc.returncode != 0
    assert count(calls, "functions deploy gmail-push") == 1
    assert "Build failed" in proc.stderr


def test_issue23_a_propagation_that_never_ends_gives_up_after_the_attempts(tmp_path: Path) -> None:
    rules = [{"match": "functions deploy quota-reset", "times": -1, "message": EVENTARC_PROPAGATING}]
    proc, calls = deploy(tmp_path, "quota_reset", rules=rules)
    assert proc.returncode != 0
    assert count(calls, "functions deploy quota-reset") == 7  # RETRY_ATTEMPTS' default
    assert "failed after retries" in proc.stderr


def test_issue23_an_iam_grant_not_yet_visible_is_retried(tmp_path: Path) -> None:
    proc, calls = deploy(tmp_path, "send_email", rules=[
        {"match": "secrets add-iam-policy-binding crm-api-key", "times": 2,
         "message": "ERROR: (gcloud.secrets.add-iam-policy-binding) INVALID_ARGUMENT: Service account "
                    "crm-sync-send-email@acme-crm-prod.iam.gserviceaccount.com does not exist."}])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert count(calls, "secrets add-iam-policy-binding crm-api-key") == 3


def test_issue23_an_index_that_already_exists_is_success(tmp_path: Path) -> None:
    proc, calls = deploy(tmp_path, "infra", rules=[
        {"match": "firestore indexes composite create", "times": -1,
         "message": "ERROR: (gcloud.firestore.indexes.composite.create) ALREADY_EXISTS: index already exists"}])
    assert proc.returncode == 0, proc.stderr[-2000:]
    indexes = json.loads((ROOT / "firestore.indexes.json").read_text())["indexes"]
    assert count(calls, "firestore indexes composite create") == len(indexes)  # once each, no retry


def test_issue23_a_firestore_operation_refused_for_now_is_retried(tmp_path: Path) -> None:
    proc, calls = deploy(tmp_path, "infra", rules=[
        {"match": "firestore fields ttls update expireAt --collection-group=sync_idempotency", "times": 2,
         "message": "ERROR: (gcloud.firestore.fields.ttls.update) FAILED_PRECONDITION: the field is being updated "
                    "by another operation; try again later"}])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert count(calls, "firestore fields ttls update expireAt --collection-group=sync_idempotency") == 3


def test_issue23_a_failed_firestore_operation_does_not_stop_the_scheduler_jobs(tmp_path: Path) -> None:
    proc, calls = deploy(tmp_path, "infra", rules=[
        {"match": "firestore fields ttls update", "times": -1,
         "message": "ERROR: (gcloud.firestore.fields.ttls.update) INVALID_ARGUMENT: bad field path"}])
    assert proc.returncode == 1
    assert count(calls, "scheduler jobs create pubsub gmail-crm-sync-daily-tick") == 1
    assert count(calls, "scheduler jobs create pubsub gmail-crm-sync-sweep") == 1
    assert count(calls, "logging metrics create") == 2
    assert count(calls, "firestore indexes fields update") >= 1  # the operations after the failed one ran too
    assert "these Firestore operations failed" in proc.stderr and "ttls update" in proc.stderr.split("failed")[-1]
