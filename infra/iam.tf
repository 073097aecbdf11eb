# Identities and least-privilege grants, all derived from main.tf:
#   local.functions        which identities are in use, and which secrets each mounts
#   local.service_accounts which queues each identity may enqueue to
#   local.bucket_grants    the prefixes each identity may read or write
# Nothing here grants a role at project level except where GCP has no finer
# resource to bind to (Firestore, Vertex AI, logging, Eventarc receiving, and the
# GCS service agent publishing storage events to Eventarc's Pub/Sub topic).

resource "google_service_account" "sa" {
  for_each = local.active_service_accounts

  project      = var.project_id
  account_id   = each.value.account_id
  display_name = each.value.display_name
  description  = "Managed by Terraform (infra/). Role: ${each.key}."

  depends_on = [time_sleep.apis]
}

locals {
  runtime_sas = toset([for f in values(local.functions) : f.service_account])
  has_storage = anytrue([for f in values(local.functions) : f.trigger == "storage"])

  project_grants = merge(
    # Firestore has no per-collection IAM: every function reads and writes documents.
    { for sa in local.runtime_sas : "${sa}/datastore.user" => { sa = sa, role = "roles/datastore.user" } },
    # Function image builds write their logs.
    { "build/logging.logWriter" = { sa = "build", role = "roles/logging.logWriter" } },
    # Eventarc delivers storage events as the invoker identity.
    local.has_storage ? { "tasks/eventarc.eventReceiver" = { sa = "tasks", role = "roles/eventarc.eventReceiver" } } : {},
  )

  # (identity, queue) pairs; "veo-submit-*" stands for every submit queue.
  queue_grants = merge([
    for key, sa in local.active_service_accounts : {
      for q in distinct(flatten([for e in sa.enqueue : e == "veo-submit-*" ? keys(local.submit_queues) : [e]])) :
      "${key}/${q}" => { sa = key, queue = q }
      if contains(keys(local.queues), q)
    }
  ]...)

  # Identities that create tasks must be allowed to mint their OIDC tokens as
  # the tasks identity (iam.serviceAccounts.actAs).
  task_creators = toset([for key, sa in local.active_service_accounts : key if length(sa.enqueue) > 0])

  # (identity, secret) pairs from the functions' mounted secrets.
  secret_grants = merge([
    for name, f in local.functions : {
      for env_name, secret_id in local.function_secrets[name] :
      "${f.service_account}/${env_name}" => { sa = f.service_account, secret = env_name }
    }
  ]...)

  active_bucket_grants = { for k, g in local.bucket_grants : k => g if contains(keys(local.active_service_accounts), g.service_account) }
}

resource "google_project_iam_member" "sa" {
  for_each = local.project_grants

  project = var.project_id
  role    = each.value.role
  member  = "serviceAccount:${google_service_account.sa[each.value.sa].email}"
}

# Vertex AI calls run as the calling function's identity, in the Vertex project
# (var.vertex_project; the same project unless set), whose quota and bill they use.
resource "google_project_iam_member" "vertex_user" {
  for_each = local.vertex_enabled ? local.provider_callers : toset([])

  project = local.vertex_project
  role    = "roles/aiplatform.user"
  member  = "serviceAccount:${google_service_account.sa[each.value].email}"

  depends_on = [google_project_service.vertex]
}

resource "google_cloud_tasks_queue_iam_member" "enqueuer" {
  for_each = local.queue_grants

  project  = var.project_id
  location = var.region
  name     = google_cloud_tasks_queue.queue[each.value.queue].name
  role     = "roles/cloudtasks.enqueuer"
  member   = "serviceAccount:${google_service_account.sa[each.value.sa].email}"
}

resource "google_service_account_iam_member" "act_as_tasks" {
  for_each = local.task_creators

  service_account_id = google_service_account.sa["tasks"].name
  role               = "roles/iam.serviceAccountUser"
  member             = "serviceAccount:${google_service_account.sa[each.value].email}"
}

# deliver_webhook signs the V4 URLs in each attempt with IAM signBlob as itself (no key
# file; VEO_SIGNING_SERVICE_ACCOUNT is its own email). Bound on its own account only, so
# it can sign as nobody else; it also reads the output prefix (bucket_grants), without
# which the URLs it signs would answer 403.
resource "google_service_account_iam_member" "webhook_sign_blob" {
  count = contains(keys(local.active_service_accounts), "webhook") ? 1 : 0

  service_account_id = google_service_account.sa["webhook"].name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = "serviceAccount:${google_service_account.sa["webhook"].email}"
}

resource "google_secret_manager_secret_iam_member" "accessor" {
  for_each = local.secret_grants

  project   = var.project_id
  secret_id = google_secret_manager_secret.secret[each.value.secret].secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.sa[each.value.sa].email}"
}

