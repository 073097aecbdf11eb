# Inputs. Only project_id is required; everything else has a production default.
# cloudbuild.yaml passes project_id, region, bucket_name, providers_enabled and
# default_provider from its substitutions (TF_VAR_*); the rest can be set in a
# terraform.tfvars committed next to this file (see terraform.tfvars.example).

variable "project_id" {
  description = "Google Cloud project that hosts veo-relay."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a Google Cloud project ID (6-30 lowercase letters, digits, hyphens)."
  }
}

variable "region" {
  description = "Region of the functions, queues, scheduler job and bucket."
  type        = string
  default     = "us-central1"
}

variable "bucket_name" {
  description = "Bucket for inputs, outputs and request files. Empty = \"<project_id>-veo-relay\"."
  type        = string
  default     = ""
}

variable "firestore_location" {
  description = "Firestore location (a region such as us-central1, or nam5/eur3). Empty = same as region. Cannot change after creation."
  type        = string
  default     = ""
}

variable "providers_enabled" {
  description = "Video providers this deployment can use. Each gets a submit queue and its keys mounted into the provider-calling functions."
  type        = list(string)
  default     = ["litellm-gemini"]

  validation {
    condition     = length(var.providers_enabled) > 0 && alltrue([for p in var.providers_enabled : contains(["litellm-gemini", "newapi", "genaipro", "flow", "gemini", "vertex"], p)])
    error_message = "providers_enabled must be a non-empty subset of: litellm-gemini, newapi, genaipro, flow, gemini, vertex."
  }
}

variable "default_provider" {
  description = "Provider used when a request names none. Must be in providers_enabled."
  type        = string
  default     = "litellm-gemini"

  validation {
    condition     = contains(var.providers_enabled, var.default_provider)
    error_message = "default_provider must be one of providers_enabled."
  }
}

variable "provider_base_urls" {
  description = "Overrides of provider base URLs, by provider name (e.g. { newapi = \"https://...\" })."
  type        = map(string)
  default     = {}
}

variable "provider_dispatch_rates" {
  description = "Submission quota per provider: tasks per second dispatched from veo-submit-<provider>. Providers not listed use default_dispatch_rate."
  type        = map(number)
  default     = {}
}

variable "default_dispatch_rate" {
  description = "Submission quota (tasks per second) for providers not in provider_dispatch_rates."
  type        = number
  default     = 5
}

variable "provider_max_concurrent_submissions" {
  description = "Submissions in flight at once per provider (max_concurrent_dispatches of veo-submit-<provider>)."
  type        = number
  default     = 20
}

variable "flow_project_id" {
  description = "Flow (labs) project id, VEO_FLOW_PROJECT_ID. Only used when flow is enabled."
  type        = string
  default     = ""
}

variable "vertex_project" {
  description = "Project whose Vertex AI quota Veo calls use. Empty = project_id."
  type        = string
  default     = ""
}

variable "vertex_location" {
  description = "Vertex AI location for Veo. Empty = region."
  type        = string
  default     = ""
}

variable "output_prefix" {
  description = "Bucket prefix of finished videos (VEO_OUTPUT_PREFIX): <prefix>/<job id>/<n>.mp4 and job.json."
  type        = string
  default     = "videos"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9_-]*$", var.output_prefix)) && !contains(["inputs", "requests", "vertex"], var.output_prefix)
    error_message = "output_prefix must be one path segment and not one of the reserved prefixes inputs, requests, vertex."
  }
}

variable "output_retention_days" {
  description = "Delete finished videos this many days after creation. 0 = keep them until someone deletes them."
  type        = number
  default     = 0
}

variable "input_retention_days" {
  description = "Lifetime of input images: the copies jobs use (inputs/) and what clients upload for their jobs (uploads/)."
  type        = number
  default     = 7
}

variable "request_retention_days" {
  description = "Lifetime of event-started request files (requests/)."
  type        = number
  default     = 30
}

variable "vertex_staging_retention_days" {
  description = "Lifetime of the files Vertex AI writes under vertex/ before finalize copies them to the output prefix."
  type        = number
  default     = 7
}

variable "soft_delete_retention_days" {
  description = "GCS soft delete window for the bucket (0 disables it; Google's default is 7). Soft-deleted bytes are billed."
  type        = number
  default     = 7

  validation {
    condition     = var.soft_delete_retention_days == 0 || (var.soft_delete_retention_days >= 7 && var.soft_delete_retention_days <= 90)
    error_message = "soft_delete_retention_days must be 0 (off) or between 7 and 90."
  }
}

variable "max_instances" {
  description = "Per-function overrides of max instances, keyed by function name (e.g. { api = 50 })."
  type        = map(number)
  default     = {}
}

variable "api_min_instances" {
  description = "Warm instances of the public api function (0 = scale to zero, cold starts on the first request)."
  type        = number
  default     = 0
}

