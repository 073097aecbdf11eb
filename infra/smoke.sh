#!/usr/bin/env bash
# After a deploy: one cheap job end to end against the deployed API, and its video checked in
# the bucket. The job uses the provider's lite model (or VEO_MODEL) at its shortest duration,
# one sample; it must end `succeeded`, each output must be in the bucket, an MP4, of the size
# and with the MD5 the job records (and its sha256, where the deployment records one).
#
#   VEO_URL=$(terraform -chdir=infra output -raw api_url) VEO_API_KEY=... infra/smoke.sh
#
# Environment:
#   VEO_URL            the API's base URL (terraform output api_url)                       required
#   VEO_API_KEY        an API key of one of the deployment's clients                         required
#   VEO_PROVIDER       provider to use (default: the deployment's default, GET /providers)
#   VEO_MODEL          model (default: the provider's lite model in GET /providers, else its default)
#   VEO_DURATION       seconds of video (default: the model's shortest in GET /providers)
#   VEO_SMOKE_PROMPT   the prompt (default: a short, harmless one)
#   VEO_SMOKE_JOB_ID   check this existing job instead of starting one (nothing is paid for)
#   VEO_SMOKE_TIMEOUT  seconds to wait for the job to end (default 900)
#   VEO_SMOKE_POLL     seconds between two looks at the job (default 10)
#   How the bucket is read (the Cloud Storage JSON API):
#   VEO_STORAGE_URL    its endpoint (default $STORAGE_EMULATOR_HOST, else https://storage.googleapis.com)
#   VEO_STORAGE_TOKEN  an OAuth access token (default: `gcloud auth print-access-token`, for the
#                      Google endpoint only; the local stack's fake GCS needs none)
#
# Exit status: 0 every check passed; 1 a check failed (the last line says which); 2 bad usage
# or a missing tool. It costs one generation of the cheapest kind (docs/DEPLOY.md, "Smoke test").
set -euo pipefail

say() { printf 'smoke: %s\n' "$*" >&2; }
fail() { say "FAILED: $*"; exit 1; }
usage() { sed -n '2,24p' "$0" >&2; say "$*"; exit 2; }

for tool in curl jq openssl base64 sha256sum; do
  command -v "$tool" >/dev/null || usage "$tool is required"
done
[[ -n "${VEO_URL:-}" ]] || usage "VEO_URL is not set"
[[ -n "${VEO_API_KEY:-}" ]] || usage "VEO_API_KEY is not set"

