# The data bucket:
#   <output_prefix>/<job id>/<n>.mp4, job.json  finished videos (written only by finalize)
#   inputs/<job id>/...                          input images (api), 7 days
#   uploads/<client id>/...                      images clients upload to name as gs://, 7 days
#   requests/...                                 event-started jobs, 30 days
#   vertex/...                                   Vertex AI output (service agent), 7 days
resource "google_storage_bucket" "data" {
  #checkov:skip=CKV_GCP_62:Access logs would duplicate Cloud Audit Logs; every object is reached through a signed URL minted by finalize or by the functions' own identities, which the job records in Firestore already trace.
  #checkov:skip=CKV_GCP_78:Versioning is off by design (the issue asks for it): outputs are create-only (ifGenerationMatch=0), inputs/ and vertex/ are disposable, and soft delete covers accidental deletes.
  name     = local.bucket_name
  project  = var.project_id
  location = var.region

  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  versioning {
    enabled = false
  }

  soft_delete_policy {
    retention_duration_seconds = var.soft_delete_retention_days * 86400
  }

  lifecycle_rule {
    condition {
      age            = var.input_retention_days
      matches_prefix = ["inputs/", "uploads/"]
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      age            = var.request_retention_days
      matches_prefix = ["requests/"]
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      age            = var.vertex_staging_retention_days
      matches_prefix = ["vertex/"]
    }
    action {
      type = "Delete"
    }
  }

  # Resumable uploads (finalize streams with them) that never completed.
  lifecycle_rule {
    condition {
      age = 1
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }

  dynamic "lifecycle_rule" {
    for_each = var.output_retention_days > 0 ? [var.output_retention_days] : []
    content {
      condition {
        age            = lifecycle_rule.value
        matches_prefix = ["${var.output_prefix}/"]
      }
      action {
        type = "Delete"
      }
    }
  }

  depends_on = [time_sleep.apis]
}

# Function source archives (Terraform uploads, Cloud Functions builds from them).
resource "google_storage_bucket" "source" {
  #checkov:skip=CKV_GCP_62:Holds only zips of this repository's functions/ directory, written by the deployer; Cloud Audit Logs record admin access.
  name     = local.source_bucket_name
  project  = var.project_id
  location = var.region

  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true

  versioning {
    enabled = true
  }

  # Archives are named by content hash; keep replaced ones a while for rollback.
  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 30
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [time_sleep.apis]
}

data "archive_file" "functions" {
  type             = "zip"
  source_dir       = "${path.module}/../functions"
  output_path      = "${path.module}/.terraform/functions.zip"
  output_file_mode = "0644"
  excludes = [
    "**/__pycache__/**",
    "**/*.pyc",
    "**/.pytest_cache/**",
  ]
}

resource "google_storage_bucket_object" "functions_source" {
  name         = "functions/${data.archive_file.functions.output_sha256}.zip"
  bucket       = google_storage_bucket.source.name
  source       = data.archive_file.functions.output_path
  content_type = "application/zip"
}
