# Operations: log-based metrics read from the functions' structured JSON logs
# (functions/veorelay/gcp/logs.py), one dashboard, and alert policies that page
# var.notification_channels. Every filter names a `message` the code logs and
# the fields it reads from it; tests/infra/test_monitoring.py runs the real steps
# and checks each filter against the lines they print. docs/OPERATIONS.md is the
# runbook for every alert.

locals {
  # Cloud Functions (2nd gen) run on Cloud Run: their stdout lines are
  # cloud_run_revision entries whose JSON becomes jsonPayload.
  log_source = "resource.type=\"cloud_run_revision\" AND resource.labels.service_name=(${join(" OR ", [for name in keys(local.functions) : "\"${name}\""])})"

  log_metrics = {
    jobs_ended = {
      description = "Jobs that ended, by final status and error code, per provider and model."
      filter      = "jsonPayload.message=\"job ended\""
      kind        = "counter"
      labels = {
        provider   = "jsonPayload.provider"
        model      = "jsonPayload.model"
        status     = "jsonPayload.status"
        error_code = "jsonPayload.error_code"
      }
    }
    detection_delay = {
      description = "Upper bound of the delay between the provider finishing and veo-relay noticing (seconds)."
      filter      = "jsonPayload.message=\"provider done detected\""
      kind        = "distribution"
      value       = "jsonPayload.detection_delay_max_s"
      unit        = "s"
      labels = {
        provider = "jsonPayload.provider"
        model    = "jsonPayload.model"
      }
    }
    copy_time = {
      description = "Seconds to stream one video from the provider into the bucket."
      filter      = "jsonPayload.message=\"output stored\""
      kind        = "distribution"
      value       = "jsonPayload.copy_s"
      unit        = "s"
      labels = {
        provider = "jsonPayload.provider"
      }
    }
    webhook_attempts = {
      description = "Webhook delivery attempts by outcome (delivered, retrying, gave_up, gone, blocked, not_retried)."
      filter      = "jsonPayload.message=\"webhook attempt\""
      kind        = "counter"
      labels = {
        outcome = "jsonPayload.outcome"
        event   = "jsonPayload.event"
      }
    }
    budget_refusals = {
      description = "Jobs refused with 429 budget_exceeded, per client and cap (daily, monthly, in_flight)."
      filter      = "jsonPayload.message=\"budget refused\""
      kind        = "counter"
      labels = {
        client_id = "jsonPayload.client_id"
        cap       = "jsonPayload.cap"
      }
    }
    budget_near_cap = {
      description = "Admissions that left a client at 90% or more of one of its caps."
      filter      = "jsonPayload.message=\"budget reserved\" AND jsonPayload.used_fraction>=0.9"
      kind        = "counter"
      labels = {
        client_id = "jsonPayload.client_id"
      }
    }
    submissions_throttled = {
      description = "Submissions a provider refused for quota or load, retried later."
      filter      = "jsonPayload.message=\"provider throttled the submission; retrying later\""
      kind        = "counter"
      labels = {
        provider = "jsonPayload.provider"
        code     = "jsonPayload.code"
      }
    }
  }
}

resource "google_logging_metric" "metric" {
  for_each = local.log_metrics

  project     = var.project_id
  name        = "veo_relay/${each.key}"
  description = each.value.description
  filter      = "${local.log_source} AND ${each.value.filter}"

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = each.value.kind == "distribution" ? "DISTRIBUTION" : "INT64"
    unit        = lookup(each.value, "unit", "1")

    dynamic "labels" {
      for_each = each.value.labels
      content {
        key         = labels.key
        value_type  = "STRING"
        description = "From ${labels.value}."
      }
    }
  }

  label_extractors = { for key, field in each.value.labels : key => "EXTRACT(${field})" }
  value_extractor  = each.value.kind == "distribution" ? "EXTRACT(${each.value.value})" : null

  dynamic "bucket_options" {
    for_each = each.value.kind == "distribution" ? [each.key] : []
    content {
      exponential_buckets {
        num_finite_buckets = 24
        growth_factor      = 1.5
        scale              = 0.1
      }
    }
  }

  depends_on = [google_project_service.api]
}