variable "internal_ingress" {
  description = "Ingress of the internal functions. ALLOW_INTERNAL_ONLY still admits Cloud Tasks, Cloud Scheduler and Eventarc; OIDC (only the tasks identity holds run.invoker) is checked either way."
  type        = string
  default     = "ALLOW_INTERNAL_ONLY"

  validation {
    condition     = contains(["ALLOW_INTERNAL_ONLY", "ALLOW_ALL"], var.internal_ingress)
    error_message = "internal_ingress must be ALLOW_INTERNAL_ONLY or ALLOW_ALL."
  }
}

variable "sweep_schedule" {
  description = "Cron schedule of the sweep (when the sweep_jobs function is enabled)."
  type        = string
  default     = "*/5 * * * *"
}

variable "tuning" {
  description = <<-EOT
    Application knobs passed to every function as environment variables. Each default is
    the code's own default (functions/veorelay/config.py; tests/infra/test_drift.py checks
    it), so leaving one out changes nothing. Poll schedule: docs/RELIABILITY.md; webhooks
    and signed URLs: docs/EVENTS.md.
  EOT
  type = object({
    job_deadline_seconds = optional(number, 1800)
    download_attempts    = optional(number, 3)
    upload_chunk_bytes   = optional(number, 8388608)
    # Also record a sha256 of each video (about 0.6 CPU s per GiB); Cloud Storage's CRC32C
    # and MD5 are always recorded (docs/EVENTS.md, outputs).
    output_sha256 = optional(bool, false)
    # Poll schedule (poll_schedule.py): first check no later than initial, gaps between
    # min and max; delay_cost_checks = at most this many checks per second of detection
    # delay saved, within the budget of the reference cadence (10 s x1.2 up to 30 s) on the
    # same learned spread; max_checks caps a job's expected checks.
    poll_initial_delay_seconds = optional(number, 60)
    poll_min_delay_seconds     = optional(number, 2)
    poll_max_delay_seconds     = optional(number, 30)
    poll_delay_cost_checks     = optional(number, 5)
    poll_max_checks            = optional(number, 10)
    # The sweep restarts a job nothing has written for this long (x3 while downloading).
    sweep_stall_seconds = optional(number, 600)
    # Webhooks: delay before each attempt (the list's length is the number of attempts),
    # each attempt's wait for an answer, the job.progress window, signed URL lifetime.
    webhook_retry_schedule_seconds    = optional(list(number), [0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400])
    webhook_timeout_seconds           = optional(number, 15)
    webhook_progress_interval_seconds = optional(number, 30)
    signed_url_ttl_seconds            = optional(number, 86400)
    log_level                         = optional(string, "INFO")
    # Failover (README "Failover"): how long a throttled submission waits, how many
    # unreachable attempts, before the job moves to its next provider.
    failover_throttled_seconds    = optional(number, 120)
    failover_unavailable_attempts = optional(number, 3)
  })
  default = {}

  validation {
    condition     = var.tuning.poll_min_delay_seconds > 0 && var.tuning.poll_min_delay_seconds <= var.tuning.poll_max_delay_seconds
    error_message = "tuning.poll_min_delay_seconds must be positive and at most poll_max_delay_seconds."
  }

  validation {
    # Above the longest Retry-After a submission waits out (300 s), or the sweep restarts
    # chains that are only waiting.
    condition     = var.tuning.sweep_stall_seconds > 300
    error_message = "tuning.sweep_stall_seconds must be more than 300 (the longest Retry-After wait of a submission)."
  }

  validation {
    # Cloud Tasks cannot schedule a task more than 30 days ahead.
    condition     = length(var.tuning.webhook_retry_schedule_seconds) > 0 && alltrue([for d in var.tuning.webhook_retry_schedule_seconds : d >= 0 && d <= 2592000])
    error_message = "tuning.webhook_retry_schedule_seconds must be a non-empty list of delays between 0 and 2592000 seconds."
  }

  validation {
    # A delivery task's dispatch deadline is timeout + 30 s; deliver-webhook's function
    # timeout (60 s) must cover it.
    condition     = var.tuning.webhook_timeout_seconds >= 1 && var.tuning.webhook_timeout_seconds <= 30
    error_message = "tuning.webhook_timeout_seconds must be between 1 and 30 (deliver-webhook runs for at most 60 s)."
  }

  validation {
    condition     = var.tuning.webhook_progress_interval_seconds >= 1
    error_message = "tuning.webhook_progress_interval_seconds must be at least 1."
  }

  validation {
    # The V4 signature's own limit is 7 days.
    condition     = var.tuning.signed_url_ttl_seconds >= 1 && var.tuning.signed_url_ttl_seconds <= 604800
    error_message = "tuning.signed_url_ttl_seconds must be between 1 and 604800 (7 days)."
  }
}

