# Optional: deploy every push to the main branch through Cloud Build.
# Needs the repository connected to Cloud Build once (GitHub app, in the console)
# and github_owner/github_repo/tf_state_bucket set. Without them, deploys run with
# infra/deploy.sh, which submits the same cloudbuild.yaml.
locals {
  deployer_email = "veo-deployer@${var.project_id}.iam.gserviceaccount.com"
  push_trigger   = var.github_owner != "" && var.github_repo != "" && var.tf_state_bucket != ""
}

resource "google_cloudbuild_trigger" "deploy" {
  count = local.push_trigger ? 1 : 0

  project     = var.project_id
  location    = "global"
  name        = "veo-relay-deploy"
  description = "Test and deploy veo-relay (cloudbuild.yaml) on every push to ${var.github_branch}."
  filename    = "cloudbuild.yaml"

  service_account = "projects/${var.project_id}/serviceAccounts/${local.deployer_email}"

  github {
    owner = var.github_owner
    name  = var.github_repo
    push {
      branch = var.github_branch
    }
  }

  substitutions = {
    _REGION            = var.region
    _TF_STATE_BUCKET   = var.tf_state_bucket
    _BUCKET            = var.bucket_name
    _PROVIDERS_ENABLED = join(",", var.providers_enabled)
    _DEFAULT_PROVIDER  = var.default_provider
  }

  depends_on = [time_sleep.apis]
}