locals {
  metric_type = { for key, metric in google_logging_metric.metric : key => "logging.googleapis.com/user/${metric.name}" }
  task_queues = "resource.type=\"cloud_tasks_queue\" AND resource.labels.queue_id=starts_with(\"veo-\")"
}

resource "google_monitoring_dashboard" "veo_relay" {
  project = var.project_id
  dashboard_json = templatefile("${path.module}/dashboards/veo-relay.json.tftpl", {
    jobs_ended       = local.metric_type["jobs_ended"]
    detection_delay  = local.metric_type["detection_delay"]
    copy_time        = local.metric_type["copy_time"]
    webhook_attempts = local.metric_type["webhook_attempts"]
    throttled        = local.metric_type["submissions_throttled"]
    budget_refusals  = local.metric_type["budget_refusals"]
  })

  depends_on = [google_project_service.api]
}

# ----------------------------------------------------------------------------- alerts
resource "google_monitoring_alert_policy" "job_failure_rate" {
  project               = var.project_id
  display_name          = "veo-relay: job failure rate above ${var.alert_failure_rate * 100}%"
  combiner              = "OR"
  notification_channels = var.notification_channels
  user_labels           = local.labels

  conditions {
    display_name = "failed jobs / ended jobs over 30 min"
    condition_threshold {
      filter             = "metric.type=\"${local.metric_type["jobs_ended"]}\" AND resource.type=\"cloud_run_revision\" AND metric.label.status=\"failed\""
      denominator_filter = "metric.type=\"${local.metric_type["jobs_ended"]}\" AND resource.type=\"cloud_run_revision\""
      comparison         = "COMPARISON_GT"
      threshold_value    = var.alert_failure_rate
      duration           = "0s"
      aggregations {
        alignment_period     = "1800s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }
      denominator_aggregations {
        alignment_period     = "1800s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "More than ${var.alert_failure_rate * 100}% of the jobs that ended in the last 30 minutes failed. Open the dashboard's *Jobs ended by error code* chart: `rai_filtered` is the prompts, `quota_exceeded`/`unavailable` the provider, `download_invalid`/`download_expired` the copy. Runbook: docs/OPERATIONS.md#job-failure-rate."
  }
}

resource "google_monitoring_alert_policy" "provider_error_rate" {
  project               = var.project_id
  display_name          = "veo-relay: a provider's failure rate above ${var.alert_provider_error_rate * 100}%"
  combiner              = "OR"
  notification_channels = var.notification_channels
  user_labels           = local.labels

  conditions {
    display_name = "failed jobs / ended jobs per provider over 30 min (safety filters excluded)"
    condition_threshold {
      filter             = "metric.type=\"${local.metric_type["jobs_ended"]}\" AND resource.type=\"cloud_run_revision\" AND metric.label.status=\"failed\" AND metric.label.error_code!=\"rai_filtered\""
      denominator_filter = "metric.type=\"${local.metric_type["jobs_ended"]}\" AND resource.type=\"cloud_run_revision\""
      comparison         = "COMPARISON_GT"
      threshold_value    = var.alert_provider_error_rate
      duration           = "0s"
      aggregations {
        alignment_period     = "1800s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.provider"]
      }
      denominator_aggregations {
        alignment_period     = "1800s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.provider"]
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "One provider fails more than ${var.alert_provider_error_rate * 100}% of its jobs for reasons other than safety filters. Check its status page and keys (`access_denied`), its quota (`quota_exceeded`), and the *Submissions throttled* chart. Runbook: docs/OPERATIONS.md#provider-error-rate."
  }
}

resource "google_monitoring_alert_policy" "jobs_past_deadline" {
  project               = var.project_id
  display_name          = "veo-relay: jobs past their deadline"
  combiner              = "OR"
  notification_channels = var.notification_channels
  user_labels           = local.labels

  conditions {
    display_name = "jobs ended with deadline_exceeded in 15 min"
    condition_threshold {
      filter          = "metric.type=\"${local.metric_type["jobs_ended"]}\" AND resource.type=\"cloud_run_revision\" AND metric.label.error_code=\"deadline_exceeded\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period     = "900s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.provider"]
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Jobs ended with `deadline_exceeded`: a provider kept them running past their deadline, or a chain stopped and the sweep expired it. Runbook: docs/OPERATIONS.md#jobs-past-their-deadline."
  }
}

resource "google_monitoring_alert_policy" "webhooks_failing" {
  project               = var.project_id
  display_name          = "veo-relay: webhooks failing"
  combiner              = "OR"
  notification_channels = var.notification_channels
  user_labels           = local.labels

  conditions {
    display_name = "webhook events given up on in 1 h"
    condition_threshold {
      filter          = "metric.type=\"${local.metric_type["webhook_attempts"]}\" AND resource.type=\"cloud_run_revision\" AND metric.label.outcome=monitoring.regex.full_match(\"gave_up|blocked\")"
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period     = "3600s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }

  conditions {
    display_name = "webhook attempts retrying, sustained"
    condition_threshold {
      filter          = "metric.type=\"${local.metric_type["webhook_attempts"]}\" AND resource.type=\"cloud_run_revision\" AND metric.label.outcome=\"retrying\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.alert_webhook_retries_per_hour
      duration        = "0s"
      aggregations {
        alignment_period     = "3600s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Receivers are not accepting webhook events: some were given up on after the whole retry schedule (or their address is refused by the SSRF guard), or many are being retried. The job record's `deliveries` lists each attempt's status; `POST /jobs/{id}/webhooks:redeliver` sends the last event again. Runbook: docs/OPERATIONS.md#webhooks-failing."
  }
}

resource "google_monitoring_alert_policy" "queue_backlog" {
  project               = var.project_id
  display_name          = "veo-relay: task queues falling behind"
  combiner              = "OR"
  notification_channels = var.notification_channels
  user_labels           = local.labels

  conditions {
    display_name = "task attempts start late (p99 of the delay after their scheduled time)"
    condition_threshold {
      filter          = "metric.type=\"cloudtasks.googleapis.com/queue/task_attempt_delays\" AND ${local.task_queues}"
      comparison      = "COMPARISON_GT"
      threshold_value = var.alert_queue_delay_seconds * 1000
      duration        = "600s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_PERCENTILE_99"
        cross_series_reducer = "REDUCE_MAX"
        group_by_fields      = ["resource.label.queue_id"]
      }
    }
  }

  conditions {
    display_name = "tasks waiting in a queue"
    condition_threshold {
      filter          = "metric.type=\"cloudtasks.googleapis.com/queue/depth\" AND ${local.task_queues}"
      comparison      = "COMPARISON_GT"
      threshold_value = var.alert_queue_depth
      duration        = "900s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_MAX"
        cross_series_reducer = "REDUCE_MAX"
        group_by_fields      = ["resource.label.queue_id"]
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "A Cloud Tasks queue dispatches later than planned or keeps a backlog: a function is at its max instances, a provider's submit queue is rate-limited below demand, or a target answers 5xx and tasks are retried. Runbook: docs/OPERATIONS.md#task-queues-falling-behind."
  }
}

resource "google_monitoring_alert_policy" "client_near_budget" {
  project               = var.project_id
  display_name          = "veo-relay: a client at 90% of its budget, or refused"
  combiner              = "OR"
  notification_channels = var.notification_channels
  user_labels           = local.labels

  conditions {
    display_name = "admissions at 90% or more of a cap, per client, in 1 h"
    condition_threshold {
      filter          = "metric.type=\"${local.metric_type["budget_near_cap"]}\" AND resource.type=\"cloud_run_revision\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period     = "3600s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.client_id"]
      }
    }
  }

  conditions {
    display_name = "jobs refused for budget, per client, in 1 h"
    condition_threshold {
      filter          = "metric.type=\"${local.metric_type["budget_refusals"]}\" AND resource.type=\"cloud_run_revision\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period     = "3600s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.client_id", "metric.label.cap"]
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "A client used 90% or more of a daily, monthly or in-flight cap (VEO_BUDGETS), or had jobs refused with 429 budget_exceeded. GET /usage with its key shows its spend by day, model and provider. Raise its cap, or tell the client. Runbook: docs/OPERATIONS.md#a-client-near-its-budget."
  }
}
