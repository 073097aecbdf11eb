"""The platform as it really behaves on a first deploy (docs/DEPLOY.md, "The platform, as it really
behaves"), checked on the Terraform source: Eventarc's service agent exists and holds its role
before a storage trigger is created, the Vertex project is used everywhere Vertex is, finalize may
remove what Vertex wrote, and the deployer (Cloud Build) holds the roles these resources need."""

from __future__ import annotations

import importlib
import re

from infra_helpers import INFRA, Terraform


def test_eventarc_agent_is_created_granted_and_waited_for_before_any_trigger(tf: Terraform):
    identity = tf.resource("google_project_service_identity", "eventarc")
    assert identity["provider"] == "${google-beta}" or identity["provider"] == "google-beta", identity["provider"]
    assert identity["service"] == "eventarc.googleapis.com"
    assert identity["project"] == "${var.project_id}"
    assert identity["count"] == "${local.has_storage ? 1 : 0}"
    grant = tf.resources_of("google_project_iam_member")["eventarc_agent"]
    assert grant["role"] == "roles/eventarc.serviceAgent"
    assert grant["member"] == "serviceAccount:${google_project_service_identity.eventarc[0].email}"
    wait = tf.resource("time_sleep", "eventarc_agent")
    assert set(wait["depends_on"]) >= {"${google_project_iam_member.eventarc_agent}", "${google_project_iam_member.gcs_pubsub_publisher}"}
    seconds = int(re.fullmatch(r"(\d+)s", wait["create_duration"]).group(1))
    assert seconds >= 30, "IAM grants take up to a minute to be honoured"
    # The trigger is created with its function (event_trigger): the function waits for the grant.
    fn = tf.resource("google_cloudfunctions2_function", "fn")
    assert "${time_sleep.eventarc_agent}" in fn["depends_on"]
    assert "${google_project_iam_member.gcs_pubsub_publisher}" in fn["depends_on"]
    # The Cloud Storage service agent publishes the bucket's events to Eventarc's topic.
    publisher = tf.resources_of("google_project_iam_member")["gcs_pubsub_publisher"]
    assert publisher["role"] == "roles/pubsub.publisher"
    assert publisher["member"] == "serviceAccount:${data.google_storage_project_service_account.gcs[0].email_address}"


def test_the_vertex_project_is_used_wherever_vertex_is(tf: Terraform):
    assert tf.locals["vertex_project"] == '${var.vertex_project != "" ? var.vertex_project : var.project_id}'
    assert tf.variables["vertex_project"]["default"] == ""
    vertex = tf.locals["provider_catalog"]["vertex"]
    assert vertex["extra_env"]["VEO_VERTEX_PROJECT"] == "${local.vertex_project}"  # the project in the API path
    config = importlib.import_module("veorelay.config")
    assert "PROJECT" in config.PROVIDER_EXTRAS["vertex"], "the vertex provider no longer reads VEO_VERTEX_PROJECT"
    # The functions' identities may call Vertex AI in that project...
    user = tf.resources_of("google_project_iam_member")["vertex_user"]
    assert (user["project"], user["role"]) == ("${local.vertex_project}", "roles/aiplatform.user")
    assert user["for_each"] == "${local.vertex_enabled ? local.provider_callers : toset([])}"
    assert "aiplatform.user" not in repr(tf.locals["project_grants"]), "aiplatform.user must be granted in the Vertex project"
    # ... whose API is on ...
    api = tf.resources_of("google_project_service")["vertex"]
    assert api["project"] == "${local.vertex_project}" and api["service"] == "aiplatform.googleapis.com"
    assert api["disable_on_destroy"] is False
    # ... and whose service agent (the one that writes storageUri outputs) is granted on the bucket.
    agent = tf.resource("google_project_service_identity", "vertex")
    assert agent["project"] == "${local.vertex_project}" and agent["service"] == "aiplatform.googleapis.com"
    for name, prefix, role in (("vertex_agent", "vertex/", "roles/storage.objectCreator"),
                               ("vertex_agent_inputs", "inputs/", "roles/storage.objectViewer")):
        grant = tf.resource("google_storage_bucket_iam_member", name)
        assert grant["member"] == "serviceAccount:${google_project_service_identity.vertex[0].email}"
        assert grant["role"] == role and f"/objects/{prefix}" in grant["condition"][0]["expression"]
    # No other reference to the main project where Vertex's is meant.
    text = tf.files["iam.tf"]
    for block in re.findall(r'resource "google_project_service_identity" "vertex" \{.*?\n\}', text, re.S):
        assert "var.project_id" not in block


def test_finalize_may_remove_what_vertex_wrote_and_the_lifecycle_rule_stays(tf: Terraform):
    grant = tf.locals["bucket_grants"]["finalize-vertex"]
    # objectUser: the narrowest predefined role with storage.objects.delete, bound to vertex/ only.
    assert grant == {"service_account": "finalize", "role": "roles/storage.objectUser", "prefix": "vertex/"}
    bucket = tf.resource("google_storage_bucket", "data")
    prefixes = [rule["condition"][0].get("matches_prefix") for rule in bucket["lifecycle_rule"]]
    assert ["vertex/"] in prefixes, "the vertex/ lifecycle rule is the net under finalize's removal"