api="${VEO_URL%/}"
timeout_s="${VEO_SMOKE_TIMEOUT:-900}"
poll_s="${VEO_SMOKE_POLL:-10}"
prompt="${VEO_SMOKE_PROMPT:-A paper boat drifting on a calm pond, soft morning light.}"
storage="${VEO_STORAGE_URL:-${STORAGE_EMULATOR_HOST:-https://storage.googleapis.com}}"
storage="${storage%/}"
[[ "$storage" == http://* || "$storage" == https://* ]] || storage="http://${storage}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# call METHOD URL [BODY_FILE] [HEADER...]: the answer's body in $work/body, its status printed.
call() {
  local method="$1" url="$2" data="${3:-}"
  shift 3 || shift $#
  local args=(-sS -X "$method" -o "$work/body" -w '%{http_code}' --max-time 60)
  [[ -n "$data" ]] && args+=(-H 'Content-Type: application/json' --data-binary "@$data")
  local h
  for h in "$@"; do args+=(-H "$h"); done
  curl "${args[@]}" "$url" || true  # on a failed connection -w still prints 000
}

api_call() {
  call "$1" "${api}$2" "${3:-}" "Authorization: Bearer ${VEO_API_KEY}" "${@:4}"
}

# The header that lets this caller read the bucket: none for an emulator.
storage_headers() {
  if [[ -n "${VEO_STORAGE_TOKEN:-}" ]]; then
    printf 'Authorization: Bearer %s' "$VEO_STORAGE_TOKEN"
  elif [[ "$storage" == https://storage.googleapis.com ]]; then
    command -v gcloud >/dev/null || usage "reading the bucket needs VEO_STORAGE_TOKEN or gcloud"
    printf 'Authorization: Bearer %s' "$(gcloud auth print-access-token)"
  fi
}

# ------------------------------------------------------------------ the job
job_id="${VEO_SMOKE_JOB_ID:-}"
started=$SECONDS
if [[ -z "$job_id" ]]; then
  status="$(api_call GET /providers)"
  [[ "$status" == 200 ]] || fail "GET /providers answered ${status}: $(head -c 300 "$work/body")"
  provider="${VEO_PROVIDER:-$(jq -r '.default // empty' "$work/body")}"
  [[ -n "$provider" ]] || fail "GET /providers names no default provider: set VEO_PROVIDER"
  jq -e --arg p "$provider" '.providers[$p] != null' "$work/body" >/dev/null \
    || fail "provider ${provider} is not enabled here (GET /providers: $(jq -r '.providers | keys | join(", ")' "$work/body"))"
  # Models may be listed as ids or as catalog entries ({id, status, tier, durations...}).
  model="${VEO_MODEL:-$(jq -r --arg p "$provider" '
    .providers[$p] as $c
    | [($c.models // [])[] | if type == "object" then select((.status // "") != "retired") | (.id // .name) else . end]
    | (map(select(test("lite"))) | first) // $c.default_model // first // empty' "$work/body")}"
  [[ -n "$model" ]] || fail "provider ${provider} lists no model: set VEO_MODEL"
  duration="${VEO_DURATION:-$(jq -r --arg p "$provider" --arg m "$model" '
    .providers[$p] as $c
    | ([($c.models // [])[] | objects | select((.id // .name) == $m) | .durations // empty] | first)
      // ($c.model_durations[$m]? ) // $c.durations // []
    | if length > 0 then min else empty end' "$work/body")}"
  say "provider ${provider}, model ${model}, ${duration:-default} s, one sample"
  jq -n --arg prompt "$prompt" --arg p "$provider" --arg m "$model" --arg d "$duration" \
    '{prompt: $prompt, provider: $p, model: $m, sample_count: 1, metadata: {smoke: true}}
     + (if $d == "" then {} else {duration_seconds: ($d | tonumber)} end)' >"$work/request.json"
  status="$(api_call POST /jobs "$work/request.json" "Idempotency-Key: smoke-$(date +%s)-$$")"
  [[ "$status" == 202 || "$status" == 200 ]] || fail "POST /jobs answered ${status}: $(head -c 500 "$work/body")"
  job_id="$(jq -r '.id' "$work/body")"
  say "job ${job_id} accepted"
fi

last=""
while :; do
  status="$(api_call GET "/jobs/${job_id}")"
  [[ "$status" == 200 ]] || fail "GET /jobs/${job_id} answered ${status}: $(head -c 300 "$work/body")"
  state="$(jq -r '.status' "$work/body")"
  [[ "$state" == "$last" ]] || say "job ${job_id}: ${state} ($((SECONDS - started)) s)"
  last="$state"
  case "$state" in
    succeeded | failed | cancelled) break ;;
  esac
  (( SECONDS - started < timeout_s )) || fail "job ${job_id} still ${state} after ${timeout_s} s"
  sleep "$poll_s"
done
cp "$work/body" "$work/job.json"
[[ "$state" == succeeded ]] \
  || fail "job ${job_id} ended ${state}: $(jq -r '.error | if . then "\(.code): \(.message)" else "no error recorded" end' "$work/job.json")"

# ------------------------------------------------------------------ its videos in the bucket
count="$(jq '.outputs | length' "$work/job.json")"
(( count > 0 )) || fail "job ${job_id} succeeded without any output"
auth="$(storage_headers)"
headers=()
[[ -z "$auth" ]] || headers=("$auth")
for ((i = 0; i < count; i++)); do
  uri="$(jq -r ".outputs[$i].uri" "$work/job.json")"
  want_md5="$(jq -r ".outputs[$i].md5" "$work/job.json")"
  want_sha="$(jq -r ".outputs[$i].sha256 // empty" "$work/job.json")"
  want_size="$(jq -r ".outputs[$i].size" "$work/job.json")"
  [[ "$uri" =~ ^gs://([^/]+)/(.+)$ ]] || fail "output ${i} has no gs:// URI: ${uri}"
  bucket="${BASH_REMATCH[1]}"
  object="$(jq -rn --arg s "${BASH_REMATCH[2]}" '$s | @uri')"
  status="$(call GET "${storage}/storage/v1/b/${bucket}/o/${object}?alt=media" "" "${headers[@]}")"
  [[ "$status" == 200 ]] || fail "${uri} cannot be read from the bucket (${status}): $(head -c 300 "$work/body")"
  got_size="$(wc -c <"$work/body" | tr -d ' ')"
  got_md5="$(openssl dgst -md5 -binary "$work/body" | base64)"
  [[ "$(head -c 8 "$work/body" | tail -c 4)" == ftyp ]] || fail "${uri} is not an MP4 (no ftyp box)"
  [[ "$got_size" == "$want_size" ]] || fail "${uri} holds ${got_size} bytes, the job says ${want_size}"
  [[ "$got_md5" == "$want_md5" ]] || fail "${uri} has MD5 ${got_md5}, the job says ${want_md5}"
  if [[ -n "$want_sha" ]]; then
    got_sha="$(sha256sum "$work/body" | cut -d' ' -f1)"
    [[ "$got_sha" == "$want_sha" ]] || fail "${uri} has sha256 ${got_sha}, the job says ${want_sha}"
  fi
  say "${uri}: ${got_size} bytes, MD5 ${got_md5}${want_sha:+, sha256 ${want_sha}} as the job says"
done
say "OK job ${job_id} succeeded, ${count} video(s) verified in $((SECONDS - started)) s"
