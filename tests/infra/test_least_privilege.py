"""Least privilege and sizing rules of infra/, checked on the Terraform source."""

from __future__ import annotations

import re

from infra_helpers import Terraform

# Project-level roles allowed at all, and why (everything else is bound to a resource).
PROJECT_ROLES = {
    "roles/datastore.user": "Firestore has no per-collection IAM",
    "roles/aiplatform.user": "Vertex AI predictions run as the calling function",
    "roles/logging.logWriter": "function image builds write logs",
    "roles/eventarc.eventReceiver": "Eventarc delivers storage events as the invoker identity",
    "roles/storage.objectViewer": "build identity, limited by condition to the gcf-v2-sources bucket",
    "roles/pubsub.publisher": "the GCS service agent publishes storage events for Eventarc",
}
WRITE_ROLES = {"roles/storage.objectCreator", "roles/storage.objectUser", "roles/storage.objectAdmin", "roles/storage.admin"}
TASKS_DISPATCH_DEADLINE_MAX = 1800  # Cloud Tasks waits at most 30 min for an HTTP target


def catalog(tf: Terraform) -> dict[str, dict]:
    return tf.locals["function_catalog"]


def test_no_basic_roles(tf: Terraform):
    for role in ("roles/owner", "roles/editor", "roles/viewer"):
        assert role not in tf.text, f"infra/ grants the basic role {role}"


def test_project_level_roles_are_the_allowed_few(tf: Terraform):
    project_iam = tf.resources_of("google_project_iam_member")
    literal_project_roles = {body["role"] for body in project_iam.values() if not body["role"].startswith("${")}
    dynamic_project_roles = set(re.findall(r'role = "(roles/[A-Za-z.]+)"', repr(tf.locals["project_grants"])))
    assert "roles/datastore.user" in dynamic_project_roles, "could not read local.project_grants"
    unexpected = (literal_project_roles | dynamic_project_roles) - set(PROJECT_ROLES)
    assert not unexpected, f"unexpected project-level roles: {sorted(unexpected)}"
    gcf = project_iam["build_gcf_sources_reader"]
    assert "gcf-v2-sources-" in gcf["condition"][0]["expression"], "the build's storage read must stay conditioned"


def test_public_function_is_only_the_api_and_holds_no_secrets(tf: Terraform):
    public = {name for name, f in catalog(tf).items() if f["public"]}
    assert public == {"api"}, f"only the api may be public, not {sorted(public - {'api'})}"
    assert catalog(tf)["api"]["secrets"] == [], "the public api must not mount any secret"
    invoker = tf.resource("google_cloud_run_v2_service_iam_member", "invoker")
    assert invoker["role"] == "roles/run.invoker"
    assert invoker["member"] == '${each.value.public ? "allUsers" : "serviceAccount:${google_service_account.sa["tasks"].email}"}'
    ingress = tf.resource("google_cloudfunctions2_function", "fn")["service_config"][0]["ingress_settings"]
    assert ingress == '${each.value.public ? "ALLOW_ALL" : var.internal_ingress}'
    assert tf.variables["internal_ingress"]["default"] == "ALLOW_INTERNAL_ONLY"


def test_secrets_go_only_where_they_are_used(tf: Terraform):
    groups = {"provider_keys", "webhook"}
    for name, f in catalog(tf).items():
        assert set(f["secrets"]) <= groups, f"{name}: unknown secret group {f['secrets']}"
        if "webhook" in f["secrets"]:
            assert f["entry_point"] == "deliver_webhook", f"only deliver_webhook may read the webhook secret, not {name}"
    holders = {f["entry_point"] for f in catalog(tf).values() if "provider_keys" in f["secrets"]}
    assert holders == {"submit_job", "poll_job", "finalize_job", "stream_job"}, f"provider keys mounted into {sorted(holders)}"
    # Each identity runs one function kind, so a secret grant to an identity is a grant to that function only.
    sas = [f["service_account"] for f in catalog(tf).values()]
    assert len(sas) == len(set(sas)), "two functions share a service account: secrets/roles of one would leak to the other"
    grant = tf.resource("google_secret_manager_secret_iam_member", "accessor")
    assert grant["role"] == "roles/secretmanager.secretAccessor"
    assert "local.function_secrets[name]" in tf.locals["secret_grants"], "secret access must derive from mounted secrets"
    # The secret values never pass through Terraform (only the UNSET placeholder does).
    placeholder = tf.resource("google_secret_manager_secret_version", "placeholder")
    assert placeholder["secret_data"] == "UNSET"


