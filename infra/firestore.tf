# Firestore (native mode): collections jobs, poll_stats (learned generation times) and
# generation_claims (a generation found again by search belongs to one job: gcp/store.py).
resource "google_firestore_database" "main" {
  project     = var.project_id
  name        = "(default)"
  location_id = local.firestore_location
  type        = "FIRESTORE_NATIVE"

  concurrency_mode                  = "PESSIMISTIC"
  app_engine_integration_mode       = "DISABLED"
  point_in_time_recovery_enablement = "POINT_IN_TIME_RECOVERY_ENABLED"
  delete_protection_state           = "DELETE_PROTECTION_ENABLED"
  deletion_policy                   = "ABANDON"

  depends_on = [time_sleep.apis]
}

# Composite indexes, one per query the code runs:
#   sweep:     where status == S and deadline_at < T  order by deadline_at
#   stale:     where status == S and updated_at < T   order by updated_at
#   listing:   where client_id == C [and status == S] [and provider == P] [and created_at > A and < B]
#              order by created_at desc|asc, __name__ (gcp/store.py list_jobs; GET /jobs, /v1/videos):
#              one index per set of equality filters and direction (__name__ follows the last field)
#   recovery:  where generation_key == K and stream_submitted_at >= T order by stream_submitted_at
# (the sweep's `discard_due_at`, `settle_due_at` and `notify_due_at < T order by` the same field use
# single-field indexes.)
locals {
  firestore_indexes = {
    jobs-status-deadline = {
      collection = "jobs"
      fields     = [["status", "ASCENDING"], ["deadline_at", "ASCENDING"]]
    }
    jobs-status-updated = {
      collection = "jobs"
      fields     = [["status", "ASCENDING"], ["updated_at", "ASCENDING"]]
    }
    jobs-client-created = {
      collection = "jobs"
      fields     = [["client_id", "ASCENDING"], ["created_at", "DESCENDING"]]
    }
    jobs-client-created-asc = {
      collection = "jobs"
      fields     = [["client_id", "ASCENDING"], ["created_at", "ASCENDING"]]
    }
    jobs-client-status-created = {
      collection = "jobs"
      fields     = [["client_id", "ASCENDING"], ["status", "ASCENDING"], ["created_at", "DESCENDING"]]
    }
    jobs-client-status-created-asc = {
      collection = "jobs"
      fields     = [["client_id", "ASCENDING"], ["status", "ASCENDING"], ["created_at", "ASCENDING"]]
    }
    jobs-client-provider-created = {
      collection = "jobs"
      fields     = [["client_id", "ASCENDING"], ["provider", "ASCENDING"], ["created_at", "DESCENDING"]]
    }
    jobs-client-provider-created-asc = {
      collection = "jobs"
      fields     = [["client_id", "ASCENDING"], ["provider", "ASCENDING"], ["created_at", "ASCENDING"]]
    }
    jobs-client-status-provider-created = {
      collection = "jobs"
      fields     = [["client_id", "ASCENDING"], ["status", "ASCENDING"], ["provider", "ASCENDING"], ["created_at", "DESCENDING"]]
    }
    jobs-client-status-provider-created-asc = {
      collection = "jobs"
      fields     = [["client_id", "ASCENDING"], ["status", "ASCENDING"], ["provider", "ASCENDING"], ["created_at", "ASCENDING"]]
    }
    jobs-generation-posted = {
      collection = "jobs"
      fields     = [["generation_key", "ASCENDING"], ["stream_submitted_at", "ASCENDING"]]
    }
  }

  # TTL: Firestore deletes a document (within ~24 h) once expire_at has passed.
  # The single-field index on a TTL timestamp only causes write hotspots: off.
  firestore_ttl_fields = {
    jobs-expire-at = { collection = "jobs", field = "expire_at" }
    # Learned generation times (poll_stats.py), one document per provider+model+week+shard:
    # only the last two weeks are read, each carries expire_at = written + 21 days.
    poll-stats-expire-at = { collection = "poll_stats", field = "expire_at" }
    # A claim lives as long as the job it names (30 days).
    generation-claims-expire-at = { collection = "generation_claims", field = "expire_at" }
  }
}

resource "google_firestore_index" "index" {
  for_each = local.firestore_indexes

  project     = var.project_id
  database    = google_firestore_database.main.name
  collection  = each.value.collection
  query_scope = "COLLECTION"

  dynamic "fields" {
    for_each = each.value.fields
    content {
      field_path = fields.value[0]
      order      = fields.value[1]
    }
  }
}

resource "google_firestore_field" "ttl" {
  for_each = local.firestore_ttl_fields

  project    = var.project_id
  database   = google_firestore_database.main.name
  collection = each.value.collection
  field      = each.value.field

  ttl_config {}

  index_config {}
}

# poll_stats documents hold a map of about 200 histogram bins that is never queried: indexing
# each bin would cost index writes on every increment for nothing.
resource "google_firestore_field" "poll_stats_bins_unindexed" {
  project    = var.project_id
  database   = google_firestore_database.main.name
  collection = "poll_stats"
  field      = "bins"

  index_config {}
}
