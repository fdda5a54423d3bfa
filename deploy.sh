#!/usr/bin/env bash
# Deploy gmail-crm-sync to Google Cloud (docs/OPERATIONS.md is the operator's guide).
#
#   ./deploy.sh [--dry-run] [options] [target ...]
#
# Targets: every function of FUNCTION_TABLE below (`./deploy.sh --list-functions`), and infra.
# No target means everything: infra first (the Firestore database must exist
# before a Firestore trigger is created), then every function. A function
# target sets up everything that function needs on its own (APIs, its service
# account and grants, its topics and secrets, the function, its trigger
# subscription), so Cloud Build deploys them in parallel; `infra` is the project-wide rest
# (Firestore database, indexes, TTL policies, all topics, Gmail's publisher
# grant, the mail bucket (R32), all secrets, Cloud Scheduler jobs).
#
# Idempotent: everything is described before it is created, IAM bindings and
# updates are create-or-update, so a second run changes nothing and fails on
# nothing. --dry-run prints, in order, one per line, every command a run on a
# fresh project would run (every "describe" finds nothing there) and calls no
# gcloud at all; values only known at run time are shown as <PLACEHOLDERS>.
#
# Secrets are created empty; their values are never read, printed or passed on
# a command line by this script (add them with `gcloud secrets versions add
# NAME --data-file=-`, see docs/OPERATIONS.md).
set -euo pipefail

# One line per function: adding a function is adding its row (and its step in cloudbuild.yaml;
# tests/test_cloudbuild.py compares the two).
#   access:    public (anyone: the rep's browser), crm (only CRM_INVOKER_SA, plus the CRM API key),
#              inbound (public behind the inbound key, or only INBOUND_INVOKER_SA when set),
#              internal (only its own trigger identity)
#   trigger:   http, firestore (document writes, see firestore_trigger) or the variable naming its topic
#   resources: memory/timeout/max-instances/concurrency. HTTP handlers are thread-safe, so one
#              instance serves many requests; send_email and attachments hold up to 25 MB attachments
#              (plus their MIME or base64 encoding) per request, hence more memory and fewer at once.
#   needs:     redirect (OAUTH_REDIRECT_BASE; gets OAUTH_REDIRECT_URI), watch (calls users.watch: Gmail
#              may publish to the watch topic), control (gmail_push's control subscription),
#              keep (R32: creates objects in the mail bucket, roles/storage.objectCreator),
#              kept (reads them, roles/storage.objectViewer); either gets STORAGE_BUCKET
#   secrets:   exactly the secrets its code reads (secret-level grants; docs/OPERATIONS.md)
#   publishes: the variables naming the topics it publishes to
# contacts_index first: the sync backfills its contact index only once the trigger exists (R11b).
# name          access   trigger           resources        needs                 secrets                                                        publishes
readonly FUNCTION_TABLE=(
  "contacts_index internal firestore         256Mi/60s/20/8   -                     -                                                              -"
  "oauth          crm      http              512Mi/60s/20/40  redirect              oauth-client,token-encryption-key,oauth-state-key,crm-api-key  CRM_EVENTS_TOPIC,SYNC_CONTROL_TOPIC"
  "oauth_browser  public   http              512Mi/60s/20/40  redirect,watch        oauth-client,token-encryption-key,oauth-state-key              CRM_EVENTS_TOPIC,SYNC_CONTROL_TOPIC"
  "gmail_push     internal GMAIL_WATCH_TOPIC 512Mi/300s/30/4  watch,control,keep    oauth-client,token-encryption-key                              CRM_EVENTS_TOPIC,SYNC_CONTROL_TOPIC"
  "send_email     crm      http              1Gi/120s/30/8    keep                  oauth-client,token-encryption-key,crm-api-key                  CRM_EVENTS_TOPIC"
  "quota_reset    internal DAILY_TICK_TOPIC  512Mi/540s/1/1   watch                 oauth-client,token-encryption-key                              CRM_EVENTS_TOPIC,SYNC_CONTROL_TOPIC,DAILY_TICK_TOPIC"
  "auto_bcc       inbound  http              1Gi/60s/10/20    keep                  inbound-api-key                                                CRM_EVENTS_TOPIC"
  "attachments    crm      http              1Gi/60s/20/8     kept                  oauth-client,token-encryption-key,crm-api-key                  CRM_EVENTS_TOPIC"
  "messages       crm      http              1Gi/60s/20/8     kept                  oauth-client,token-encryption-key,crm-api-key                  CRM_EVENTS_TOPIC"
)
ALL_FUNCTIONS=()
for row in "${FUNCTION_TABLE[@]}"; do
  read -r -a cells <<<"$row"
  ((${#cells[@]} == 7)) || { printf 'deploy.sh: FUNCTION_TABLE: 7 columns per row, not: %s\n' "$row" >&2; exit 2; }
  ALL_FUNCTIONS+=("${cells[0]}")
done
readonly ALL_FUNCTIONS
# fn_column FUNCTION COLUMN: one cell of FUNCTION_TABLE (columns 1..6 after the name), commas as
# spaces, "-" as nothing.
fn_column() {
  local row cols
  for row in "${FUNCTION_TABLE[@]}"; do
    read -r -a cols <<<"$row"
    if [[ "${cols[0]}" == "$1" ]]; then
      [[ "${cols[$2]}" == - ]] || echo "${cols[$2]//,/ }"
      return 0
    fi
  done
  return 1
}
fn_access() { fn_column "$1" 1; }
fn_needs() { [[ " $(fn_column "$1" 4) " == *" $2 "* ]]; } # FUNCTION NEED
fn_secrets() { fn_column "$1" 5; }
# Firestore-triggered functions: the document pattern each one is triggered by.
readonly CONTACTS_PATTERN='accounts/{accountId}/contacts/{contactId}'
readonly ALL_SECRETS=(oauth-client token-encryption-key oauth-state-key crm-api-key inbound-api-key)
readonly APIS=(
  cloudfunctions.googleapis.com run.googleapis.com cloudbuild.googleapis.com
  artifactregistry.googleapis.com eventarc.googleapis.com pubsub.googleapis.com
  firestore.googleapis.com secretmanager.googleapis.com cloudscheduler.googleapis.com
  iam.googleapis.com gmail.googleapis.com logging.googleapis.com
  cloudresourcemanager.googleapis.com storage.googleapis.com
)
readonly GMAIL_PUSH_SA="serviceAccount:gmail-api-push@system.gserviceaccount.com"
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly SCRIPT_DIR

usage() {
  cat <<'EOF'
Usage: ./deploy.sh [--dry-run] [options] [target ...]

Targets: infra and every function (./deploy.sh --list-functions); default: all,
infra first.

Options (each also read from the environment variable in brackets):
  --project ID               [PROJECT_ID]           required
  --region REGION            [REGION]               required (e.g. europe-west1)
  --crm-invoker-sa EMAIL     [CRM_INVOKER_SA]       required for oauth, send_email, attachments and messages:
                                                    the CRM's service account, their only invoker
  --oauth-redirect-base URL  [OAUTH_REDIRECT_BASE]  required for oauth and oauth_browser:
                                                    public https URL of the oauth_browser
                                                    function; the CRM's authorization URLs
                                                    lead to <URL>/start, Google redirects
                                                    to <URL>/callback
  --return-url-allowlist URL [RETURN_URL_ALLOWLIST] default https:// (any https host): set it to
                                                    your CRM's URL prefixes, comma-separated,
                                                    e.g. https://crm.acme.example/
  --auto-bcc-domain DOMAIN   [AUTO_BCC_DOMAIN]      default bcc.example.invalid
  --timezone TZ              [SEND_LIMIT_TIMEZONE]  default UTC (the daily tick's schedule)
  --inbound-invoker-sa EMAIL [INBOUND_INVOKER_SA]   optional: make auto_bcc private to it
  --dry-run                                         print the commands, run nothing
  --list-functions                                  print the function names, one a line
  -h, --help
Other settings (environment only, defaults in brackets): FIRESTORE_LOCATION [REGION],
STORAGE_BUCKET [PROJECT_ID-crm-mail], STORAGE_LOCATION [FIRESTORE_LOCATION; eur3: EU, nam5/nam7: US],
SCHEDULER_LOCATION [REGION], DAILY_SEND_LIMIT [500], DAILY_TICK_SCHEDULE [0 0 * * *],
SWEEP_SCHEDULE [* * * * *], MAX_DELIVERY_ATTEMPTS [10], SA_PREFIX [crm-sync],
GMAIL_WATCH_TOPIC [gmail-watch], DAILY_TICK_TOPIC [daily-tick], CRM_EVENTS_TOPIC
[crm-events], DEAD_LETTER_TOPIC [dead-letters], SYNC_CONTROL_TOPIC [sync-control],
SWEEP_TOPIC [SYNC_CONTROL_TOPIC], ACK_DEADLINE_SECONDS [600],
SYNC_LEASE_SECONDS [60], SYNC_STALE_SECONDS [180], SYNC_SWEEP_SECONDS [1800],
SYNC_SWEEP_SHARDS [16], SYNC_DEADLINE_SECONDS [240], SYNC_MAX_PASS_SECONDS [200],
GMAIL_RETRY_BUDGET_SECONDS [20], GMAIL_QUOTA_MODEL [2026: the project's Gmail limits; legacy for a
project that used Gmail before May 2026], GMAIL_USER_UNITS_PER_SECOND [unset: 90 % of the model's per-user limit],
WATCH_RENEW_WITHIN_SECONDS [172800], QUOTA_RESET_BUDGET_SECONDS [480],
SECRET_TTL_SECONDS [60], AUTO_BCC_RATE_PER_MINUTE [30], AUTO_BCC_AUTHSERV_ID [unset:
the topmost Authentication-Results is read],
BUILD_SERVICE_ACCOUNT [unset: Cloud Build's default], RETRY_ATTEMPTS [7],
RETRY_FIRST_DELAY [10 s, doubled each retry], RETRY_MAX_DELAY [120 s].
EOF
}

die() {
  printf 'deploy.sh: %s\n' "$*" >&2
  exit 2
}

warn() {
  printf 'deploy.sh: warning: %s\n' "$*" >&2
}

# ---------------------------------------------------------------- arguments

DRY_RUN=0
TARGETS=()
while (($#)); do
  case "$1" in
    --dry-run) DRY_RUN=1 ;;
    --list-functions) printf '%s\n' "${ALL_FUNCTIONS[@]}"; exit 0 ;;
    -h | --help) usage; exit 0 ;;
    --project) PROJECT_ID="${2:?--project needs a value}"; shift ;;
    --project=*) PROJECT_ID="${1#*=}" ;;
    --region) REGION="${2:?--region needs a value}"; shift ;;
    --region=*) REGION="${1#*=}" ;;
    --crm-invoker-sa) CRM_INVOKER_SA="${2:?--crm-invoker-sa needs a value}"; shift ;;
    --crm-invoker-sa=*) CRM_INVOKER_SA="${1#*=}" ;;
    --oauth-redirect-base) OAUTH_REDIRECT_BASE="${2:?--oauth-redirect-base needs a value}"; shift ;;
    --oauth-redirect-base=*) OAUTH_REDIRECT_BASE="${1#*=}" ;;
    --return-url-allowlist) RETURN_URL_ALLOWLIST="${2:?--return-url-allowlist needs a value}"; shift ;;
    --return-url-allowlist=*) RETURN_URL_ALLOWLIST="${1#*=}" ;;
    --auto-bcc-domain) AUTO_BCC_DOMAIN="${2:?--auto-bcc-domain needs a value}"; shift ;;
    --auto-bcc-domain=*) AUTO_BCC_DOMAIN="${1#*=}" ;;
    --timezone) SEND_LIMIT_TIMEZONE="${2:?--timezone needs a value}"; shift ;;
    --timezone=*) SEND_LIMIT_TIMEZONE="${1#*=}" ;;
    --inbound-invoker-sa) INBOUND_INVOKER_SA="${2:?--inbound-invoker-sa needs a value}"; shift ;;
    --inbound-invoker-sa=*) INBOUND_INVOKER_SA="${1#*=}" ;;
    -*) usage >&2; die "unknown option: $1" ;;
    *) TARGETS+=("${1//-/_}") ;;
  esac
  shift
