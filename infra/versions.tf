# Terraform and provider versions. The state lives in a GCS bucket created by
# infra/deploy.sh (the only thing that exists before Terraform runs); its name and
# prefix are passed at `terraform init -backend-config=...` time (see cloudbuild.yaml).
terraform {
  required_version = ">= 1.11.0, < 2.0.0"

  backend "gcs" {}

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.30"
    }
    google-beta = {
      source  = "hashicorp/google-beta"
      version = "~> 6.30"
    }
    archive = {
      source  = "hashicorp/archive"
      version = "~> 2.7"
    }
    time = {
      source  = "hashicorp/time"
      version = "~> 0.13"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region

  default_labels = local.labels
}

provider "google-beta" {
  project = var.project_id
  region  = var.region

  default_labels = local.labels
}
