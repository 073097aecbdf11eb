# Secret Manager: one secret per provider credential, the webhook signing secrets
# (the default one and the per-client table) and the API key hashes. Terraform owns the secrets and their access; the values are
# set by operators (`gcloud secrets versions add`, see docs/DEPLOY.md) and never
# pass through Terraform or its state.
resource "google_secret_manager_secret" "secret" {
  for_each = local.all_secrets

  project   = var.project_id
  secret_id = each.value

  replication {
    auto {}
  }

  depends_on = [time_sleep.apis]
}

# Version 1 is a placeholder that the code reads as "not configured" ("UNSET", or
# "{}" for the JSON tables VEO_WEBHOOK_SECRETS and VEO_API_KEYS: local.secret_placeholders)
# so that functions mounting `latest` can deploy before an operator stores the real
# value. Operators add versions; Terraform never touches them. Do not destroy
# version 1: disable it if you must (ignored below).
resource "google_secret_manager_secret_version" "placeholder" {
  for_each = local.all_secrets

  secret      = google_secret_manager_secret.secret[each.key].id
  secret_data = local.secret_placeholders[each.key]

  deletion_policy = "ABANDON"

  lifecycle {
    ignore_changes = [enabled, secret_data]
  }
}
