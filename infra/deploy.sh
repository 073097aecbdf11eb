#!/usr/bin/env bash
# The one command: from an empty Google Cloud project (with billing) to a running veo-relay.
#
#   infra/deploy.sh --project MY_PROJECT [--region us-central1] \
#       [--providers litellm-gemini,vertex] [--default-provider litellm-gemini] \
#       [--bucket NAME] [--vertex-project PROJECT] [--plan-only]
#
# It creates only what Terraform needs before it can run, then hands over to Cloud Build:
#   1. enables the APIs Cloud Build and Terraform need to start;
#   2. creates the Terraform state bucket <project>-veo-relay-tfstate (versioned, private);
#   3. creates the deployer service account veo-deployer and grants it the admin roles
#      Terraform needs (and nothing at data level);
#   4. submits cloudbuild.yaml as veo-deployer: tests, offline checks, terraform plan + apply.
# Everything else (functions, queues, Firestore, bucket, secrets, IAM...) is Terraform's.
# Safe to re-run: every step is idempotent, so it is also the command for later deploys.
set -euo pipefail

project=""
region="us-central1"
providers="litellm-gemini"
default_provider=""
bucket=""
vertex_project=""
deploy="true"

usage() {
  sed -n '2,8p' "$0" >&2
  exit 2
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    --project) project="$2"; shift 2 ;;
    --region) region="$2"; shift 2 ;;
    --providers) providers="$2"; shift 2 ;;
    --default-provider) default_provider="$2"; shift 2 ;;
    --bucket) bucket="$2"; shift 2 ;;
    --vertex-project) vertex_project="$2"; shift 2 ;;
    --plan-only) deploy="false"; shift ;;
    -h | --help) usage ;;
    *) echo "unknown argument: $1" >&2; usage ;;
  esac
done

[[ -n "$project" ]] || usage
default_provider="${default_provider:-${providers%%,*}}"
command -v gcloud >/dev/null || { echo "gcloud is required: https://cloud.google.com/sdk/docs/install" >&2; exit 1; }

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
state_bucket="${project}-veo-relay-tfstate"
deployer="veo-deployer@${project}.iam.gserviceaccount.com"

log() { printf '\n==> %s\n' "$*"; }

log "Enabling the bootstrap APIs in ${project}"
gcloud services enable --project "$project" \
  cloudbuild.googleapis.com \
  cloudresourcemanager.googleapis.com \
  iam.googleapis.com \
  serviceusage.googleapis.com \
  storage.googleapis.com

log "Terraform state bucket gs://${state_bucket}"
if ! gcloud storage buckets describe "gs://${state_bucket}" --project "$project" >/dev/null 2>&1; then
  gcloud storage buckets create "gs://${state_bucket}" --project "$project" --location "$region" \
    --uniform-bucket-level-access --public-access-prevention
fi
gcloud storage buckets update "gs://${state_bucket}" --project "$project" --versioning >/dev/null

log "Deployer service account ${deployer}"
if ! gcloud iam service-accounts describe "$deployer" --project "$project" >/dev/null 2>&1; then
  gcloud iam service-accounts create veo-deployer --project "$project" \
    --display-name "veo-relay deployer (Cloud Build runs Terraform as it)"
fi

# What Terraform manages, and nothing more. resourcemanager.projectIamAdmin is needed to
# grant the per-function roles; it makes this account powerful: only Cloud Build uses it.
deployer_roles=(
  roles/artifactregistry.admin
  roles/cloudbuild.builds.editor
  roles/cloudfunctions.admin
  roles/cloudscheduler.admin
  roles/cloudtasks.admin
  roles/datastore.owner
  roles/eventarc.admin
  roles/iam.serviceAccountAdmin
  roles/iam.serviceAccountUser
  roles/logging.configWriter
  roles/logging.logWriter
  roles/monitoring.editor
  roles/pubsub.admin
  roles/resourcemanager.projectIamAdmin
  roles/run.admin
  roles/secretmanager.admin
  roles/serviceusage.serviceUsageAdmin
  roles/storage.admin
)
for role in "${deployer_roles[@]}"; do
  gcloud projects add-iam-policy-binding "$project" --member "serviceAccount:${deployer}" \
    --role "$role" --condition None --quiet >/dev/null
done

# Vertex AI in another project (terraform.tfvars: vertex_project): Terraform enables its API,
# creates its Vertex service agent and grants the functions aiplatform.user there.
if [[ -n "$vertex_project" && "$vertex_project" != "$project" ]]; then
  log "Deployer roles in the Vertex project ${vertex_project}"
  for role in roles/resourcemanager.projectIamAdmin roles/serviceusage.serviceUsageAdmin; do
    gcloud projects add-iam-policy-binding "$vertex_project" --member "serviceAccount:${deployer}" \
      --role "$role" --condition None --quiet >/dev/null
  done
fi

log "Submitting cloudbuild.yaml (tests, checks, terraform plan$([[ $deploy == true ]] && echo ' + apply'))"
gcloud builds submit "$repo_root" --project "$project" \
  --config "${repo_root}/cloudbuild.yaml" \
  --service-account "projects/${project}/serviceAccounts/${deployer}" \
  --substitutions "_REGION=${region},_TF_STATE_BUCKET=${state_bucket},_BUCKET=${bucket},_PROVIDERS_ENABLED=${providers//,/;},_DEFAULT_PROVIDER=${default_provider},_DEPLOY=${deploy}"

if [[ "$deploy" == "true" ]]; then
  api_url="$(gcloud functions describe api --project "$project" --region "$region" --format 'value(url)' 2>/dev/null || true)"
  log "veo-relay is deployed"
  echo "API:    ${api_url:-"(see the terraform output at the end of the build log)"}"
  echo "Next:   store the provider keys and the webhook secret (docs/DEPLOY.md, 'Provider keys'),"
  echo "        then check one cheap job end to end: VEO_URL=<API> VEO_API_KEY=<key> infra/smoke.sh"
fi
