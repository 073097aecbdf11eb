# Provider completion events (docs/PROVIDERS.md "Completion events (push)"): the public
# provider_events function, the Gemini API static webhook's signing secret, and the Pub/Sub
# topic Vertex AI publishes finished operations to, with its push subscription to the function.
#
# provider_events only verifies an event, reads the job it names and queues one named check on
# veo-poll (steps/events_in.py); it never takes a result from an event, so its identity reads
# Firestore, enqueues on veo-poll and reads its one secret, nothing else.

variable "gemini_push_mode" {
  description = "How gemini jobs ask for their completion event: request (a per-request webhook, JWT-signed), static (the project's registered webhook, HMAC: docs/DEPLOY.md), off."
  type        = string
  default     = "request"
  validation {
    condition     = contains(["request", "static", "off"], var.gemini_push_mode)
    error_message = "gemini_push_mode: request, static or off."
  }
}

locals {
  provider_events = {
    name        = "provider-events"
    concurrency = 40 # an event is a signature check, one read and one enqueue: I/O-bound
    memory      = "256M"
    timeout     = 60
  }
  # The function's run.app URL (as local.function_urls): per-request webhook URIs and the Pub/Sub
  # push endpoint and audience are made from it (the function checks tokens for it).
  push_events_url = "https://${local.provider_events.name}-${data.google_project.this.number}.${var.region}.run.app"
  vertex_topic_id = local.vertex_enabled ? "projects/${var.project_id}/topics/veo-vertex-done" : ""

  # Every function: submit_job asks for push with these, provider_events checks with them.
  push_env = {
    VEO_PROVIDER_EVENTS_URL         = local.push_events_url
    VEO_GEMINI_PUSH                 = var.gemini_push_mode
    VEO_VERTEX_PUBSUB_TOPIC         = local.vertex_topic_id
    VEO_PUBSUB_PUSH_SERVICE_ACCOUNT = "veo-pubsub-push@${var.project_id}.iam.gserviceaccount.com"
  }
}

resource "google_service_account" "provider_events" {
  project      = var.project_id
  account_id   = "veo-provider-events"
  display_name = "veo-relay provider_events (public: provider completion events)"
  description  = "Managed by Terraform (infra/push.tf). Reads jobs, queues their checks on veo-poll."

  depends_on = [time_sleep.apis]
}

# The identity of the OIDC token each Pub/Sub push carries (the function accepts no other).
resource "google_service_account" "pubsub_push" {
  project      = var.project_id
  account_id   = "veo-pubsub-push"
  display_name = "veo-relay Pub/Sub push (Vertex AI completion events)"
  description  = "Managed by Terraform (infra/push.tf). Signs nothing itself: Pub/Sub mints its push tokens."

  depends_on = [time_sleep.apis]
}

# The static webhook's whsec_ secret, returned once by the Gemini API's WebhookService when the
# webhook is registered (docs/DEPLOY.md); version 1 is the "not configured" placeholder.
resource "google_secret_manager_secret" "gemini_webhook" {
  project   = var.project_id
  secret_id = "veo-gemini-webhook-secret"

  replication {
    auto {}
  }

  depends_on = [time_sleep.apis]
}

resource "google_secret_manager_secret_version" "gemini_webhook_placeholder" {
  secret          = google_secret_manager_secret.gemini_webhook.id
  secret_data     = "UNSET"
  deletion_policy = "ABANDON"

  lifecycle {
    ignore_changes = [enabled, secret_data]
  }
}

resource "google_secret_manager_secret_iam_member" "provider_events_secret" {
  project   = var.project_id
  secret_id = google_secret_manager_secret.gemini_webhook.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.provider_events.email}"
}

resource "google_project_iam_member" "provider_events_firestore" {
  project = var.project_id
  role    = "roles/datastore.viewer" # reads jobs; writes nothing
  member  = "serviceAccount:${google_service_account.provider_events.email}"
}

resource "google_cloud_tasks_queue_iam_member" "provider_events_poll" {
  project  = var.project_id
  location = var.region
  name     = google_cloud_tasks_queue.queue["veo-poll"].name
  role     = "roles/cloudtasks.enqueuer"
  member   = "serviceAccount:${google_service_account.provider_events.email}"
}