resource "google_storage_bucket_iam_member" "prefix" {
  for_each = local.active_bucket_grants

  bucket = google_storage_bucket.data.name
  role   = each.value.role
  member = "serviceAccount:${google_service_account.sa[each.value.service_account].email}"

  condition {
    title       = each.key
    description = "Only objects under ${each.value.prefix}"
    expression  = "resource.name.startsWith(\"projects/_/buckets/${google_storage_bucket.data.name}/objects/${each.value.prefix}\")"
  }
}

# Clients' uploads: each writer may create objects only in its client's folder, uploads/<client id>/.
resource "google_storage_bucket_iam_member" "uploads_writer" {
  for_each = merge([
    for client, members in var.upload_writers : { for m in members : "${client}/${m}" => { client = client, member = m } }
  ]...)

  bucket = google_storage_bucket.data.name
  role   = "roles/storage.objectCreator"
  member = each.value.member

  condition {
    title       = "uploads-${each.value.client}"
    description = "Only objects under uploads/${each.value.client}/"
    expression  = "resource.name.startsWith(\"projects/_/buckets/${google_storage_bucket.data.name}/objects/uploads/${each.value.client}/\")"
  }
}

# The buckets clients may name as gs:// images (var.input_buckets): read by the functions
# that accept jobs (the code checks each URI against VEO_INPUT_BUCKETS first).
resource "google_storage_bucket_iam_member" "input_bucket_reader" {
  for_each = { for pair in setproduct(var.input_buckets, [for sa in ["api", "events"] : sa if contains(keys(local.active_service_accounts), sa)]) : "${pair[0]}/${pair[1]}" => { bucket = pair[0], sa = pair[1] } }

  bucket = each.value.bucket
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.sa[each.value.sa].email}"
}

# A Vertex project other than this one needs the Vertex AI API there too (apis.tf enables
# the APIs of this project only).
resource "google_project_service" "vertex" {
  count = local.vertex_enabled && local.vertex_project != var.project_id ? 1 : 0

  project = local.vertex_project
  service = "aiplatform.googleapis.com"

  disable_on_destroy         = false
  disable_dependent_services = false
}

# Vertex AI writes Veo output straight into vertex/ (storageUri) as the service agent of the
# project the job runs in (the Vertex project), so that agent is granted on the bucket.
resource "google_project_service_identity" "vertex" {
  count    = local.vertex_enabled ? 1 : 0
  provider = google-beta

  project = local.vertex_project
  service = "aiplatform.googleapis.com"

  depends_on = [time_sleep.apis, google_project_service.vertex]
}

resource "google_storage_bucket_iam_member" "vertex_agent" {
  count = local.vertex_enabled ? 1 : 0

  bucket = google_storage_bucket.data.name
  role   = "roles/storage.objectCreator"
  member = "serviceAccount:${google_project_service_identity.vertex[0].email}"

  condition {
    title       = "vertex-agent-vertex"
    description = "Only objects under vertex/"
    expression  = "resource.name.startsWith(\"projects/_/buckets/${google_storage_bucket.data.name}/objects/vertex/\")"
  }
}

# ... and reads the job's input images from inputs/ by their gs:// URI (gcsUri).
resource "google_storage_bucket_iam_member" "vertex_agent_inputs" {
  count = local.vertex_enabled ? 1 : 0

  bucket = google_storage_bucket.data.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_project_service_identity.vertex[0].email}"

  condition {
    title       = "vertex-agent-inputs"
    description = "Only objects under inputs/"
    expression  = "resource.name.startsWith(\"projects/_/buckets/${google_storage_bucket.data.name}/objects/inputs/\")"
  }
}

# ... and reads the stored video an extension continues (video.gcsUri, core/extension.py) from
# the output prefix.
resource "google_storage_bucket_iam_member" "vertex_agent_outputs" {
  count = local.vertex_enabled ? 1 : 0

  bucket = google_storage_bucket.data.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_project_service_identity.vertex[0].email}"

  condition {
    title       = "vertex-agent-outputs"
    description = "Only objects under the output prefix (videos an extension continues)"
    expression  = "resource.name.startsWith(\"projects/_/buckets/${google_storage_bucket.data.name}/objects/${var.output_prefix}/\")"
  }
}

# Storage events reach Eventarc through Pub/Sub, published by the GCS service agent.
data "google_storage_project_service_account" "gcs" {
  count   = local.has_storage ? 1 : 0
  project = var.project_id
}

resource "google_project_iam_member" "gcs_pubsub_publisher" {
  count = local.has_storage ? 1 : 0

  project = var.project_id
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${data.google_storage_project_service_account.gcs[0].email_address}"
}