# ------------------------------------------------------------------------------ the deployer
# The roles of the identity Cloud Build deploys as (veo-deployer, infra/cicd.tf's trigger and
# infra/deploy.sh), by what needs them: each resource type infra/ creates needs one of them, and
# no role is granted that nothing needs.
ROLE_FOR_TYPE = {
    "google_artifact_registry_repository": "roles/artifactregistry.admin",
    "google_artifact_registry_repository_iam_member": "roles/artifactregistry.admin",
    "google_cloud_run_v2_service_iam_member": "roles/run.admin",
    "google_cloud_scheduler_job": "roles/cloudscheduler.admin",
    "google_cloud_tasks_queue": "roles/cloudtasks.admin",
    "google_cloud_tasks_queue_iam_member": "roles/cloudtasks.admin",
    "google_cloudbuild_trigger": "roles/cloudbuild.builds.editor",
    "google_cloudfunctions2_function": "roles/cloudfunctions.admin",
    "google_firestore_database": "roles/datastore.owner",
    "google_firestore_index": "roles/datastore.owner",
    "google_firestore_field": "roles/datastore.owner",
    "google_project_iam_member": "roles/resourcemanager.projectIamAdmin",
    "google_project_service": "roles/serviceusage.serviceUsageAdmin",
    "google_project_service_identity": "roles/serviceusage.serviceUsageAdmin",
    "google_secret_manager_secret": "roles/secretmanager.admin",
    "google_secret_manager_secret_iam_member": "roles/secretmanager.admin",
    "google_secret_manager_secret_version": "roles/secretmanager.admin",
    "google_service_account": "roles/iam.serviceAccountAdmin",
    "google_service_account_iam_member": "roles/iam.serviceAccountAdmin",
    "google_storage_bucket": "roles/storage.admin",
    "google_storage_bucket_iam_member": "roles/storage.admin",
    "google_storage_bucket_object": "roles/storage.admin",
    "google_pubsub_topic": "roles/pubsub.admin",
    "google_pubsub_topic_iam_member": "roles/pubsub.admin",
    "google_pubsub_subscription": "roles/pubsub.admin",
    "google_pubsub_subscription_iam_member": "roles/pubsub.admin",
    "google_monitoring_dashboard": "roles/monitoring.editor",
    "google_monitoring_alert_policy": "roles/monitoring.editor",
    "google_monitoring_notification_channel": "roles/monitoring.editor",
    "google_logging_metric": "roles/logging.configWriter",
    "google_eventarc_trigger": "roles/eventarc.admin",
    "time_sleep": None,  # local to Terraform
}
# Roles needed by no single resource type, and why.
ROLES_FOR_OTHER_REASONS = {
    "roles/iam.serviceAccountUser": "deploying a function (and its build, its trigger, a Scheduler job) that runs as a "
                                    "service account is acting as that account (iam.serviceAccounts.actAs)",
    "roles/logging.logWriter": "the Cloud Build run itself writes its logs as the deployer",
    "roles/eventarc.admin": "a function's event_trigger is an Eventarc trigger created on the deployer's behalf",
}


def deployer_roles() -> list[str]:
    script = (INFRA / "deploy.sh").read_text(encoding="utf-8")
    m = re.search(r"^deployer_roles=\(\n(.*?)^\)", script, re.S | re.M)
    assert m, "infra/deploy.sh has no deployer_roles=( ... ) list"
    return [line.strip() for line in m.group(1).splitlines() if line.strip() and not line.strip().startswith("#")]


def deployer_problems(resource_types: set[str], roles: list[str]) -> list[str]:
    problems = [f"no deployer role is known for {t}: add it to ROLE_FOR_TYPE" for t in sorted(resource_types - set(ROLE_FOR_TYPE))]
    needed = {ROLE_FOR_TYPE[t] for t in resource_types if ROLE_FOR_TYPE.get(t)}
    problems += [f"the deployer lacks {r}, which infra/ needs ({', '.join(sorted(t for t in resource_types if ROLE_FOR_TYPE.get(t) == r))})"
                 for r in sorted(needed - set(roles))]
    problems += [f"the deployer holds {r}, which nothing in infra/ needs" for r in sorted(set(roles) - needed - set(ROLES_FOR_OTHER_REASONS))]
    problems += [f"{r} is granted twice" for r in sorted({r for r in roles if roles.count(r) > 1})]
    basic = {"roles/owner", "roles/editor"} & set(roles)
    problems += [f"the deployer holds the basic role {r}" for r in sorted(basic)]
    return problems


def test_deployer_role_check_catches_missing_and_extra_roles():
    assert deployer_problems({"google_pubsub_topic", "time_sleep"}, ["roles/pubsub.admin"]) == []
    assert any("lacks roles/pubsub.admin" in p for p in deployer_problems({"google_pubsub_topic"}, []))
    assert any("holds roles/storage.admin" in p for p in deployer_problems(set(), ["roles/storage.admin"]))
    assert any("no deployer role is known for google_new_thing" in p for p in deployer_problems({"google_new_thing"}, []))
    assert any("basic role roles/editor" in p for p in deployer_problems(set(), ["roles/editor"]))


def test_the_deployer_holds_what_a_deploy_needs_and_nothing_more(tf: Terraform):
    types = {rtype for rtype, _ in tf.resources}
    problems = deployer_problems(types, deployer_roles())
    assert not problems, "\n".join(problems)
    # The push trigger deploys as that same account.
    trigger = tf.resource("google_cloudbuild_trigger", "deploy")
    assert trigger["service_account"] == "projects/${var.project_id}/serviceAccounts/${local.deployer_email}"
    assert 'deployer="veo-deployer@${project}.iam.gserviceaccount.com"' in (INFRA / "deploy.sh").read_text(encoding="utf-8")