# Its checks carry the invoker's OIDC token, like every task (iam.serviceAccounts.actAs).
resource "google_service_account_iam_member" "provider_events_act_as_tasks" {
  service_account_id = google_service_account.sa["tasks"].name
  role               = "roles/iam.serviceAccountUser"
  member             = "serviceAccount:${google_service_account.provider_events.email}"
}

resource "google_cloudfunctions2_function" "provider_events" {
  #checkov:skip=CKV_GCP_124:Public by design: Google's webhooks and Pub/Sub pushes come from the internet. Every request must carry a verified signature (HMAC, a Google JWT or the push subscription's OIDC token) or gets 401 with nothing read or written (edges/provider_events.py).
  name        = local.provider_events.name
  project     = var.project_id
  location    = var.region
  description = "Provider completion events in: verifies them and queues an immediate check of the job."

  build_config {
    runtime           = "python312"
    entry_point       = "provider_events"
    docker_repository = google_artifact_registry_repository.functions.id
    service_account   = google_service_account.sa["build"].id

    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.functions_source.name
      }
    }
  }

  service_config {
    service_account_email            = google_service_account.provider_events.email
    available_memory                 = local.provider_events.memory
    available_cpu                    = "1"
    timeout_seconds                  = local.provider_events.timeout
    max_instance_request_concurrency = local.provider_events.concurrency
    min_instance_count               = 0
    max_instance_count               = 20
    ingress_settings                 = "ALLOW_ALL"
    all_traffic_on_latest_revision   = true

    # THREADS = its concurrency, last in merge() so nothing overrides it (tests/infra/test_drift.py).
    environment_variables = merge(local.function_env, {
      THREADS = tostring(local.provider_events.concurrency)
    })

    secret_environment_variables {
      key        = "VEO_GEMINI_WEBHOOK_SECRET"
      project_id = var.project_id
      secret     = google_secret_manager_secret.gemini_webhook.secret_id
      version    = "latest"
    }
  }

  depends_on = [
    time_sleep.iam,
    google_secret_manager_secret_version.gemini_webhook_placeholder,
    google_secret_manager_secret_iam_member.provider_events_secret,
  ]
}

# Anyone may call it (Google's senders have no identity of ours); the code checks signatures.
resource "google_cloud_run_v2_service_iam_member" "provider_events_public" {
  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.provider_events.name
  role     = "roles/run.invoker"
  member   = "allUsers"
}

# Vertex AI publishes each video generation's progress and end here (parameters.pubsubTopic).
resource "google_pubsub_topic" "vertex_done" {
  #checkov:skip=CKV_GCP_83:Google-managed encryption: a message carries an operation name and its done flag, never a video or a credential.
  count = local.vertex_enabled ? 1 : 0

  project                    = var.project_id
  name                       = "veo-vertex-done"
  message_retention_duration = "86400s"

  depends_on = [time_sleep.apis]
}

# ... as the Vertex AI service agent of the project jobs run in.
resource "google_pubsub_topic_iam_member" "vertex_publisher" {
  count = local.vertex_enabled ? 1 : 0

  project = var.project_id
  topic   = google_pubsub_topic.vertex_done[0].name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${google_project_service_identity.vertex[0].email}"
}

resource "google_pubsub_subscription" "vertex_done_push" {
  count = local.vertex_enabled ? 1 : 0

  project                    = var.project_id
  name                       = "veo-vertex-done-push"
  topic                      = google_pubsub_topic.vertex_done[0].id
  ack_deadline_seconds       = 30
  message_retention_duration = "3600s" # an undeliverable event is worth nothing after the backstop found the job

  push_config {
    push_endpoint = local.push_events_url
    oidc_token {
      service_account_email = google_service_account.pubsub_push.email
      audience              = local.push_events_url
    }
  }

  retry_policy {
    minimum_backoff = "5s"
    maximum_backoff = "60s"
  }

  expiration_policy {
    ttl = "" # never expires for inactivity
  }
}

# Pub/Sub mints the push tokens as veo-pubsub-push with its own service agent, which holds what
# that takes in projects created since April 2021; older projects: docs/DEPLOY.md (one grant).

output "provider_events_url" {
  description = "Where providers push completion events: register it as the Gemini API static webhook (docs/DEPLOY.md)."
  value       = local.push_events_url
}
