# The Cloud Functions (2nd gen), one per enabled entry of local.function_catalog.
resource "google_cloudfunctions2_function" "fn" {
  #checkov:skip=CKV_GCP_124:One block for all functions. Only entries with public = true (the api, which checks API keys itself) get ALLOW_ALL; every other function gets var.internal_ingress (default ALLOW_INTERNAL_ONLY) and answers only the tasks identity's OIDC tokens. tests/infra/test_least_privilege.py enforces this.
  for_each = local.functions

  name        = each.key
  project     = var.project_id
  location    = var.region
  description = each.value.description

  build_config {
    runtime           = "python312"
    entry_point       = each.value.entry_point
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
    service_account_email            = google_service_account.sa[each.value.service_account].email
    available_memory                 = each.value.memory
    available_cpu                    = each.value.cpu
    timeout_seconds                  = each.value.timeout
    max_instance_request_concurrency = each.value.concurrency
    min_instance_count               = each.key == "api" ? var.api_min_instances : each.value.min_instances
    max_instance_count               = lookup(var.max_instances, each.key, each.value.max_instances)
    ingress_settings                 = each.value.public ? "ALLOW_ALL" : var.internal_ingress
    all_traffic_on_latest_revision   = true

    # THREADS: functions-framework serves with gunicorn threads = THREADS, else cpu x 4; one
    # thread per request the instance is given (its concurrency), or requests queue inside it
    # (tests/infra/test_drift.py ties the two for every function in infra/).
    environment_variables = merge(local.function_env, lookup(local.function_own_env, each.key, {}), {
      THREADS = tostring(each.value.concurrency)
    })

    dynamic "secret_environment_variables" {
      for_each = local.function_secrets[each.key]
      content {
        key        = secret_environment_variables.key
        project_id = var.project_id
        secret     = google_secret_manager_secret.secret[secret_environment_variables.key].secret_id
        version    = "latest"
      }
    }
  }

  # Storage-triggered functions: object finalized in the data bucket. Eventarc
  # cannot filter GCS events by prefix; the code ignores names outside requests/.
  dynamic "event_trigger" {
    for_each = each.value.trigger == "storage" ? [each.key] : []
    content {
      trigger_region        = var.region
      event_type            = "google.cloud.storage.object.v1.finalized"
      retry_policy          = "RETRY_POLICY_RETRY"
      service_account_email = google_service_account.sa["tasks"].email
      event_filters {
        attribute = "bucket"
        value     = google_storage_bucket.data.name
      }
    }
  }

  lifecycle {
    # What Cloud Tasks, Scheduler and Eventarc reach through internal ingress: a run.app URL.
    postcondition {
      condition     = endswith(self.service_config[0].uri, ".run.app")
      error_message = "Cloud Run reported no run.app URL for this function: internal ingress admits Cloud Tasks, Scheduler and Eventarc only through it."
    }
  }

  depends_on = [
    time_sleep.iam,
    time_sleep.eventarc_agent,
    google_secret_manager_secret_version.placeholder,
    google_project_iam_member.gcs_pubsub_publisher,
  ]
}

# Functions run by Cloud Scheduler (the sweep), authenticated with OIDC as the
# tasks identity.
resource "google_cloud_scheduler_job" "schedule" {
  for_each = { for name, f in local.functions : name => f if f.trigger == "schedule" }

  name             = "veo-${each.key}"
  project          = var.project_id
  region           = var.region
  description      = "Runs ${each.key} (${each.value.entry_point})."
  schedule         = var.sweep_schedule
  time_zone        = "Etc/UTC"
  attempt_deadline = "${min(each.value.timeout, 1800)}s"

  # The next run comes in minutes; a failed run is not retried.
  retry_config {
    retry_count = 0
  }

  # The function's run.app URL (service_config.uri; `url` is the cloudfunctions.net one, which
  # internal ingress refuses to Scheduler), also the audience its code accepts (edges/invoker.py).
  http_target {
    http_method = "POST"
    uri         = google_cloudfunctions2_function.fn[each.key].service_config[0].uri
    headers     = { "Content-Type" = "application/json" }
    body        = base64encode("{}")

    oidc_token {
      service_account_email = google_service_account.sa["tasks"].email
      audience              = google_cloudfunctions2_function.fn[each.key].service_config[0].uri
    }
  }

  depends_on = [google_cloud_run_v2_service_iam_member.invoker]
}
