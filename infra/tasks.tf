# Cloud Tasks queues (ids and retry numbers: see local.queues in main.tf).
# The dispatch deadline is per task, set by the code (Cloud Tasks caps it at 30 min).
resource "google_cloud_tasks_queue" "queue" {
  for_each = local.queues

  name     = each.key
  project  = var.project_id
  location = var.region

  rate_limits {
    max_dispatches_per_second = each.value.max_dispatches_per_second
    max_concurrent_dispatches = each.value.max_concurrent_dispatches
  }

  retry_config {
    max_attempts       = each.value.max_attempts
    min_backoff        = "${each.value.min_backoff_s}s"
    max_backoff        = "${each.value.max_backoff_s}s"
    max_doublings      = each.value.max_doublings
    max_retry_duration = each.value.max_retry_duration_s > 0 ? "${each.value.max_retry_duration_s}s" : null
  }

  stackdriver_logging_config {
    sampling_ratio = 1.0
  }

  depends_on = [time_sleep.apis]
}
