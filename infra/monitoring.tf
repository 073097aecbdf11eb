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
    push_detections = {
      description = "Jobs that asked their provider to push, by what found them done: its completion event, or a backstop check."
      filter      = "jsonPayload.message=\"provider done detected\" AND jsonPayload.detected_by:*"
      kind        = "counter"
      labels = {
        provider    = "jsonPayload.provider"
        model       = "jsonPayload.model"
        detected_by = "jsonPayload.detected_by"
      }
    }
    provider_events_refused = {
      description = "Completion events the provider_events function refused (401: signature, token or secret), per scheme."
      filter      = "jsonPayload.message=\"provider event refused\""
      kind        = "counter"
      labels = {
        scheme = "jsonPayload.scheme"
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
    push_detections  = local.metric_type["push_detections"]
  })

  depends_on = [google_project_service.api]
}

# ----------------------------------------------------------------------------- alerts
# One policy per entry of local.alerts, paging var.notification_channels, its documentation
# naming its runbook section. Each condition fires when its series, aligned over `period` with
# `aligner` and reduced with `reducer` per `group_by` (if given), stays above `threshold` for
# `duration` (0s unless given); with a `denominator` it is the ratio filter / denominator, both
# aggregated alike. aligner and reducer are literals so tests/infra/test_provider_schema.py checks
# them against the provider's allowed values.
locals {
  alerts = {
    job_failure_rate = {
      title = "job failure rate above ${var.alert_failure_rate * 100}%"
      conditions = [{
        name        = "failed jobs / ended jobs over 30 min"
        filter      = "metric.type=\"${local.metric_type["jobs_ended"]}\" AND resource.type=\"cloud_run_revision\" AND metric.label.status=\"failed\""
        denominator = "metric.type=\"${local.metric_type["jobs_ended"]}\" AND resource.type=\"cloud_run_revision\""
        threshold   = var.alert_failure_rate
        period      = "1800s"
        aligner     = "ALIGN_SUM"
        reducer     = "REDUCE_SUM"
      }]
      runbook = "More than ${var.alert_failure_rate * 100}% of the jobs that ended in the last 30 minutes failed. Open the dashboard's *Jobs ended by error code* chart: `rai_filtered` is the prompts, `quota_exceeded`/`unavailable` the provider, `download_invalid`/`download_expired` the copy. Runbook: docs/OPERATIONS.md#job-failure-rate."
    }
    provider_error_rate = {
      title = "a provider's failure rate above ${var.alert_provider_error_rate * 100}%"
      conditions = [{
        name        = "failed jobs / ended jobs per provider over 30 min (safety filters excluded)"
        filter      = "metric.type=\"${local.metric_type["jobs_ended"]}\" AND resource.type=\"cloud_run_revision\" AND metric.label.status=\"failed\" AND metric.label.error_code!=\"rai_filtered\""
        denominator = "metric.type=\"${local.metric_type["jobs_ended"]}\" AND resource.type=\"cloud_run_revision\""
        threshold   = var.alert_provider_error_rate
        period      = "1800s"
        aligner     = "ALIGN_SUM"
        reducer     = "REDUCE_SUM"
        group_by    = ["metric.label.provider"]
      }]
      runbook = "One provider fails more than ${var.alert_provider_error_rate * 100}% of its jobs for reasons other than safety filters. Check its status page and keys (`access_denied`), its quota (`quota_exceeded`), and the *Submissions throttled* chart. Runbook: docs/OPERATIONS.md#provider-error-rate."
    }
    jobs_past_deadline = {
      title = "jobs past their deadline"
      conditions = [{
        name      = "jobs ended with deadline_exceeded in 15 min"
        filter    = "metric.type=\"${local.metric_type["jobs_ended"]}\" AND resource.type=\"cloud_run_revision\" AND metric.label.error_code=\"deadline_exceeded\""
        threshold = 0
        period    = "900s"
        aligner   = "ALIGN_SUM"
        reducer   = "REDUCE_SUM"
        group_by  = ["metric.label.provider"]
      }]
      runbook = "Jobs ended with `deadline_exceeded`: a provider kept them running past their deadline, or a chain stopped and the sweep expired it. Runbook: docs/OPERATIONS.md#jobs-past-their-deadline."
    }
    webhooks_failing = {
      title = "webhooks failing"
      conditions = [
        {
          name      = "webhook events given up on in 1 h"
          filter    = "metric.type=\"${local.metric_type["webhook_attempts"]}\" AND resource.type=\"cloud_run_revision\" AND metric.label.outcome=monitoring.regex.full_match(\"gave_up|blocked\")"
          threshold = 0
          period    = "3600s"
          aligner   = "ALIGN_SUM"
          reducer   = "REDUCE_SUM"
        },
        {
          name      = "webhook attempts retrying, sustained"
          filter    = "metric.type=\"${local.metric_type["webhook_attempts"]}\" AND resource.type=\"cloud_run_revision\" AND metric.label.outcome=\"retrying\""
          threshold = var.alert_webhook_retries_per_hour
          period    = "3600s"
          aligner   = "ALIGN_SUM"
          reducer   = "REDUCE_SUM"
        },
      ]
      runbook = "Receivers are not accepting webhook events: some were given up on after the whole retry schedule (or their address is refused by the SSRF guard), or many are being retried. The job record's `deliveries` lists each attempt's status; `POST /jobs/{id}/webhooks:redeliver` sends the last event again. Runbook: docs/OPERATIONS.md#webhooks-failing."
    }
    queue_backlog = {
      title = "task queues falling behind"
      conditions = [
        {
          name      = "task attempts start late (p99 of the delay after their scheduled time)"
          filter    = "metric.type=\"cloudtasks.googleapis.com/queue/task_attempt_delays\" AND ${local.task_queues}"
          threshold = var.alert_queue_delay_seconds * 1000
          duration  = "600s"
          period    = "300s"
          aligner   = "ALIGN_PERCENTILE_99"
          reducer   = "REDUCE_MAX"
          group_by  = ["resource.label.queue_id"]
        },
        {
          name      = "tasks waiting in a queue"
          filter    = "metric.type=\"cloudtasks.googleapis.com/queue/depth\" AND ${local.task_queues}"
          threshold = var.alert_queue_depth
          duration  = "900s"
          period    = "300s"
          aligner   = "ALIGN_MAX"
          reducer   = "REDUCE_MAX"
          group_by  = ["resource.label.queue_id"]
        },
      ]
      runbook = "A Cloud Tasks queue dispatches later than planned or keeps a backlog: a function is at its max instances, a provider's submit queue is rate-limited below demand, or a target answers 5xx and tasks are retried. Runbook: docs/OPERATIONS.md#task-queues-falling-behind."
    }
    completion_events_missing = {
      title = "a provider's completion events not arriving"
      conditions = [{
        name        = "pushing jobs found done by a backstop check / all pushing jobs found done, per provider, over 1 h"
        filter      = "metric.type=\"${local.metric_type["push_detections"]}\" AND resource.type=\"cloud_run_revision\" AND metric.label.detected_by=\"check\""
        denominator = "metric.type=\"${local.metric_type["push_detections"]}\" AND resource.type=\"cloud_run_revision\""
        threshold   = var.alert_events_missing_share
        period      = "3600s"
        aligner     = "ALIGN_SUM"
        reducer     = "REDUCE_SUM"
        group_by    = ["metric.label.provider"]
      }]
      runbook = "More than ${var.alert_events_missing_share * 100}% of one provider's pushing jobs were found done by a backstop check, not by their event: the events stopped coming or are refused, and polling is dense again (more provider calls, later detection). Check the *provider events refused* alert, the Gemini static webhook's registration and secret, or the Vertex Pub/Sub subscription. Runbook: docs/OPERATIONS.md#completion-events-not-arriving."
    }
    provider_events_refused = {
      title = "provider events refused"
      conditions = [{
        name      = "completion events refused (401) in 1 h, per scheme"
        filter    = "metric.type=\"${local.metric_type["provider_events_refused"]}\" AND resource.type=\"cloud_run_revision\""
        threshold = var.alert_events_refused_per_hour
        period    = "3600s"
        aligner   = "ALIGN_SUM"
        reducer   = "REDUCE_SUM"
        group_by  = ["metric.label.scheme"]
      }]
      runbook = "The public provider_events function refused more than ${var.alert_events_refused_per_hour} events in an hour: a secret or service account that does not match what signs them (a rotated whsec_ secret, a new push subscription), or someone sending forged events (each costs at most one provider call). The log line's `reason` says which. Runbook: docs/OPERATIONS.md#provider-events-refused."
    }
    client_near_budget = {
      title = "a client at 90% of its budget, or refused"
      conditions = [
        {
          name      = "admissions at 90% or more of a cap, per client, in 1 h"
          filter    = "metric.type=\"${local.metric_type["budget_near_cap"]}\" AND resource.type=\"cloud_run_revision\""
          threshold = 0
          period    = "3600s"
          aligner   = "ALIGN_SUM"
          reducer   = "REDUCE_SUM"
          group_by  = ["metric.label.client_id"]
        },
        {
          name      = "jobs refused for budget, per client, in 1 h"
          filter    = "metric.type=\"${local.metric_type["budget_refusals"]}\" AND resource.type=\"cloud_run_revision\""
          threshold = 0
          period    = "3600s"
          aligner   = "ALIGN_SUM"
          reducer   = "REDUCE_SUM"
          group_by  = ["metric.label.client_id", "metric.label.cap"]
        },
      ]
      runbook = "A client used 90% or more of a daily, monthly or in-flight cap (VEO_BUDGETS), or had jobs refused with 429 budget_exceeded. GET /usage with its key shows its spend by day, model and provider. Raise its cap, or tell the client. Runbook: docs/OPERATIONS.md#a-client-near-its-budget."
    }
  }
}