# On a fresh project Eventarc's service agent (service-<number>@gcp-sa-eventarc) may not exist
# yet, or not hold its role, when the storage trigger is created: the function's create then
# fails with "Permission denied while using the Eventarc Service Agent" (docs/DEPLOY.md). So
# the agent is created, granted roles/eventarc.serviceAgent, and the grant is given time to
# be honoured before any function (and its trigger) is created.
resource "google_project_service_identity" "eventarc" {
  count    = local.has_storage ? 1 : 0
  provider = google-beta

  project = var.project_id
  service = "eventarc.googleapis.com"

  depends_on = [time_sleep.apis]
}

resource "google_project_iam_member" "eventarc_agent" {
  #checkov:skip=CKV_GCP_49:The member is Google's own Eventarc service agent and the role is the predefined one Google documents for exactly that agent; it must mint tokens for the trigger's identity to deliver events, and no end user or workload of ours holds it.
  count = local.has_storage ? 1 : 0

  project = var.project_id
  role    = "roles/eventarc.serviceAgent"
  member  = "serviceAccount:${google_project_service_identity.eventarc[0].email}"
}

resource "time_sleep" "eventarc_agent" {
  count           = local.has_storage ? 1 : 0
  create_duration = "60s"

  depends_on = [
    google_project_iam_member.eventarc_agent,
    google_project_iam_member.gcs_pubsub_publisher,
  ]
}

# --- Function image builds --------------------------------------------------

resource "google_artifact_registry_repository" "functions" {
  #checkov:skip=CKV_GCP_84:The images hold only this repository's open function code and public PyPI packages, no data or secrets; Google-managed encryption at rest is enough and a KMS key would add cost and a key-rotation duty for no gain.
  project       = var.project_id
  location      = var.region
  repository_id = "veo-relay-functions"
  description   = "Images of the veo-relay functions (built by Cloud Functions)."
  format        = "DOCKER"

  cleanup_policy_dry_run = false

  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 10
    }
  }

  cleanup_policies {
    id     = "delete-old"
    action = "DELETE"
    condition {
      older_than = "2592000s"
    }
  }

  depends_on = [time_sleep.apis]
}

resource "google_artifact_registry_repository_iam_member" "build_writer" {
  project    = var.project_id
  location   = var.region
  repository = google_artifact_registry_repository.functions.name
  role       = "roles/artifactregistry.writer"
  member     = "serviceAccount:${google_service_account.sa["build"].email}"
}

resource "google_storage_bucket_iam_member" "build_source_reader" {
  bucket = google_storage_bucket.source.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.sa["build"].email}"
}

# Cloud Functions copies the archive into its own gcf-v2-sources-<number>-<region>
# bucket before the build reads it.
resource "google_project_iam_member" "build_gcf_sources_reader" {
  project = var.project_id
  role    = "roles/storage.objectViewer"
  member  = "serviceAccount:${google_service_account.sa["build"].email}"

  condition {
    title       = "gcf-v2-sources"
    description = "Only the Cloud Functions source staging bucket"
    expression  = "resource.name.startsWith(\"projects/_/buckets/gcf-v2-sources-${data.google_project.this.number}-${var.region}\")"
  }
}

# --- Invocation ---------------------------------------------------------------

resource "google_cloud_run_v2_service_iam_member" "invoker" {
  for_each = local.functions

  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.fn[each.key].name
  role     = "roles/run.invoker"
  member   = each.value.public ? "allUsers" : "serviceAccount:${google_service_account.sa["tasks"].email}"
}

# New grants take a minute to be honoured; functions deploy after that.
resource "time_sleep" "iam" {
  create_duration = "30s"

  triggers = {
    grants = sha1(jsonencode([
      keys(local.project_grants),
      sort(tolist(local.vertex_enabled ? local.provider_callers : toset([]))),
      keys(local.queue_grants),
      keys(local.secret_grants),
      keys(local.active_bucket_grants),
      sort(tolist(local.task_creators)),
    ]))
  }

  depends_on = [
    google_project_iam_member.sa,
    google_project_iam_member.vertex_user,
    google_cloud_tasks_queue_iam_member.enqueuer,
    google_service_account_iam_member.act_as_tasks,
    google_service_account_iam_member.webhook_sign_blob,
    google_secret_manager_secret_iam_member.accessor,
    google_storage_bucket_iam_member.prefix,
    google_storage_bucket_iam_member.input_bucket_reader,
    google_artifact_registry_repository_iam_member.build_writer,
    google_storage_bucket_iam_member.build_source_reader,
    google_project_iam_member.build_gcf_sources_reader,
  ]
}
