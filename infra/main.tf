# The single source of truth for veo-relay's functions, providers, queues and
# service accounts. Every resource in this directory is generated from these maps.
#
# Adding a function = set `enabled = true` on its entry below (or add an entry),
# once functions/main.py defines its entry point. tests/infra/test_drift.py fails
# when the enabled entries and the decorated functions in functions/main.py differ.

locals {
  labels = merge({ app = "veo-relay", managed-by = "terraform" }, var.labels)

  bucket_name        = var.bucket_name != "" ? var.bucket_name : "${var.project_id}-veo-relay"
  source_bucket_name = "${var.project_id}-veo-relay-source"
  firestore_location = var.firestore_location != "" ? var.firestore_location : var.region
  vertex_project     = var.vertex_project != "" ? var.vertex_project : var.project_id
  vertex_location    = var.vertex_location != "" ? var.vertex_location : var.region
  vertex_enabled     = contains(var.providers_enabled, "vertex")

  # ---------------------------------------------------------------------------
  # Functions. Key = deployed name (Cloud Run service names allow no "_"), which
  # is also the last segment of its URL. Fields:
  #   entry_point      decorated function in functions/main.py
  #   trigger          "http" (public API or Cloud Tasks target), "schedule"
  #                    (Cloud Scheduler), "storage" (object finalized in the bucket)
  #   public           allUsers may invoke (the code checks API keys); otherwise
  #                    only the tasks service account may, with an OIDC token
  #   service_account  key in local.service_accounts (one identity per role)
  #   secrets          groups from local.secret_groups mounted as env vars
  #   memory/cpu       Cloud Run sizes; concurrency > 1 needs cpu >= 1
  #   timeout          seconds. Cloud Tasks waits at most 30 min (dispatch
  #                    deadline) for an answer, so no task target goes beyond 1800
  #   concurrency      requests per instance
  #   max_instances    queue max_concurrent_dispatches <= max_instances * concurrency
  # ---------------------------------------------------------------------------
  function_catalog = {
    api = {
      enabled         = true
      entry_point     = "api"
      description     = "veo-relay public HTTP API: POST /jobs, GET /jobs/{id}, POST /jobs/{id}:cancel, GET /providers"
      trigger         = "http"
      public          = true
      service_account = "api"
      secrets         = ["api_keys"]
      memory          = "512Mi"
      cpu             = "1"
      timeout         = 180 # > the event stream's 150 s (VEO_EVENTS_MAX_SECONDS) and Prefer: wait's 60 s after the body
      concurrency     = 40
      min_instances   = 0
      max_instances   = 20
    }
    submit-job = {
      enabled         = true
      entry_point     = "submit_job"
      description     = "veo-relay: submits a job to its provider (Cloud Tasks target, veo-submit-<provider>)"
      trigger         = "http"
      public          = false
      service_account = "submit"
      secrets         = ["provider_keys"]
      memory          = "512Mi"
      cpu             = "1"
      timeout         = 300
      concurrency     = 10
      min_instances   = 0
      max_instances   = 20
    }
    poll-job = {
      enabled         = true
      entry_point     = "poll_job"
      description     = "veo-relay: checks a running job at its provider and re-enqueues itself (veo-poll)"
      trigger         = "http"
      public          = false
      service_account = "poll"
      secrets         = ["provider_keys"]
      memory          = "256Mi"
      cpu             = "1"
      timeout         = 60
      concurrency     = 40
      min_instances   = 0
      max_instances   = 10
    }
    finalize-job = {
      enabled         = true
      entry_point     = "finalize_job"
      description     = "veo-relay: streams finished videos into the bucket and verifies them (veo-finalize)"
      trigger         = "http"
      public          = false
      service_account = "finalize"
      secrets         = ["provider_keys"]
      memory          = "1Gi"
      cpu             = "1"
      timeout         = 1800
      concurrency     = 4
      min_instances   = 0
      max_instances   = 5
    }
    deliver-webhook = {
      enabled         = true
      entry_point     = "deliver_webhook"
      description     = "veo-relay: POSTs one signed webhook attempt with fresh signed URLs, and queues the next (veo-webhooks)"
      trigger         = "http"
      public          = false
      service_account = "webhook"
      secrets         = ["webhook"]
      memory          = "256Mi"
      cpu             = "1"
      timeout         = 60
      concurrency     = 25
      min_instances   = 0
      max_instances   = 4
    }
    stream-job = {
      enabled         = true
      entry_point     = "stream_job"
      description     = "veo-relay: holds a provider's Server-Sent-Events stream for a job (veo-stream)"
      trigger         = "http"
      public          = false
      service_account = "stream"
      secrets         = ["provider_keys"]
      memory          = "512Mi"
      cpu             = "1"
      timeout         = 1800
      concurrency     = 20
      min_instances   = 0
      max_instances   = 5
    }
    sweep-jobs = {
      enabled         = true
      entry_point     = "sweep_jobs"
      description     = "veo-relay: finds stuck or overdue jobs and re-enqueues or fails them (Cloud Scheduler)"
      trigger         = "schedule"
      public          = false
      service_account = "sweep"
      secrets         = []
      memory          = "512Mi"
      cpu             = "1"
      timeout         = 300
      concurrency     = 1
      min_instances   = 0
      max_instances   = 1
    }
    on-request-object = {
      enabled         = true
      entry_point     = "on_request_object"
      description     = "veo-relay: starts a job from a requests/*.json object written to the bucket (Eventarc)"
      trigger         = "storage"
      public          = false
      service_account = "events"
      secrets         = []
      memory          = "256Mi"
      cpu             = "1"
      timeout         = 60
      concurrency     = 20
      min_instances   = 0
      max_instances   = 5
    }
  }

  functions = { for name, f in local.function_catalog : name => f if f.enabled }

  # The run.app URL of each function's Cloud Run service, in Cloud Run's deterministic form
  # (https://<service>-<project number>.<region>.run.app), known before the functions exist, so
  # they carry each other's URLs without a cycle. Internal ingress admits Cloud Tasks, Cloud
  # Scheduler and Eventarc only through the default run.app URLs, never the cloudfunctions.net
  # `url`: every task target, the Scheduler job and each OIDC audience use these
  # (docs/DEPLOY.md, "The platform, as it really behaves").
  function_urls = { for name, f in local.functions : name => "https://${name}-${data.google_project.this.number}.${var.region}.run.app" }

  # ---------------------------------------------------------------------------
  # Providers: base URL env var and default, secrets (env var => secret id),
  # extra plain settings.
  # ---------------------------------------------------------------------------
  provider_catalog = {
    litellm-gemini = {
      base_url_env = "VEO_LITELLM_GEMINI_BASE_URL"
      base_url     = "https://api.thucchien.ai"
      secrets      = { VEO_LITELLM_GEMINI_API_KEY = "veo-litellm-gemini-api-key" }
      extra_env    = {}
    }
    newapi = {
      base_url_env = "VEO_NEWAPI_BASE_URL"
      base_url     = "https://computevault.unodetech.xyz"
      secrets      = { VEO_NEWAPI_API_KEY = "veo-newapi-api-key" }
      extra_env    = {}
    }
    genaipro = {
      base_url_env = "VEO_GENAIPRO_BASE_URL"
      base_url     = "https://genaipro.vn"
      secrets      = { VEO_GENAIPRO_API_KEY = "veo-genaipro-api-key" }
      extra_env    = {}
    }
    flow = {
      base_url_env = "VEO_FLOW_BASE_URL"
      base_url     = "https://flow-api.nanoai.pics"
      secrets = {
        VEO_FLOW_API_KEY      = "veo-flow-api-key"
        VEO_FLOW_GOOGLE_TOKEN = "veo-flow-google-token"
      }
      extra_env = {
        VEO_FLOW_GOOGLE_BASE_URL = "https://aisandbox-pa.googleapis.com"
        VEO_FLOW_PROJECT_ID      = var.flow_project_id
      }
    }
    gemini = {
      base_url_env = "VEO_GEMINI_BASE_URL"
      base_url     = "https://generativelanguage.googleapis.com"
      secrets      = { VEO_GEMINI_API_KEY = "veo-gemini-api-key" }
      extra_env    = {}
    }
    # Vertex AI authenticates as the function's service account (no key).
    vertex = {
      base_url_env = "VEO_VERTEX_BASE_URL"
      base_url     = "https://${local.vertex_location}-aiplatform.googleapis.com"
      secrets      = {}
      extra_env = {
        VEO_VERTEX_PROJECT  = local.vertex_project
        VEO_VERTEX_LOCATION = local.vertex_location
        # Vertex writes videos into vertex/ and reads input images from inputs/ by gs://
        # URI, as its service agent (iam.tf: vertex_agent*); the code's default, stated.
        VEO_VERTEX_WRITE_TO_BUCKET = "true"
      }
    }
  }

  # Secrets (env var name => Secret Manager secret id). All are created, so a key
  # can be stored before its provider is enabled; only enabled providers' keys are
  # mounted, and only into the functions whose `secrets` name the group.
  #   webhook_secrets  signing secrets of webhooks: VEO_WEBHOOK_SECRETS is the JSON
  #                    {client id: ["whsec_current", "whsec_previous"]}, VEO_WEBHOOK_SECRET
  #                    the one for clients not listed. Only deliver_webhook signs.
  #   api_key_secrets  VEO_API_KEYS, JSON {client id: [sha256 hex of each key]}: only the
  #                    hashes, checked by the function that authenticates clients (api).
  webhook_secrets = {
    VEO_WEBHOOK_SECRET  = "veo-webhook-secret"
    VEO_WEBHOOK_SECRETS = "veo-webhook-secrets"
  }
  api_key_secrets = { VEO_API_KEYS = "veo-api-keys" }
  all_secrets     = merge(local.webhook_secrets, local.api_key_secrets, [for p in values(local.provider_catalog) : p.secrets]...)
  secret_groups = {
    provider_keys = merge({}, [for p in var.providers_enabled : local.provider_catalog[p].secrets]...)
    webhook       = local.webhook_secrets
    api_keys      = local.api_key_secrets
  }
  # Value of each secret's placeholder version 1 (secrets.tf), which the code reads as
  # "not configured": "UNSET" for plain values, an empty table for the JSON ones (their
  # parsers take "{}"; VEO_WEBHOOK_SECRETS would refuse "UNSET" and stop deliver_webhook).
  secret_placeholders = { for env_name in keys(local.all_secrets) : env_name => contains(["VEO_WEBHOOK_SECRETS", "VEO_API_KEYS"], env_name) ? "{}" : "UNSET" }
  function_secrets = {
    for name, f in local.functions : name => merge({}, [for g in f.secrets : local.secret_groups[g]]...)
  }

  # ---------------------------------------------------------------------------
  # Environment of every function.
  # ---------------------------------------------------------------------------
  # Plain settings every function gets (literal names: tests/infra reads them).
  base_env = {
    GOOGLE_CLOUD_PROJECT      = var.project_id
    VEO_LOCATION              = var.region
    VEO_BUCKET                = local.bucket_name
    VEO_OUTPUT_PREFIX         = var.output_prefix
    VEO_DEFAULT_PROVIDER      = var.default_provider
    VEO_PROVIDERS_ENABLED     = join(",", var.providers_enabled)
    VEO_TASKS_SERVICE_ACCOUNT = local.sa_emails["tasks"]
    VEO_SECRETS_ROLLOUT       = var.secrets_rollout

    # Owner of jobs started from requests/ objects (webhook secrets, GET /jobs/{id}).
    VEO_REQUESTS_CLIENT_ID = var.requests_client_id

    # Other buckets gs:// input images may come from (the data bucket: only uploads/<client id>/).
    VEO_INPUT_BUCKETS = join(",", var.input_buckets)

    # var.tuning: every default is the code's own (tests/infra/test_drift.py checks it).
    VEO_JOB_DEADLINE_SECONDS              = tostring(var.tuning.job_deadline_seconds)
    VEO_DOWNLOAD_ATTEMPTS                 = tostring(var.tuning.download_attempts)
    VEO_UPLOAD_CHUNK_BYTES                = tostring(var.tuning.upload_chunk_bytes)
    VEO_OUTPUT_SHA256                     = tostring(var.tuning.output_sha256)
    VEO_POLL_INITIAL_DELAY_SECONDS        = tostring(var.tuning.poll_initial_delay_seconds)
    VEO_POLL_MIN_DELAY_SECONDS            = tostring(var.tuning.poll_min_delay_seconds)
    VEO_POLL_MAX_DELAY_SECONDS            = tostring(var.tuning.poll_max_delay_seconds)
    VEO_POLL_DELAY_COST_CHECKS            = tostring(var.tuning.poll_delay_cost_checks)
    VEO_POLL_MAX_CHECKS                   = tostring(var.tuning.poll_max_checks)
    VEO_SWEEP_STALL_SECONDS               = tostring(var.tuning.sweep_stall_seconds)
    VEO_WEBHOOK_RETRY_SCHEDULE            = join(",", [for d in var.tuning.webhook_retry_schedule_seconds : tostring(d)])
    VEO_WEBHOOK_TIMEOUT_SECONDS           = tostring(var.tuning.webhook_timeout_seconds)
    VEO_WEBHOOK_PROGRESS_INTERVAL_SECONDS = tostring(var.tuning.webhook_progress_interval_seconds)
    VEO_SIGNED_URL_TTL_SECONDS            = tostring(var.tuning.signed_url_ttl_seconds)
    VEO_LOG_LEVEL                         = var.tuning.log_level
    VEO_FAILOVER_THROTTLED_SECONDS        = tostring(var.tuning.failover_throttled_seconds)
    VEO_FAILOVER_UNAVAILABLE_ATTEMPTS     = tostring(var.tuning.failover_unavailable_attempts)

    # Spend caps per client and failover chains per model family (README "Spend control", "Failover").
    VEO_BUDGETS         = jsonencode(var.budgets)
    VEO_FAILOVER_CHAINS = jsonencode(var.failover_chains)
  }

  # Settings of one function only, by deployed name. deliver_webhook signs the V4 URLs
  # of outputs in its events through IAM signBlob as itself (iam.tf: webhook_sign_blob).
  function_own_env = {
    deliver-webhook = { VEO_SIGNING_SERVICE_ACCOUNT = local.sa_emails["webhook"] }
  }

  function_env = merge(
    local.base_env,
    local.push_env, # completion events: where providers push, what gemini/vertex jobs ask for (push.tf)
    { for name, p in local.provider_catalog : p.base_url_env => lookup(var.provider_base_urls, name, p.base_url) },
    merge({}, [for p in values(local.provider_catalog) : p.extra_env]...),
    # VEO_SUBMIT_JOB_URL, VEO_POLL_JOB_URL, ...: the URL of every internal function, which is
    # where Cloud Tasks sends its tasks and the audience of the OIDC tokens each function
    # checks (the same URL the tasks, the Scheduler job and the trigger were created with).
    { for name, f in local.functions : "VEO_${upper(f.entry_point)}_URL" => local.function_urls[name] if !f.public },
  )

  # ---------------------------------------------------------------------------
  # Cloud Tasks queues. Ids and retry numbers are what the code relies on
  # (functions/veorelay/config.py QueueSettings, dev/stack.py QUEUES).
  # Durations are in seconds (max_retry_duration_s = 0: no time limit, only
  # max_attempts). veo-stream's max_doublings is Cloud Tasks' default, 16.
  # ---------------------------------------------------------------------------
  submit_queue_template = {
    max_attempts              = 20
    min_backoff_s             = 1
    max_backoff_s             = 60
    max_doublings             = 5
    max_retry_duration_s      = 0
    max_dispatches_per_second = var.default_dispatch_rate
    max_concurrent_dispatches = var.provider_max_concurrent_submissions
  }
  fixed_queues = {
    veo-poll = {
      max_attempts              = 50
      min_backoff_s             = 1
      max_backoff_s             = 30
      max_doublings             = 4
      max_retry_duration_s      = 0
      max_dispatches_per_second = 100
      max_concurrent_dispatches = 200
    }
    veo-finalize = {
      max_attempts              = 10
      min_backoff_s             = 2
      max_backoff_s             = 60
      max_doublings             = 4
      max_retry_duration_s      = 0
      max_dispatches_per_second = 20
      max_concurrent_dispatches = 20
    }
    # Cloud Tasks retries after 5, 10, ... 1280 s (8 doublings), then 2560, 3840 s:
    # about 2.5 h over 12 attempts. Longer schedules are the code's (re-enqueue).
    veo-webhooks = {
      max_attempts              = 12
      min_backoff_s             = 5
      max_backoff_s             = 86400
      max_doublings             = 8
      max_retry_duration_s      = 0
      max_dispatches_per_second = 50
      max_concurrent_dispatches = 50
    }
    veo-stream = {
      max_attempts              = 5
      min_backoff_s             = 5
      max_backoff_s             = 60
      max_doublings             = 16
      max_retry_duration_s      = 0
      max_dispatches_per_second = 10
      max_concurrent_dispatches = 50
    }
  }
  submit_queues = {
    for p in var.providers_enabled : "veo-submit-${p}" => merge(local.submit_queue_template, {
      max_dispatches_per_second = lookup(var.provider_dispatch_rates, p, var.default_dispatch_rate)
    })
  }
  queues = merge(local.fixed_queues, local.submit_queues)

  # ---------------------------------------------------------------------------
  # Service accounts, one per role. `enqueue` lists the queues the role may add
  # tasks to ("veo-submit-*" = every submit queue): exactly the queues its code
  # enqueues to, including through lifecycle.move (a job.* webhook event on
  # veo-webhooks). Project-level roles are only those that cannot be scoped to a
  # resource (Firestore has no per-collection IAM).
  # ---------------------------------------------------------------------------
  service_accounts = {
    # create_job -> submit queue; cancel and webhooks:redeliver -> veo-webhooks; a cancel
    # of a downloading job -> its discard task on veo-finalize (chain.discard_task).
    api = {
      account_id   = "veo-api"
      display_name = "veo-relay api (public HTTP function)"
      runtime      = true
      enqueue      = ["veo-submit-*", "veo-finalize", "veo-webhooks"]
    }
    # A throttled submission (429 / Retry-After) re-enqueues itself on its submit
    # queue; a streaming provider's job goes to veo-stream; then the first poll.
    submit = {
      account_id   = "veo-submit"
      display_name = "veo-relay submit_job"
      runtime      = true
      enqueue      = ["veo-submit-*", "veo-poll", "veo-stream", "veo-webhooks"]
    }
    poll = {
      account_id   = "veo-poll"
      display_name = "veo-relay poll_job"
      runtime      = true
      enqueue      = ["veo-poll", "veo-finalize", "veo-webhooks"]
    }
    # A download that fails the job queues its discard task on its own queue.
    finalize = {
      account_id   = "veo-finalize"
      display_name = "veo-relay finalize_job (the only writer of outputs)"
      runtime      = true
      enqueue      = ["veo-finalize", "veo-webhooks"]
    }
    # Each failed attempt queues the next one itself (notify.py: the retry schedule is
    # the code's, not the queue's).
    webhook = {
      account_id   = "veo-webhook"
      display_name = "veo-relay deliver_webhook (signs output URLs as itself)"
      runtime      = true
      enqueue      = ["veo-webhooks"]
    }
    # A broken or too-long stream hands the job to polling (veo-poll); the complete
    # event to finalize; progress and job.* events to veo-webhooks.
    stream = {
      account_id   = "veo-stream"
      display_name = "veo-relay stream_job"
      runtime      = true
      enqueue      = ["veo-poll", "veo-finalize", "veo-webhooks"]
    }
    # sweep.restart_task re-drives accepted jobs on their submit queue (a streaming
    # provider's submit step then hands it to veo-stream), running ones on veo-poll,
    # downloading ones on veo-finalize, as it does the discard tasks of jobs that ended
    # while downloading (chain.discard_task); deadline failures send job.failed. It never
    # enqueues to veo-stream itself, so it gets no right there.
    sweep = {
      account_id   = "veo-sweep"
      display_name = "veo-relay sweep_jobs"
      runtime      = true
      enqueue      = ["veo-submit-*", "veo-poll", "veo-finalize", "veo-webhooks"]
    }
    # A request object goes through create_job like POST /jobs: only its submission.
    events = {
      account_id   = "veo-events"
      display_name = "veo-relay on_request_object"
      runtime      = true
      enqueue      = ["veo-submit-*"]
    }
    # Identity of every Cloud Tasks OIDC token, of the Scheduler job and of the
    # Eventarc trigger: the only principal allowed to invoke internal functions.
    tasks = {
      account_id   = "veo-tasks"
      display_name = "veo-relay invoker (Cloud Tasks, Scheduler, Eventarc)"
      runtime      = false
      enqueue      = []
    }
    # Builds the function images (Cloud Build run by Cloud Functions).
    build = {
      account_id   = "veo-build"
      display_name = "veo-relay function image builds"
      runtime      = false
      enqueue      = []
    }
  }

  sa_emails = { for key, sa in local.service_accounts : key => "${sa.account_id}@${var.project_id}.iam.gserviceaccount.com" }

  # Runtime identities in use by an enabled function, plus the non-runtime ones.
  active_service_accounts = {
    for key, sa in local.service_accounts : key => sa
    if !sa.runtime || contains([for f in values(local.functions) : f.service_account], key)
  }

  # Functions that call providers (Vertex AI uses their own identity).
  provider_callers = toset([for f in values(local.functions) : f.service_account if contains(f.secrets, "provider_keys")])

  # ---------------------------------------------------------------------------
  # Bucket grants, each limited to one prefix by an IAM condition. Together
  # they are the whole write access to the bucket: api and events create inputs/,
  # events writes the .result.json beside each request under requests/, finalize
  # owns the output prefix (and reads, then removes, what Vertex wrote under vertex/),
  # Vertex AI writes vertex/ (iam.tf).
  # Conditions match object names, so no grant allows listing (a bucket-level call).
  # ---------------------------------------------------------------------------
  bucket_grants = {
    api-inputs-create = {
      service_account = "api"
      role            = "roles/storage.objectCreator"
      prefix          = "inputs/"
    }
    submit-inputs-read = {
      service_account = "submit"
      role            = "roles/storage.objectViewer"
      prefix          = "inputs/"
    }
    # A streaming provider gets the job's input images from the stream step.
    stream-inputs-read = {
      service_account = "stream"
      role            = "roles/storage.objectViewer"
      prefix          = "inputs/"
    }
    finalize-outputs = {
      service_account = "finalize"
      role            = "roles/storage.objectUser"
      prefix          = "${var.output_prefix}/"
    }
    # Reads what Vertex wrote under vertex/<job id>/ and, once the copy is in the output
    # prefix, removes it (storage.objects.delete; objectUser is the narrowest predefined role
    # with it). The vertex/ lifecycle rule (storage.tf) stays as the net.
    finalize-vertex = {
      service_account = "finalize"
      role            = "roles/storage.objectUser"
      prefix          = "vertex/"
    }
    # Reads requests/<name>.json and writes (or replaces) requests/<name>.result.json.
    events-requests = {
      service_account = "events"
      role            = "roles/storage.objectUser"
      prefix          = "requests/"
    }
    # A request object with images is ingested like POST /jobs (create-only).
    events-inputs-create = {
      service_account = "events"
      role            = "roles/storage.objectCreator"
      prefix          = "inputs/"
    }
    # gs:// images a client put in its own folder, uploads/<client id>/; the code reads a
    # client's jobs' images only from its own folder (core/images.py gcs_source_problem).
    api-uploads-read = {
      service_account = "api"
      role            = "roles/storage.objectViewer"
      prefix          = "uploads/"
    }
    events-uploads-read = {
      service_account = "events"
      role            = "roles/storage.objectViewer"
      prefix          = "uploads/"
    }
    # GET /v1/videos/{id}/content streams a job's video or poster to its client, and DELETE
    # /v1/videos/{id} removes them (steps/delete.py, by name): objectUser is the narrowest
    # predefined role with storage.objects.delete.
    api-outputs = {
      service_account = "api"
      role            = "roles/storage.objectUser"
      prefix          = "${var.output_prefix}/"
    }
    # A V4 signed URL is only as good as its signer's own read access.
    webhook-outputs-read = {
      service_account = "webhook"
      role            = "roles/storage.objectViewer"
      prefix          = "${var.output_prefix}/"
    }
  }
}
