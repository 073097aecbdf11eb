#!/bin/sh
# Terraform for infra/, driven by environment variables, exactly as Cloud Build runs it
# (cloudbuild.yaml calls this script in the hashicorp/terraform image, which has only sh).
#
#   PROJECT_ID=my-proj TF_STATE_BUCKET=my-proj-veo-relay-tfstate infra/tf.sh init
#   PROJECT_ID=my-proj infra/tf.sh plan      # writes infra/tfplan
#   PROJECT_ID=my-proj infra/tf.sh apply     # applies infra/tfplan
#
# Variables: PROJECT_ID (required), REGION (us-central1), BUCKET (empty = <project>-veo-relay),
# PROVIDERS_ENABLED (comma list, litellm-gemini), DEFAULT_PROVIDER (first enabled),
# TF_STATE_BUCKET and TF_STATE_PREFIX (veo-relay) for init.
set -eu

usage() {
  echo "usage: $0 init|plan|apply|output" >&2
  exit 2
}

[ $# -eq 1 ] || usage
: "${PROJECT_ID:?PROJECT_ID must be set}"

cd "$(dirname "$0")"

# Comma-separated (";" also accepted: gcloud --substitutions splits on commas).
providers=$(printf '%s' "${PROVIDERS_ENABLED:-litellm-gemini}" | tr ';' ',' | tr -d ' ')
export TF_IN_AUTOMATION=1
export TF_INPUT=0
export TF_VAR_project_id="$PROJECT_ID"
export TF_VAR_region="${REGION:-us-central1}"
export TF_VAR_bucket_name="${BUCKET:-}"
providers_list=$(printf '%s' "$providers" | sed 's/,/","/g')
export TF_VAR_providers_enabled="[\"${providers_list}\"]"
export TF_VAR_default_provider="${DEFAULT_PROVIDER:-${providers%%,*}}"
export TF_VAR_tf_state_bucket="${TF_STATE_BUCKET:-}"

case "$1" in
  init)
    : "${TF_STATE_BUCKET:?TF_STATE_BUCKET must be set}"
    terraform init -input=false \
      -backend-config="bucket=${TF_STATE_BUCKET}" \
      -backend-config="prefix=${TF_STATE_PREFIX:-veo-relay}"
    ;;
  plan)
    terraform plan -input=false -lock-timeout=10m -out=tfplan
    ;;
  apply)
    terraform apply -input=false -lock-timeout=10m tfplan
    terraform output
    ;;
  output)
    terraform output
    ;;
  *)
    usage
    ;;
esac