done

if ((${#TARGETS[@]} == 0)); then
  TARGETS=(infra "${ALL_FUNCTIONS[@]}")
fi
for t in "${TARGETS[@]}"; do
  [[ " infra ${ALL_FUNCTIONS[*]} " == *" $t "* ]] || die "unknown target '$t' (choose from: infra ${ALL_FUNCTIONS[*]})"
done

selected() {
  local t
  for t in "${TARGETS[@]}"; do [[ "$t" == "$1" ]] && return 0; done
  return 1
}

# ------------------------------------------------------------ configuration

PROJECT_ID="${PROJECT_ID:-}"
REGION="${REGION:-}"
CRM_INVOKER_SA="${CRM_INVOKER_SA:-}"
OAUTH_REDIRECT_BASE="${OAUTH_REDIRECT_BASE:-}"
INBOUND_INVOKER_SA="${INBOUND_INVOKER_SA:-}"
BUILD_SERVICE_ACCOUNT="${BUILD_SERVICE_ACCOUNT:-}"
RETURN_URL_ALLOWLIST="${RETURN_URL_ALLOWLIST:-https://}"
AUTO_BCC_DOMAIN="${AUTO_BCC_DOMAIN:-bcc.example.invalid}"
SEND_LIMIT_TIMEZONE="${SEND_LIMIT_TIMEZONE:-UTC}"
DAILY_SEND_LIMIT="${DAILY_SEND_LIMIT:-500}"
DAILY_TICK_SCHEDULE="${DAILY_TICK_SCHEDULE:-0 0 * * *}"
SWEEP_SCHEDULE="${SWEEP_SCHEDULE:-* * * * *}"
MAX_DELIVERY_ATTEMPTS="${MAX_DELIVERY_ATTEMPTS:-10}"
SA_PREFIX="${SA_PREFIX:-crm-sync}"
GMAIL_WATCH_TOPIC="${GMAIL_WATCH_TOPIC:-gmail-watch}"
DAILY_TICK_TOPIC="${DAILY_TICK_TOPIC:-daily-tick}"
CRM_EVENTS_TOPIC="${CRM_EVENTS_TOPIC:-crm-events}"
DEAD_LETTER_TOPIC="${DEAD_LETTER_TOPIC:-dead-letters}"
# ---- the sync's control path and scale settings (issue 11; docs/SCALE.md)
# The sync's own messages (forced syncs, sweeps, renewals, continuations) have
# their own topic and push subscription to gmail_push, apart from Gmail's
# notifications: their own ack deadline, backlog and dead letters.
SYNC_CONTROL_TOPIC="${SYNC_CONTROL_TOPIC:-sync-control}"
SWEEP_TOPIC="${SWEEP_TOPIC:-$SYNC_CONTROL_TOPIC}"
# Longer than every Pub/Sub-triggered function's timeout (300 s, 540 s): a
# running invocation is never delivered a second time. 600 is Pub/Sub's maximum.
ACK_DEADLINE_SECONDS="${ACK_DEADLINE_SECONDS:-600}"
SYNC_LEASE_SECONDS="${SYNC_LEASE_SECONDS:-60}"
SYNC_STALE_SECONDS="${SYNC_STALE_SECONDS:-180}"
SYNC_SWEEP_SECONDS="${SYNC_SWEEP_SECONDS:-1800}"
SYNC_SWEEP_SHARDS="${SYNC_SWEEP_SHARDS:-16}"
SYNC_DEADLINE_SECONDS="${SYNC_DEADLINE_SECONDS:-240}"
SYNC_MAX_PASS_SECONDS="${SYNC_MAX_PASS_SECONDS:-200}"
GMAIL_RETRY_BUDGET_SECONDS="${GMAIL_RETRY_BUDGET_SECONDS:-20}"
GMAIL_QUOTA_MODEL="${GMAIL_QUOTA_MODEL:-2026}"
GMAIL_USER_UNITS_PER_SECOND="${GMAIL_USER_UNITS_PER_SECOND:-}"
WATCH_RENEW_WITHIN_SECONDS="${WATCH_RENEW_WITHIN_SECONDS:-172800}"
QUOTA_RESET_BUDGET_SECONDS="${QUOTA_RESET_BUDGET_SECONDS:-480}"
# ---- keys and Auto BCC (issue 23; docs/OPERATIONS.md "Key rotation", docs/API_AUTO_BCC.md)
# How long an instance trusts a secret it read: a rotated or disabled key reaches it within this.
SECRET_TTL_SECONDS="${SECRET_TTL_SECONDS:-60}"
AUTO_BCC_RATE_PER_MINUTE="${AUTO_BCC_RATE_PER_MINUTE:-30}"
# The inbound relay's authserv-id: only its Authentication-Results verdict is read (unset: the topmost).
AUTO_BCC_AUTHSERV_ID="${AUTO_BCC_AUTHSERV_ID:-}"

# Every problem is reported at once, before any command runs.
problems=()
require() { # NAME FLAG WHY
  [[ -n "${!1}" ]] || problems+=("$1 is not set ($2): $3")
}
require PROJECT_ID --project "the Google Cloud project to deploy to"
require REGION --region "where the functions, scheduler jobs and Firestore live"
# Which settings the selected functions need, by their rows of FUNCTION_TABLE.
CRM_FUNCTIONS=() REDIRECT_FUNCTIONS=() PUBLIC_FUNCTIONS=()
for fn in "${ALL_FUNCTIONS[@]}"; do
  selected "$fn" || continue
  [[ "$(fn_access "$fn")" != crm ]] || CRM_FUNCTIONS+=("$fn")
  [[ "$(fn_access "$fn")" != public && "$(fn_access "$fn")" != inbound ]] || PUBLIC_FUNCTIONS+=("$fn")
  ! fn_needs "$fn" redirect || REDIRECT_FUNCTIONS+=("$fn")
done
if ((${#CRM_FUNCTIONS[@]})); then
  require CRM_INVOKER_SA --crm-invoker-sa \
    "${CRM_FUNCTIONS[*]} are private; name the CRM's service account that may invoke them"
fi
if ((${#REDIRECT_FUNCTIONS[@]})); then
  require OAUTH_REDIRECT_BASE --oauth-redirect-base \
    "the public https URL of the oauth_browser function, e.g. https://REGION-PROJECT.cloudfunctions.net/oauth-browser"
fi
FIRESTORE_LOCATION="${FIRESTORE_LOCATION:-$REGION}"
# R32's mail bucket (bodies, attachment bytes) sits where Firestore does: the same region, or the
# Cloud Storage multi-region holding Firestore's (eur3 is in the EU, nam5 and nam7 in the US).
STORAGE_BUCKET="${STORAGE_BUCKET:-${PROJECT_ID:+${PROJECT_ID}-crm-mail}}"
case "$FIRESTORE_LOCATION" in
  eur3) default_storage_location=EU ;;
  nam5 | nam7) default_storage_location=US ;;
  *) default_storage_location="$FIRESTORE_LOCATION" ;;
esac
STORAGE_LOCATION="${STORAGE_LOCATION:-$default_storage_location}"
SCHEDULER_LOCATION="${SCHEDULER_LOCATION:-$REGION}"

check() { # VALUE REGEX MESSAGE
  [[ -z "$1" || "$1" =~ $2 ]] || problems+=("$3")
}
check "$PROJECT_ID" '^[a-z][a-z0-9-]{4,28}[a-z0-9]$|^[a-z0-9.-]+:[a-z][a-z0-9-]{4,28}[a-z0-9]$' \
  "PROJECT_ID '$PROJECT_ID' is not a project id"
check "$REGION" '^[a-z]+-[a-z]+[0-9]$' "REGION '$REGION' is not a region like europe-west1"
check "$CRM_INVOKER_SA" '^[^@[:space:]]+@[^@[:space:]]+\.iam\.gserviceaccount\.com$' \
  "CRM_INVOKER_SA '$CRM_INVOKER_SA' is not a service account email"
check "$INBOUND_INVOKER_SA" '^[^@[:space:]]+@[^@[:space:]]+$' \
  "INBOUND_INVOKER_SA '$INBOUND_INVOKER_SA' is not a service account email"
check "$OAUTH_REDIRECT_BASE" '^https://[^[:space:]]+[^/]$' \
  "OAUTH_REDIRECT_BASE must be an https URL without a trailing slash (Google only redirects to https)"
check "$STORAGE_BUCKET" '^[a-z0-9][a-z0-9_-]{1,61}[a-z0-9]$' \
  "STORAGE_BUCKET '$STORAGE_BUCKET' is not a bucket name (3-63 lower-case letters, digits, - or _): set STORAGE_BUCKET"
check "$DAILY_SEND_LIMIT" '^[1-9][0-9]*$' "DAILY_SEND_LIMIT must be a positive integer"
check "$GMAIL_QUOTA_MODEL" '^(2026|legacy)$' "GMAIL_QUOTA_MODEL must be 2026 or legacy"
check "$MAX_DELIVERY_ATTEMPTS" '^([5-9]|[1-9][0-9]|100)$' "MAX_DELIVERY_ATTEMPTS must be 5..100 (Pub/Sub's range)"
check "$ACK_DEADLINE_SECONDS" '^([3-5][0-9][0-9]|600)$' "ACK_DEADLINE_SECONDS must be 300..600 (above gmail_push's 300 s timeout; Pub/Sub allows 600)"
for v in SYNC_SWEEP_SECONDS SYNC_SWEEP_SHARDS SYNC_DEADLINE_SECONDS SYNC_MAX_PASS_SECONDS QUOTA_RESET_BUDGET_SECONDS \
  WATCH_RENEW_WITHIN_SECONDS GMAIL_USER_UNITS_PER_SECOND SECRET_TTL_SECONDS AUTO_BCC_RATE_PER_MINUTE; do
  check "${!v}" '^[1-9][0-9]*$' "$v must be a positive integer"
done
((SYNC_DEADLINE_SECONDS < 300)) 2>/dev/null || problems+=("SYNC_DEADLINE_SECONDS must stay below gmail_push's 300 s timeout")
((QUOTA_RESET_BUDGET_SECONDS < 540)) 2>/dev/null || problems+=("QUOTA_RESET_BUDGET_SECONDS must stay below quota_reset's 540 s timeout")
check "$AUTO_BCC_AUTHSERV_ID" '^[A-Za-z0-9._-]+$' "AUTO_BCC_AUTHSERV_ID must be the relay's authserv-id (a host name like mx.acme.example)"
check "$SEND_LIMIT_TIMEZONE" '^[A-Za-z_]+(/[A-Za-z0-9_+-]+)*$' "SEND_LIMIT_TIMEZONE must be an IANA zone like Europe/Berlin"
# A service account id has 6 to 30 characters; ours are <SA_PREFIX>-<function>, so the longest
# function name bounds the prefix (crm-sync-contacts-index has 23).
longest_fn=""
for fn in "${ALL_FUNCTIONS[@]}"; do ((${#fn} <= ${#longest_fn})) || longest_fn="$fn"; done
readonly SA_PREFIX_MAX=$((30 - 1 - ${#longest_fn}))
if ! [[ "$SA_PREFIX" =~ ^[a-z][a-z0-9-]*[a-z0-9]$ ]]; then
  problems+=("SA_PREFIX '$SA_PREFIX' must be lower-case letters, digits or dashes, start with a letter and end with a letter or digit")
elif ((${#SA_PREFIX} > SA_PREFIX_MAX)); then
  problems+=("SA_PREFIX '$SA_PREFIX' has ${#SA_PREFIX} characters; at most $SA_PREFIX_MAX fit: service account ids have at most 30 and '${SA_PREFIX}-${longest_fn//_/-}' would have $((${#SA_PREFIX} + 1 + ${#longest_fn}))")
fi
# gcloud splits --set-env-vars on this delimiter, so no value may contain it.
readonly ENV_DELIM='@@'
for v in RETURN_URL_ALLOWLIST AUTO_BCC_DOMAIN OAUTH_REDIRECT_BASE SEND_LIMIT_TIMEZONE; do
  [[ "${!v}" != *"$ENV_DELIM"* ]] || problems+=("$v must not contain '$ENV_DELIM'")
done
if ((${#problems[@]})); then
  printf 'deploy.sh: cannot deploy, fix these settings first:\n' >&2
  printf '  - %s\n' "${problems[@]}" >&2
  printf 'Run ./deploy.sh --help for every option.\n' >&2
  exit 2
fi
if ((DRY_RUN == 0)); then
  command -v gcloud >/dev/null || die "gcloud is not installed (https://cloud.google.com/sdk/docs/install)"
fi
if ((${#REDIRECT_FUNCTIONS[@]} + ${#PUBLIC_FUNCTIONS[@]})); then
  [[ "$RETURN_URL_ALLOWLIST" != 'https://' && "$RETURN_URL_ALLOWLIST" != '^https://' ]] ||
    warn "RETURN_URL_ALLOWLIST is the permissive default https:// (any https host); set it to your CRM's origin"
  [[ "$AUTO_BCC_DOMAIN" != 'bcc.example.invalid' ]] ||
    warn "AUTO_BCC_DOMAIN is the placeholder bcc.example.invalid; Auto BCC addresses will not receive mail"
fi

# ------------------------------------------------------------- the runner

# Quote an argument for display only when the shell would need it.
quote() {
  if [[ "$1" =~ ^[A-Za-z0-9_./:=@,+%^-]+$ ]]; then
    printf '%s' "$1"
  else
    printf "'%s'" "${1//\'/\'\\\'\'}"
  fi
}

# Print a command, one line: to stdout in a dry run, as a "+ " trace to stderr otherwise.
show() {
  local line="" arg
  for arg in "$@"; do line+="$(quote "$arg") "; done
  if ((DRY_RUN)); then
    printf '%s\n' "${line% }"
  else
    printf '+ %s\n' "${line% }" >&2
  fi
}

run() {
  show "$@"
  ((DRY_RUN)) || "$@"
}

# ------------------------------------------------- retries with backoff

# Google applies some changes eventually: IAM policy writes race when Cloud Build
# deploys functions in parallel (etag conflicts); a new service account or grant
# is not seen everywhere at once; a new project's Eventarc and Pub/Sub service
# agents get their roles minutes after the APIs are enabled; Firestore refuses
# index operations while others run. Such failures are retried with exponential
# backoff; what fails for good fails on the first attempt.
RETRY_ATTEMPTS="${RETRY_ATTEMPTS:-7}"
RETRY_FIRST_DELAY="${RETRY_FIRST_DELAY:-10}"
RETRY_MAX_DELAY="${RETRY_MAX_DELAY:-120}"
# What gcloud prints for a failure that goes away by itself (status names of google.rpc.Code).
readonly TRANSIENT='propagat|a few minutes|PERMISSION_DENIED|[Pp]ermission denied|does not have permission|does not exist|NOT_FOUND|UNAVAILABLE|RESOURCE_EXHAUSTED|ABORTED|DEADLINE_EXCEEDED|INTERNAL|[Tt]ry again|concurrent|in progress|Error 429|Error 50[0234]|code=(4|8|10|13|14)\b'
LAST_OUTPUT=""

# with_backoff MODE QUIET command...: run, retrying failures with exponential
# backoff: every failure (MODE any: idempotent writes), or those matching
# $TRANSIENT (MODE transient), or those and FAILED_PRECONDITION (MODE firestore:
# an index or field already being changed). ALREADY_EXISTS is never retried.
# Output goes to stderr (stdout dropped when QUIET=1) and the last attempt's is
# kept in LAST_OUTPUT.
with_backoff() {
  local mode="$1" quiet="$2" attempt delay="$RETRY_FIRST_DELAY" out rc pattern="$TRANSIENT"
  shift 2
  [[ "$mode" != firestore ]] || pattern+='|FAILED_PRECONDITION'
  out="$(mktemp)"
  rc="$(mktemp)"
  for ((attempt = 1; ; attempt++)); do
    : >"$rc"
    if ((quiet)); then
      { "$@" 2>&1 >/dev/null || echo "$?" >"$rc"; } | tee "$out" >&2
    else
      { "$@" 2>&1 || echo "$?" >"$rc"; } | tee "$out" >&2
    fi
    LAST_OUTPUT="$(cat "$out")"
    [[ -s "$rc" ]] || break
    if ((attempt >= RETRY_ATTEMPTS)) || [[ "$LAST_OUTPUT" == *ALREADY_EXISTS* ]] ||
      { [[ "$mode" != any ]] && ! grep -Eq "$pattern" "$out"; }; then
      break
    fi
    warn "attempt $attempt of $RETRY_ATTEMPTS failed, retrying in ${delay}s: $*"
    sleep "$delay"
    delay=$((delay * 2 > RETRY_MAX_DELAY ? RETRY_MAX_DELAY : delay * 2))
  done
  local failed=0
  [[ ! -s "$rc" ]] || failed=1
  rm -f "$out" "$rc"
  return "$failed"
}

# run_eventually MODE command...: show and run a command that Google may refuse for a while.
run_eventually() {
  local mode="$1"
  shift
  show "$@"
  ((DRY_RUN)) && return 0
  with_backoff "$mode" 0 "$@" || die "failed after retries: $*"
}

declare -A GRANTED=()
run_retry() {
  # The same grant asked for twice in one run (shared topics) is run once.
  local key="$*"
  [[ -z "${GRANTED[$key]:-}" ]] || return 0
  GRANTED[$key]=1
  show "$@"
  ((DRY_RUN)) && return 0
  with_backoff any 1 "$@" || die "failed after $RETRY_ATTEMPTS attempts: $*"
}

# Does a resource exist? (a describe; never true in a dry run: a fresh project)
exists() {
  show "$@"
  ((DRY_RUN)) && return 1
  "$@" >/dev/null 2>&1
}

# ensure "describe command" "create command": create when absent, and accept
# losing a race to a parallel run that created it in between.
declare -A ENSURED=()
ensure() {
  [[ -z "${ENSURED[$1]:-}" ]] || return 0
  ENSURED[$1]=1
  local -a describe create
  read -r -a describe <<<"$1"
  read -r -a create <<<"$2"
  exists "${describe[@]}" && return 0
  show "${create[@]}"
  ((DRY_RUN)) && return 0
  "${create[@]}" && return 0
  "${describe[@]}" >/dev/null 2>&1 || die "could not create: ${create[*]}"
}

# lookup VAR PLACEHOLDER command...: VAR = the command's output (placeholder in a dry run).
lookup() {
  local var="$1" placeholder="$2"
  shift 2
  show "$@"
  if ((DRY_RUN)); then
    printf -v "$var" '%s' "$placeholder"
  else
    local out
    out="$("$@")" || die "lookup failed: $*"
    [[ -n "$out" ]] || die "lookup returned nothing: $*"
    printf -v "$var" '%s' "$out"
  fi
}

P="--project=$PROJECT_ID"

# ------------------------------------------------------- per-function table

# Least privilege, one service account per function: which secrets it reads
# (secret-level grants, exactly what its code reads: docs/OPERATIONS.md) and
# which topics it publishes to (every function publishes CRM events; oauth's
# resync, oauth_browser's sync after a reconnect (R5b), gmail_push's sweep
# fan-out and continuations and quota_reset's renewal fan-out publish to the
# sync's control topic; quota_reset continues its own run on the daily-tick topic).
#   oauth:         crm-api-key (the key), oauth-state-key (signs states, derives
#                  Auto BCC addresses), oauth-client + token-encryption-key
#                  (disconnect stops the watch and revokes the stored token)
#   oauth_browser: oauth-state-key (verifies states), oauth-client (consent URL,
#                  code exchange), token-encryption-key (stores the token)
#   auto_bcc:      inbound-api-key only (addresses resolve through Firestore)
fn_publishes() {
  local v
  for v in $(fn_column "$1" 6); do echo "${!v}"; done
}
# Trigger: "http", "firestore" (document writes, see firestore_trigger) or the topic it is triggered by.
fn_trigger() {
  local t
  t="$(fn_column "$1" 2)"
  case "$t" in
    http | firestore) echo "$t" ;;
    *) echo "${!t}" ;;
  esac
}
fn_resources() { local r; r="$(fn_column "$1" 3)"; echo "${r//\// }"; } # memory timeout max-instances concurrency
fn_deployed_name() { echo "${1//_/-}"; } # Cloud Run service names allow no underscores
sa_email() { echo "${SA_PREFIX}-${1//_/-}@${PROJECT_ID}.iam.gserviceaccount.com"; }

env_vars() {
  local fn="$1" d="$ENV_DELIM"
  local vars="^${d}^GOOGLE_CLOUD_PROJECT=${PROJECT_ID}"
  vars+="${d}GMAIL_WATCH_TOPIC=${GMAIL_WATCH_TOPIC}${d}CRM_EVENTS_TOPIC=${CRM_EVENTS_TOPIC}"
  vars+="${d}DAILY_TICK_TOPIC=${DAILY_TICK_TOPIC}${d}DAILY_SEND_LIMIT=${DAILY_SEND_LIMIT}"
  vars+="${d}SEND_LIMIT_TIMEZONE=${SEND_LIMIT_TIMEZONE}${d}AUTO_BCC_DOMAIN=${AUTO_BCC_DOMAIN}"
  vars+="${d}RETURN_URL_ALLOWLIST=${RETURN_URL_ALLOWLIST}${d}SYNC_LEASE_SECONDS=${SYNC_LEASE_SECONDS}"
  vars+="${d}SYNC_STALE_SECONDS=${SYNC_STALE_SECONDS}${d}GMAIL_RETRY_BUDGET_SECONDS=${GMAIL_RETRY_BUDGET_SECONDS}"
  vars+="${d}SYNC_CONTROL_TOPIC=${SYNC_CONTROL_TOPIC}${d}SYNC_SWEEP_SECONDS=${SYNC_SWEEP_SECONDS}"
  vars+="${d}SYNC_SWEEP_SHARDS=${SYNC_SWEEP_SHARDS}${d}SYNC_DEADLINE_SECONDS=${SYNC_DEADLINE_SECONDS}"
  vars+="${d}SYNC_MAX_PASS_SECONDS=${SYNC_MAX_PASS_SECONDS}${d}GMAIL_USER_UNITS_PER_SECOND=${GMAIL_USER_UNITS_PER_SECOND}"
  vars+="${d}GMAIL_QUOTA_MODEL=${GMAIL_QUOTA_MODEL}"
  vars+="${d}WATCH_RENEW_WITHIN_SECONDS=${WATCH_RENEW_WITHIN_SECONDS}"
  vars+="${d}QUOTA_RESET_BUDGET_SECONDS=${QUOTA_RESET_BUDGET_SECONDS}"
  vars+="${d}SECRET_TTL_SECONDS=${SECRET_TTL_SECONDS}${d}AUTO_BCC_RATE_PER_MINUTE=${AUTO_BCC_RATE_PER_MINUTE}"
  if [[ -n "$AUTO_BCC_AUTHSERV_ID" ]]; then
    vars+="${d}AUTO_BCC_AUTHSERV_ID=${AUTO_BCC_AUTHSERV_ID}"
  fi
  if fn_needs "$fn" redirect; then # /start is its sibling
    vars+="${d}OAUTH_REDIRECT_URI=${OAUTH_REDIRECT_BASE}/callback"
  fi
  if fn_needs "$fn" keep || fn_needs "$fn" kept; then # R32: bodies and attachment bytes kept whole
    vars+="${d}STORAGE_BUCKET=${STORAGE_BUCKET}"
  fi
  echo "$vars"
}

# ------------------------------------------------------------- building blocks

enable_apis() {
  run gcloud services enable "${APIS[@]}" "$P"
}

ensure_topic() {
  ensure "gcloud pubsub topics describe $1 $P" "gcloud pubsub topics create $1 $P"
}

ensure_secret() { # created empty: the operator adds the value as a version
  ensure "gcloud secrets describe $1 $P" \
    "gcloud secrets create $1 --replication-policy=automatic --labels=app=gmail-crm-sync $P"
}

ensure_dead_letter_topic() {
  ensure_topic "$DEAD_LETTER_TOPIC"
  # A topic keeps nothing without a subscription: hold dead letters for a week.
  ensure "gcloud pubsub subscriptions describe ${DEAD_LETTER_TOPIC}-hold $P" \
    "gcloud pubsub subscriptions create ${DEAD_LETTER_TOPIC}-hold --topic=${DEAD_LETTER_TOPIC} --message-retention-duration=7d --expiration-period=never $P"
}

project_number() {
  if [[ -z "${PROJECT_NUMBER:-}" ]]; then
    lookup PROJECT_NUMBER '<PROJECT_NUMBER>' \
      gcloud projects describe "$PROJECT_ID" --format='value(projectNumber)'
  fi
}

# The service account a function runs as, with exactly its grants.
function_identity() {
  local fn="$1" sa topic secret
  sa="$(sa_email "$fn")"
  ensure "gcloud iam service-accounts describe $sa $P" \
    "gcloud iam service-accounts create ${sa%%@*} --display-name=gmail-crm-sync-${fn//_/-} $P"
  # Firestore has no per-collection IAM (access rules per collection exist only
  # for client SDKs, not for service accounts), and every function reads and
  # writes documents, so roles/datastore.user is the narrowest role; the IAM
  # condition narrows it from every database of the project to this one.
  run_retry gcloud projects add-iam-policy-binding "$PROJECT_ID" \
    "--member=serviceAccount:$sa" --role=roles/datastore.user \
    "--condition=expression=resource.name==\"projects/${PROJECT_ID}/databases/(default)\",title=gmail-crm-sync-firestore"
  for topic in $(fn_publishes "$fn"); do
    ensure_topic "$topic"
    run_retry gcloud pubsub topics add-iam-policy-binding "$topic" \
      "--member=serviceAccount:$sa" --role=roles/pubsub.publisher "$P"
  done
  for secret in $(fn_secrets "$fn"); do
    ensure_secret "$secret"
    run_retry gcloud secrets add-iam-policy-binding "$secret" \
      "--member=serviceAccount:$sa" --role=roles/secretmanager.secretAccessor "$P"
  done
  if fn_needs "$fn" watch; then # it calls users.watch
    gmail_publisher_grant
  fi
  # R32: bucket-level grants. Writers only create objects (create-once, never overwrite or
  # delete: no objectAdmin); attachments and messages only read them.
  if fn_needs "$fn" keep; then
    mail_bucket
    run_retry gcloud storage buckets add-iam-policy-binding "gs://$STORAGE_BUCKET" \
      "--member=serviceAccount:$sa" --role=roles/storage.objectCreator "$P"
  fi
  if fn_needs "$fn" kept; then
    mail_bucket
    run_retry gcloud storage buckets add-iam-policy-binding "gs://$STORAGE_BUCKET" \
      "--member=serviceAccount:$sa" --role=roles/storage.objectViewer "$P"
  fi
}

deploy_function() {
  local fn="$1" name sa trigger access memory timeout max_instances concurrency
  name="$(fn_deployed_name "$fn")"
  access="$(fn_access "$fn")"
  sa="$(sa_email "$fn")"
  trigger="$(fn_trigger "$fn")"
  read -r memory timeout max_instances concurrency <<<"$(fn_resources "$fn")"

  function_identity "$fn"
  local -a cmd=(gcloud functions deploy "$name" --gen2 --runtime=python312 "--region=$REGION"
    "--entry-point=$fn" --source=. --ignore-file=.gcloudignore.functions "--service-account=$sa"
    "--memory=$memory" --cpu=1 "--timeout=$timeout" "--max-instances=$max_instances"
    "--concurrency=$concurrency" "--set-env-vars=$(env_vars "$fn")"
    --update-labels=app=gmail-crm-sync "$P")
  if [[ -n "$BUILD_SERVICE_ACCOUNT" ]]; then
    cmd+=("--build-service-account=projects/$PROJECT_ID/serviceAccounts/$BUILD_SERVICE_ACCOUNT")
  fi
  if [[ "$trigger" == firestore ]]; then
    firestore_trigger "$fn" "$sa" cmd
  elif [[ "$trigger" == http ]]; then
    cmd+=(--trigger-http)
    case "$access" in
      # The rep's browser opens /start and Google redirects it to /callback: a
      # browser carries no Google identity. Only these two routes live here.
      public) cmd+=(--allow-unauthenticated) ;;
      # Only the CRM's service account may call them (plus the API key).
      crm) cmd+=(--no-allow-unauthenticated) ;;
      # Inbound-mail providers cannot mint Google ID tokens: public behind the
      # inbound key, unless a Google-side relay's service account is named.
      inbound)
        if [[ -n "$INBOUND_INVOKER_SA" ]]; then cmd+=(--no-allow-unauthenticated); else cmd+=(--allow-unauthenticated); fi ;;
      *) die "FUNCTION_TABLE: an http function needs access public, crm or inbound, not '$access' ($fn)" ;;
    esac
  else
    ensure_topic "$trigger"
    cmd+=("--trigger-topic=$trigger" --retry "--trigger-service-account=$sa" "--trigger-location=$REGION")
  fi
  # Right after a first grant Google may still refuse: a new service account, the Eventarc
  # and Pub/Sub service agents of a new project ("it may take a few minutes before all
  # necessary permissions are propagated"), a database just created. Retried with backoff.
  run_eventually transient "${cmd[@]}"

  case "$access" in
    crm)
      run_retry gcloud functions add-invoker-policy-binding "$name" "--region=$REGION" \
        "--member=serviceAccount:$CRM_INVOKER_SA" "$P" ;;
    inbound)
      if [[ -n "$INBOUND_INVOKER_SA" ]]; then
        run_retry gcloud functions add-invoker-policy-binding "$name" "--region=$REGION" \
          "--member=serviceAccount:$INBOUND_INVOKER_SA" "$P"
      fi ;;
  esac
  if [[ "$trigger" == firestore ]]; then
    # Eventarc delivers as the function's own account: it may invoke only its own function.
    run_retry gcloud functions add-invoker-policy-binding "$name" "--region=$REGION" \
      "--member=serviceAccount:$sa" "$P"
  elif [[ "$trigger" != http ]]; then
    trigger_subscription "$fn" "$name" "$sa"
  fi
  if fn_needs "$fn" control; then
    control_subscription "$name" "$sa"
  fi
}

# contacts_index (R11b): Firestore document writes on the CRM's contacts, delivered by Eventarc (direct
# event) from the database's location, retried on failure. A direct Eventarc event needs its trigger
# account to hold roles/eventarc.eventReceiver, which exists only project-wide; it grants receiving
# events, nothing else. The function reads only the event's document path (either payload encoding).
firestore_trigger() {
  local fn="$1" sa="$2"
  local -n out="$3"
  # Eventarc validates the trigger against the database when it is created
  # ("Database '(default)' does not exist"): a function deployed alone makes sure of it.
  firestore_database
  run_retry gcloud projects add-iam-policy-binding "$PROJECT_ID" \
    "--member=serviceAccount:$sa" --role=roles/eventarc.eventReceiver --condition=None
  out+=("--trigger-event-filters=type=google.cloud.firestore.document.v1.written"
    "--trigger-event-filters=database=(default)"
    "--trigger-event-filters-path-pattern=document=$CONTACTS_PATTERN"
    "--trigger-location=$FIRESTORE_LOCATION" --retry "--trigger-service-account=$sa")
}

# Eventarc pushes the trigger topic to the function through a subscription it
# creates; give it backoff and a dead-letter topic, so a poison message is
# parked instead of retried forever.
trigger_subscription() {
  local fn="$1" name="$2" sa="$3" trigger sub agent
  # Eventarc's push identity is the function's own account: it may invoke only its own function.
  run_retry gcloud functions add-invoker-policy-binding "$name" "--region=$REGION" \
    "--member=serviceAccount:$sa" "$P"
  project_number
  agent="serviceAccount:service-${PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com"
  # Pub/Sub signs the push with a token for the trigger account (needed on projects
  # whose Pub/Sub agent predates April 2021; harmless elsewhere).
  run_retry gcloud iam service-accounts add-iam-policy-binding "$sa" \
    "--member=$agent" --role=roles/iam.serviceAccountTokenCreator "$P"
  lookup trigger "<TRIGGER:$name>" gcloud functions describe "$name" "--region=$REGION" "$P" \
    '--format=value(eventTrigger.trigger)'
  lookup sub "<SUBSCRIPTION:$name>" gcloud eventarc triggers describe "$trigger" \
    "--location=$REGION" "$P" '--format=value(transport.pubsub.subscription)'
  ensure_dead_letter_topic
  run_retry gcloud pubsub topics add-iam-policy-binding "$DEAD_LETTER_TOPIC" \
    "--member=$agent" --role=roles/pubsub.publisher "$P"
  run_retry gcloud pubsub subscriptions add-iam-policy-binding "$sub" \
    "--member=$agent" --role=roles/pubsub.subscriber "$P"
  run gcloud pubsub subscriptions update "$sub" "--ack-deadline=$ACK_DEADLINE_SECONDS" \
    "--dead-letter-topic=projects/$PROJECT_ID/topics/$DEAD_LETTER_TOPIC" \
    "--max-delivery-attempts=$MAX_DELIVERY_ATTEMPTS" --min-retry-delay=10s --max-retry-delay=600s "$P"
}

# ------------------------------------------- the sync's control subscription

# gmail_push's second trigger: the sync's own control messages (forced syncs,
# sweeps, renewals, continuations) on their own topic, pushed to the function
# with its own identity, ack deadline and dead letters (an Eventarc function
# has one trigger; a push subscription to its URL is the second). The path
# /projects/P/topics/T makes functions-framework turn the raw push into the
# same CloudEvent the trigger delivers.
control_subscription() {
  local name="$1" sa="$2" url sub="${SYNC_CONTROL_TOPIC}-push" verb=create agent
  ensure_topic "$SYNC_CONTROL_TOPIC"
  lookup url "<URL:$name>" gcloud functions describe "$name" "--region=$REGION" "$P" \
    '--format=value(serviceConfig.uri)'
  if exists gcloud pubsub subscriptions describe "$sub" "$P"; then
    verb=update
  fi
  local -a cmd=(gcloud pubsub subscriptions "$verb" "$sub")
  if [[ "$verb" == create ]]; then
    cmd+=("--topic=$SYNC_CONTROL_TOPIC")
  fi
  cmd+=("--push-endpoint=${url}/projects/${PROJECT_ID}/topics/${SYNC_CONTROL_TOPIC}"
    "--push-auth-service-account=$sa" "--ack-deadline=$ACK_DEADLINE_SECONDS"
    "--dead-letter-topic=projects/$PROJECT_ID/topics/$DEAD_LETTER_TOPIC"
    "--max-delivery-attempts=$MAX_DELIVERY_ATTEMPTS" --min-retry-delay=10s --max-retry-delay=600s "$P")
  ensure_dead_letter_topic
  run "${cmd[@]}"
  project_number
  agent="serviceAccount:service-${PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com"
  # Pub/Sub moves a message to the dead-letter topic as its own service agent.
  run_retry gcloud pubsub subscriptions add-iam-policy-binding "$sub" \
    "--member=$agent" --role=roles/pubsub.subscriber "$P"
}

# Log-based metrics for what must never pass unnoticed: a Gmail watch found
# expired (notifications stopped) and a renewal fan-out that made no progress
# (shared/sync/renewal.py, shared/sync/daily.py log them with an `alert`
# field). Alerting policies on them are the operator's (docs/OPERATIONS.md).
log_metric() { # NAME ALERT DESCRIPTION
  exists gcloud logging metrics describe "$1" "$P" && return 0
  run gcloud logging metrics create "$1" "--description=$3" "--log-filter=jsonPayload.alert=\"$2\"" "$P"
}

# R32's mail bucket: uniform bucket-level access (IAM only, no object ACLs), public access
# prevention enforced, beside Firestore. Created once; its two protections are set again on every
# run (an update that changes nothing on a bucket that has them).
declare -A BUCKET_DONE=()
mail_bucket() {
  [[ -z "${BUCKET_DONE[$STORAGE_BUCKET]:-}" ]] || return 0
  BUCKET_DONE[$STORAGE_BUCKET]=1
  ensure "gcloud storage buckets describe gs://$STORAGE_BUCKET $P" \
    "gcloud storage buckets create gs://$STORAGE_BUCKET --location=$STORAGE_LOCATION --uniform-bucket-level-access --public-access-prevention --default-storage-class=STANDARD $P"
  run_retry gcloud storage buckets update "gs://$STORAGE_BUCKET" --uniform-bucket-level-access \
    --public-access-prevention --update-labels=app=gmail-crm-sync "$P"
}

firestore_database() {
  ensure "gcloud firestore databases describe --database=(default) $P" \
    "gcloud firestore databases create --database=(default) --location=$FIRESTORE_LOCATION --type=firestore-native $P"
}

# firestore.indexes.json (Firebase CLI format) is the one source for Firestore
# settings: composite indexes, TTL policies ("ttl": true) and single-field
# index exemptions ("indexes": [], for large fields nobody queries).
firestore_settings() {
  local file="$SCRIPT_DIR/firestore.indexes.json" kind line
  [[ -f "$file" ]] || die "missing $file"
  command -v python3 >/dev/null || die "python3 is needed to read $file"
  # Read the whole plan first: a gcloud inside a `while read` loop could eat its input.
  local -a plan args
  mapfile -t plan < <(python3 - "$file" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
for index in doc.get("indexes", []):
    scope = index.get("queryScope", "COLLECTION").lower().replace("_", "-")
    parts = [f"--collection-group={index['collectionGroup']}", f"--query-scope={scope}"]
    for f in index["fields"]:
        kind = f"order={f['order'].lower()}" if "order" in f else f"array-config={f['arrayConfig'].lower()}"
        parts.append(f"--field-config=field-path={f['fieldPath']},{kind}")
    print("index", " ".join(parts))
for o in doc.get("fieldOverrides", []):
    where = f"{o['fieldPath']} --collection-group={o['collectionGroup']}"
    if o.get("ttl"):
        print("ttl", where)
    if o.get("indexes") == []:
        print("noindex", where)
PY
  )
  ((${#plan[@]})) || die "cannot read $file"
  for line in "${plan[@]}"; do
    read -r kind line <<<"$line"
    read -r -a args <<<"$line"
    case "$kind" in
      index) firestore_op gcloud firestore indexes composite create "${args[@]}" --async "$P" ;;
      # Firestore deletes an expired document within about a day of its time.
      ttl) firestore_op gcloud firestore fields ttls update "${args[@]}" --enable-ttl --async "$P" ;;
      noindex) firestore_op gcloud firestore indexes fields update "${args[@]}" --disable-indexes --async "$P" ;;
      *) die "cannot read $file" ;;
    esac
  done
}

# One Firestore index or field operation: one that exists already is success (a
# second run), a transient refusal is retried, and any other failure is reported
# at the end of the run, after the scheduler jobs and metrics (FIRESTORE_FAILED).
FIRESTORE_FAILED=()
firestore_op() {
  show "$@"
  ((DRY_RUN)) && return 0
  with_backoff firestore 1 "$@" </dev/null && return 0
  [[ "$LAST_OUTPUT" == *ALREADY_EXISTS* || "$LAST_OUTPUT" == *"already exists"* ]] && return 0
  warn "Firestore operation failed (the run goes on and fails at its end): $*"
  FIRESTORE_FAILED+=("$*")
}

# scheduler_job NAME SCHEDULE TOPIC BODY: create, or update the existing job.
scheduler_job() {
  local name="$1" schedule="$2" topic="$3" body="$4" verb=create
  if exists gcloud scheduler jobs describe "$name" "--location=$SCHEDULER_LOCATION" "$P"; then
    verb=update
  fi
  run gcloud scheduler jobs "$verb" pubsub "$name" "--location=$SCHEDULER_LOCATION" \
    "--schedule=$schedule" "--time-zone=$SEND_LIMIT_TIMEZONE" "--topic=$topic" \
    "--message-body=$body" \
    "--description=gmail-crm-sync: see docs/OPERATIONS.md" "$P"
}

# Tell the operator which secrets still have no value (lists version names, never reads one).
report_empty_secrets() {
  local secret versions empty=()
  for secret in "${ALL_SECRETS[@]}"; do
    show gcloud secrets versions list "$secret" --filter=state:ENABLED --limit=1 '--format=value(name)' "$P"
    ((DRY_RUN)) && continue
    versions="$(gcloud secrets versions list "$secret" --filter=state:ENABLED --limit=1 \
      '--format=value(name)' "$P" 2>/dev/null || true)"
    [[ -n "$versions" ]] || empty+=("$secret")
  done
  if ((${#empty[@]})); then
    warn "these secrets have no value yet: ${empty[*]}; add each with"
    warn "  gcloud secrets versions add NAME --data-file=- $P   (value on stdin; see docs/OPERATIONS.md)"
  fi
}

# Gmail's users.watch publishes notifications as this Google account; watch
# calls (oauth's connect, quota_reset's renewal) fail until it may publish.
gmail_publisher_grant() {
  ensure_topic "$GMAIL_WATCH_TOPIC"
  run_retry gcloud pubsub topics add-iam-policy-binding "$GMAIL_WATCH_TOPIC" \
    "--member=$GMAIL_PUSH_SA" --role=roles/pubsub.publisher "$P"
}

infra() {
  local topic secret
  firestore_database
  for topic in "$GMAIL_WATCH_TOPIC" "$SYNC_CONTROL_TOPIC" "$DAILY_TICK_TOPIC" "$CRM_EVENTS_TOPIC" "$SWEEP_TOPIC"; do
    ensure_topic "$topic"
  done
  ensure_dead_letter_topic
  gmail_publisher_grant
  mail_bucket
  for secret in "${ALL_SECRETS[@]}"; do
    ensure_secret "$secret"
  done
  firestore_settings
  scheduler_job gmail-crm-sync-daily-tick "$DAILY_TICK_SCHEDULE" "$DAILY_TICK_TOPIC" '{"tick": "daily"}'
  scheduler_job gmail-crm-sync-sweep "$SWEEP_SCHEDULE" "$SWEEP_TOPIC" '{"sweep": true}'
  log_metric gmail-crm-sync-watch-lapsed watch_lapsed "gmail-crm-sync: a Gmail watch was found expired"
  log_metric gmail-crm-sync-renewal-stalled renewal_fanout_stalled \
    "gmail-crm-sync: the watch renewal fan-out made no progress"
  report_empty_secrets
  if ((${#FIRESTORE_FAILED[@]})); then
    printf 'deploy.sh: these Firestore operations failed; fix the cause and run ./deploy.sh infra again:\n' >&2
    printf '  - %s\n' "${FIRESTORE_FAILED[@]}" >&2
    exit 1
  fi
}

# ------------------------------------------------------------------- main

main() {
  # Each function uploads --source=. filtered by ./.gcloudignore.functions.
  cd "$SCRIPT_DIR"
  enable_apis
  if selected infra; then
    infra
  fi
  local fn
  for fn in "${ALL_FUNCTIONS[@]}"; do
    if selected "$fn"; then
      deploy_function "$fn"
    fi
  done
}

main