resource "google_monitoring_alert_policy" "alert" {
  for_each = local.alerts

  project               = var.project_id
  display_name          = "veo-relay: ${each.value.title}"
  combiner              = "OR"
  notification_channels = var.notification_channels
  user_labels           = local.labels

  dynamic "conditions" {
    for_each = each.value.conditions
    content {
      display_name = conditions.value.name
      condition_threshold {
        filter             = conditions.value.filter
        denominator_filter = lookup(conditions.value, "denominator", null)
        comparison         = "COMPARISON_GT"
        threshold_value    = conditions.value.threshold
        duration           = lookup(conditions.value, "duration", "0s")
        aggregations {
          alignment_period     = conditions.value.period
          per_series_aligner   = conditions.value.aligner
          cross_series_reducer = conditions.value.reducer
          group_by_fields      = lookup(conditions.value, "group_by", null)
        }
        dynamic "denominator_aggregations" {
          for_each = lookup(conditions.value, "denominator", null) == null ? [] : [conditions.value]
          content {
            alignment_period     = denominator_aggregations.value.period
            per_series_aligner   = denominator_aggregations.value.aligner
            cross_series_reducer = denominator_aggregations.value.reducer
            group_by_fields      = lookup(denominator_aggregations.value, "group_by", null)
          }
        }
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = each.value.runbook
  }
}
