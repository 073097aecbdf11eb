output "api_url" {
  description = "Base URL of the public API (POST /jobs, GET /jobs/{id}, ...)."
  value       = google_cloudfunctions2_function.fn["api"].url
}

output "bucket" {
  description = "Bucket holding inputs/, the output prefix, requests/ and vertex/."
  value       = google_storage_bucket.data.name
}

output "output_prefix" {
  description = "Prefix of finished videos in the bucket."
  value       = var.output_prefix
}

output "function_urls" {
  description = "run.app URL of every deployed function (the internal ones answer only the tasks identity, through internal ingress)."
  value       = { for name, f in google_cloudfunctions2_function.fn : name => f.service_config[0].uri }
}

output "queues" {
  description = "Cloud Tasks queue ids."
  value       = sort(keys(google_cloud_tasks_queue.queue))
}

output "service_accounts" {
  description = "Service account email of each role."
  value       = { for key, sa in google_service_account.sa : key => sa.email }
}

output "tasks_service_account" {
  description = "Identity of the OIDC tokens on Cloud Tasks, Scheduler and Eventarc requests."
  value       = google_service_account.sa["tasks"].email
}

output "secrets" {
  description = "Secret Manager secret ids, by the environment variable they are mounted as."
  value       = { for env_name, s in google_secret_manager_secret.secret : env_name => s.secret_id }
}