def test_bucket_writes_are_prefix_bound(tf: Terraform):
    grants = tf.locals["bucket_grants"]
    for key, g in grants.items():
        assert g["prefix"].endswith("/"), f"{key}: prefix {g['prefix']!r} must end with '/'"
    writers = {(g["service_account"], g["prefix"]) for g in grants.values() if g["role"] in WRITE_ROLES}
    assert writers == {
        ("api", "inputs/"),
        ("finalize", "${var.output_prefix}/"),
        ("finalize", "tmp/"),
    }, f"bucket writers: {sorted(writers)}"
    prefix_res = tf.resource("google_storage_bucket_iam_member", "prefix")
    assert "resource.name.startsWith" in prefix_res["condition"][0]["expression"]
    assert "${each.value.prefix}" in prefix_res["condition"][0]["expression"]
    vertex = tf.resource("google_storage_bucket_iam_member", "vertex_agent")
    assert vertex["role"] == "roles/storage.objectCreator"
    assert "/objects/vertex/" in vertex["condition"][0]["expression"]
    # No unconditioned grant on the data bucket.
    for name, body in tf.resources_of("google_storage_bucket_iam_member").items():
        if "google_storage_bucket.data" in body["bucket"]:
            assert body.get("condition"), f"google_storage_bucket_iam_member.{name} on the data bucket has no prefix condition"
    bucket = tf.resource("google_storage_bucket", "data")
    assert bucket["uniform_bucket_level_access"] is True
    assert bucket["public_access_prevention"] == "enforced"
    assert bucket["versioning"][0]["enabled"] is False


def test_only_the_tasks_identity_invokes_internal_functions(tf: Terraform):
    sas = tf.locals["service_accounts"]
    assert sas["tasks"]["runtime"] is False and sas["tasks"]["enqueue"] == []
    assert all(f["service_account"] != "tasks" for f in catalog(tf).values()), "no function may run as the invoker identity"
    for name, f in catalog(tf).items():
        assert f["service_account"] in sas, f"{name}: unknown service account {f['service_account']}"
    sched = tf.resource("google_cloud_scheduler_job", "schedule")
    oidc = sched["http_target"][0]["oidc_token"][0]
    assert oidc["service_account_email"] == '${google_service_account.sa["tasks"].email}'
    fn = tf.resource("google_cloudfunctions2_function", "fn")
    trigger = fn["dynamic"][-1]["event_trigger"]["content"][0]
    assert trigger["service_account_email"] == '${google_service_account.sa["tasks"].email}'
    assert tf.locals["base_env"]["VEO_TASKS_SERVICE_ACCOUNT"] == '${local.sa_emails["tasks"]}'


def test_enqueue_rights_name_real_queues(tf: Terraform):
    queues = set(tf.locals["fixed_queues"]) | {"veo-submit-*"}
    for key, sa in tf.locals["service_accounts"].items():
        unknown = set(sa["enqueue"]) - queues
        assert not unknown, f"{key} may enqueue to unknown queues {sorted(unknown)}"
    assert tf.locals["service_accounts"]["webhook"]["enqueue"] == []
    act_as = tf.resource("google_service_account_iam_member", "act_as_tasks")
    assert act_as["role"] == "roles/iam.serviceAccountUser"
    sign = tf.resource("google_service_account_iam_member", "finalize_sign_blob")
    assert sign["role"] == "roles/iam.serviceAccountTokenCreator"
    assert sign["service_account_id"] == '${google_service_account.sa["finalize"].name}'
    assert sign["member"] == 'serviceAccount:${google_service_account.sa["finalize"].email}', "finalize signs only as itself"


def test_function_sizing(tf: Terraform):
    cat = catalog(tf)
    queues = tf.locals["fixed_queues"]
    for name, f in cat.items():
        if f["concurrency"] > 1:
            assert float(f["cpu"]) >= 1, f"{name}: concurrency > 1 needs at least 1 vCPU"
        if not f["public"] and f["trigger"] == "http":
            assert f["timeout"] <= TASKS_DISPATCH_DEADLINE_MAX, (
                f"{name}: timeout {f['timeout']}s is longer than Cloud Tasks waits for a task (30 min): "
                "the task would be retried while the first attempt still runs"
            )
        assert f["timeout"] <= 3600, f"{name}: 2nd gen HTTP functions time out after 60 min at most"
    fin = cat["finalize-job"]
    assert fin["memory"] in {"1Gi", "2Gi", "4Gi"} and 1 <= fin["concurrency"] <= 4
    assert fin["timeout"] >= 900, "finalize streams long videos: give it at least 15 minutes"
    # An instance pool that cannot absorb a queue's concurrency turns dispatches into 429s and retries.
    served_by = {"veo-poll": "poll-job", "veo-finalize": "finalize-job", "veo-webhooks": "deliver-webhook", "veo-stream": "stream-job"}
    for qid, fname in served_by.items():
        f = cat[fname]
        capacity = f["max_instances"] * f["concurrency"]
        assert capacity >= queues[qid]["max_concurrent_dispatches"], (
            f"{fname}: {f['max_instances']} instances x {f['concurrency']} < {qid} max_concurrent_dispatches"
        )
    submit = cat["submit-job"]
    all_providers = len(tf.locals["provider_catalog"])
    default_conc = tf.variables["provider_max_concurrent_submissions"]["default"]
    assert submit["max_instances"] * submit["concurrency"] >= all_providers * default_conc
    # The scheduled sweep must not overlap itself.
    assert cat["sweep-jobs"]["max_instances"] == 1