variable "requests_client_id" {
  description = "API client that owns jobs started from requests/ objects (VEO_REQUESTS_CLIENT_ID): its webhook secrets sign their events, and it can read them with GET /jobs/{id}. Anyone who may write requests/ acts as this client."
  type        = string
  default     = "bucket"

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", var.requests_client_id))
    error_message = "requests_client_id must be a client id: 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit."
  }
}

variable "input_buckets" {
  description = "Buckets (names, no gs://) clients may name as gs:// input images (VEO_INPUT_BUCKETS). The api and events identities get read access to each (iam.tf), so list only buckets meant for that. Without any, a gs:// image must be in this deployment's bucket under uploads/<client id>/."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for b in var.input_buckets : can(regex("^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$", b))])
    error_message = "input_buckets must be bucket names (lowercase letters, digits, '.', '_', '-'), without gs:// or a folder."
  }
}

variable "upload_writers" {
  description = "Per API client id, the IAM members (\"user:...\", \"serviceAccount:...\", \"group:...\") who may create objects in the data bucket under uploads/<client id>/, the one folder of it that client's jobs may name as gs:// images."
  type        = map(list(string))
  default     = {}

  validation {
    condition     = alltrue([for c in keys(var.upload_writers) : can(regex("^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", c))])
    error_message = "upload_writers keys must be client ids: 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit."
  }
}

variable "secrets_rollout" {
  description = "Change this (any string, e.g. a date) to roll every function onto a new revision, so new secret versions are read at once instead of when instances recycle."
  type        = string
  default     = "1"
}

variable "github_owner" {
  description = "GitHub owner of the repository, for the optional push trigger. Empty = no trigger (deploy with infra/deploy.sh)."
  type        = string
  default     = ""
}

variable "github_repo" {
  description = "GitHub repository name for the optional push trigger."
  type        = string
  default     = ""
}

variable "github_branch" {
  description = "Branch whose pushes deploy (regular expression)."
  type        = string
  default     = "^main$"
}

variable "tf_state_bucket" {
  description = "Terraform state bucket (created by infra/deploy.sh); passed to the push trigger so it deploys the same state."
  type        = string
  default     = ""
}

variable "labels" {
  description = "Labels added to every resource that supports them."
  type        = map(string)
  default     = {}
}

# ----------------------------------------------------------------------------- operations (monitoring.tf)
variable "notification_channels" {
  description = "Cloud Monitoring notification channel ids (projects/<p>/notificationChannels/<id>) every alert policy notifies. Empty: alerts open incidents in the console only."
  type        = list(string)
  default     = []
}

variable "alert_failure_rate" {
  description = "Alert when more than this fraction of the jobs that ended in 30 minutes failed."
  type        = number
  default     = 0.2
}

variable "alert_provider_error_rate" {
  description = "Alert when one provider fails more than this fraction of its jobs in 30 minutes (safety filters excluded)."
  type        = number
  default     = 0.3
}

variable "alert_webhook_retries_per_hour" {
  description = "Alert when more webhook attempts than this are being retried in an hour."
  type        = number
  default     = 50
}

variable "alert_events_missing_share" {
  description = "Alert when more than this share of a provider's pushing jobs is found done by a backstop check instead of its completion event (over an hour)."
  type        = number
  default     = 0.5
}

variable "alert_events_refused_per_hour" {
  description = "Alert when the provider_events function refuses more events than this in an hour."
  type        = number
  default     = 20
}

variable "alert_queue_delay_seconds" {
  description = "Alert when task attempts start more than this many seconds after their scheduled time (p99, 10 minutes)."
  type        = number
  default     = 120
}

variable "alert_queue_depth" {
  description = "Alert when a task queue holds more tasks than this for 15 minutes."
  type        = number
  default     = 1000
}

# ----------------------------------------------------------------------------- spend control and failover
variable "budgets" {
  description = "Spend and in-flight caps per client id (and \"default\" for the others): VEO_BUDGETS. Empty: no caps. README \"Spend control\"."
  type = map(object({
    daily_usd     = optional(number)
    monthly_usd   = optional(number)
    max_in_flight = optional(number)
  }))
  default = {}
}

variable "failover_chains" {
  description = "Providers, in order, a job that names none may move to if its provider refuses it before accepting it, by model family (e.g. { \"veo-3.1\" = [\"gemini\", \"vertex\"] }): VEO_FAILOVER_CHAINS."
  type        = map(list(string))
  default     = {}

  validation {
    condition     = alltrue([for chain in values(var.failover_chains) : length(chain) > 0 && alltrue([for p in chain : contains(var.providers_enabled, p)])])
    error_message = "every failover chain must be a non-empty list of enabled providers."
  }
}
