# Every API veo-relay uses, enabled by Terraform. infra/deploy.sh enables only
# the few that Cloud Build and Terraform need before they can run.
locals {
  apis = concat(
    [
      "artifactregistry.googleapis.com",
      "cloudbuild.googleapis.com",
      "cloudfunctions.googleapis.com",
      "cloudresourcemanager.googleapis.com",
      "cloudscheduler.googleapis.com",
      "cloudtasks.googleapis.com",
      "eventarc.googleapis.com",
      "firestore.googleapis.com",
      "iam.googleapis.com",
      "iamcredentials.googleapis.com", # signBlob for V4 signed URLs
      "logging.googleapis.com",
      "monitoring.googleapis.com",
      "pubsub.googleapis.com", # Eventarc transport for storage events
      "run.googleapis.com",
      "secretmanager.googleapis.com",
      "serviceusage.googleapis.com",
      "storage.googleapis.com",
    ],
    local.vertex_enabled ? ["aiplatform.googleapis.com"] : [],
  )
}

resource "google_project_service" "api" {
  for_each = toset(local.apis)

  project = var.project_id
  service = each.value

  # Other things in the project may use these APIs: never turn them off.
  disable_on_destroy         = false
  disable_dependent_services = false
}

# A freshly enabled API takes a while to accept calls everywhere.
resource "time_sleep" "apis" {
  create_duration = "60s"

  triggers = {
    apis = join(",", sort(local.apis))
  }

  depends_on = [google_project_service.api]
}

data "google_project" "this" {
  project_id = var.project_id
}
