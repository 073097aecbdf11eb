"""Least privilege and sizing rules of infra/, checked on the Terraform source."""

from __future__ import annotations

import re

from infra_helpers import Terraform

# Project-level roles allowed at all, and why (everything else is bound to a resource).
PROJECT_ROLES = {
    "roles/datastore.user": "Firestore has no per-collection IAM",
    "roles/datastore.viewer": "provider_events (infra/push.tf) reads jobs and writes none",
    "roles/aiplatform.user": "Vertex AI predictions run as the calling function",
    "roles/logging.logWriter": "function image builds write logs",
    "roles/eventarc.eventReceiver": "Eventarc delivers storage events as the invoker identity",
    "roles/storage.objectViewer": "build identity, limited by condition to the gcf-v2-sources bucket",
    "roles/pubsub.publisher": "the GCS service agent publishes storage events for Eventarc",
    "roles/eventarc.serviceAgent": "Eventarc's own service agent, granted before the storage trigger exists",
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


def test_public_function_is_only_the_api_and_holds_only_key_hashes(tf: Terraform):
    public = {name for name, f in catalog(tf).items() if f["public"]}
    assert public == {"api"}, f"only the api may be public, not {sorted(public - {'api'})}"
    # The API key hashes (not the keys, nor any provider key or webhook secret).
    assert catalog(tf)["api"]["secrets"] == ["api_keys"], "the public api may mount only the API key hashes"
    invoker = tf.resource("google_cloud_run_v2_service_iam_member", "invoker")
    assert invoker["role"] == "roles/run.invoker"
    assert invoker["member"] == '${each.value.public ? "allUsers" : "serviceAccount:${google_service_account.sa["tasks"].email}"}'
    ingress = tf.resource("google_cloudfunctions2_function", "fn")["service_config"][0]["ingress_settings"]
    assert ingress == '${each.value.public ? "ALLOW_ALL" : var.internal_ingress}'
    assert tf.variables["internal_ingress"]["default"] == "ALLOW_INTERNAL_ONLY"


# Functions that authenticate API clients (veorelay/auth.py authenticate()).
AUTHENTICATING_FUNCTIONS = {"api"}


def test_secrets_go_only_where_they_are_used(tf: Terraform):
    groups = {"provider_keys", "webhook", "api_keys"}
    assert set(tf.locals["secret_groups"]) == groups
    assert set(tf.locals["webhook_secrets"]) == {"VEO_WEBHOOK_SECRET", "VEO_WEBHOOK_SECRETS"}
    assert set(tf.locals["api_key_secrets"]) == {"VEO_API_KEYS"}
    for name, f in catalog(tf).items():
        assert set(f["secrets"]) <= groups, f"{name}: unknown secret group {f['secrets']}"
        if "webhook" in f["secrets"]:
            assert f["entry_point"] == "deliver_webhook", f"only deliver_webhook may read the webhook secrets, not {name}"
        if "api_keys" in f["secrets"]:
            assert f["entry_point"] in AUTHENTICATING_FUNCTIONS, f"only functions that authenticate clients may read VEO_API_KEYS, not {name}"
    assert {f["entry_point"] for f in catalog(tf).values() if "webhook" in f["secrets"]} == {"deliver_webhook"}
    assert {f["entry_point"] for f in catalog(tf).values() if "api_keys" in f["secrets"]} == AUTHENTICATING_FUNCTIONS
    holders = {f["entry_point"] for f in catalog(tf).values() if "provider_keys" in f["secrets"]}
    assert holders == {"submit_job", "poll_job", "finalize_job", "stream_job"}, f"provider keys mounted into {sorted(holders)}"
    # Each identity runs one function kind, so a secret grant to an identity is a grant to that function only.
    sas = [f["service_account"] for f in catalog(tf).values()]
    assert len(sas) == len(set(sas)), "two functions share a service account: secrets/roles of one would leak to the other"
    grant = tf.resource("google_secret_manager_secret_iam_member", "accessor")
    assert grant["role"] == "roles/secretmanager.secretAccessor"
    assert "local.function_secrets[name]" in tf.locals["secret_grants"], "secret access must derive from mounted secrets"
    # The secret values never pass through Terraform (only the placeholders do: "UNSET", or
    # an empty JSON table for the secrets the code parses as JSON).
    placeholder = tf.resource("google_secret_manager_secret_version", "placeholder")
    assert placeholder["secret_data"] == "${local.secret_placeholders[each.key]}"
    assert tf.locals["secret_placeholders"] == (
        '${{for env_name in keys(local.all_secrets) : env_name => '
        'contains(["VEO_WEBHOOK_SECRETS", "VEO_API_KEYS"], env_name) ? "{}" : "UNSET"}}'
    )


def test_json_secret_placeholders_parse():
    """Each placeholder must read as "not configured", not crash the function at start."""
    import importlib

    config = importlib.import_module("veorelay.config")
    base = {"GOOGLE_CLOUD_PROJECT": "p", "VEO_BUCKET": "b", "VEO_PROVIDERS_ENABLED": "litellm-gemini"}
    s = config.Settings.from_env({**base, "VEO_WEBHOOK_SECRETS": "{}", "VEO_API_KEYS": "{}",
                                  "VEO_WEBHOOK_SECRET": "UNSET", "VEO_LITELLM_GEMINI_API_KEY": "UNSET"})
    assert s.webhooks.secrets == {} and s.api_keys == {} and s.webhooks.default_secret is None
    assert s.providers["litellm-gemini"].api_key is None


def test_bucket_writes_are_prefix_bound(tf: Terraform):
    grants = tf.locals["bucket_grants"]
    for key, g in grants.items():
        assert g["prefix"].endswith("/"), f"{key}: prefix {g['prefix']!r} must end with '/'"
    writers = {(g["service_account"], g["prefix"]) for g in grants.values() if g["role"] in WRITE_ROLES}
    assert writers == {
        ("api", "inputs/"),
        ("events", "inputs/"),
        ("events", "requests/"),
        ("finalize", "${var.output_prefix}/"),
        ("finalize", "vertex/"),  # removes what Vertex wrote there once it is copied (delete)
        ("api", "${var.output_prefix}/"),  # DELETE /v1/videos/{id} removes a job's videos (steps/delete.py)
    }, f"bucket writers: {sorted(writers)}"
    # Readers of the outputs: finalize (owner), deliver_webhook, whose signed URLs need it, and the
    # api, which streams a video to its client (GET /v1/videos/{id}/content).
    readers = {g["service_account"] for g in grants.values() if g["prefix"] == "${var.output_prefix}/"}
    assert readers == {"finalize", "webhook", "api"}, f"output prefix readers: {sorted(readers)}"
    # Create-only where the code only creates (objectCreator cannot read, replace or delete).
    creators = {(g["service_account"], g["prefix"]) for g in grants.values() if g["role"] == "roles/storage.objectCreator"}
    assert creators == {("api", "inputs/"), ("events", "inputs/")}
    prefix_res = tf.resource("google_storage_bucket_iam_member", "prefix")
    assert "resource.name.startsWith" in prefix_res["condition"][0]["expression"]
    assert "${each.value.prefix}" in prefix_res["condition"][0]["expression"]
    vertex = tf.resource("google_storage_bucket_iam_member", "vertex_agent")
    assert vertex["role"] == "roles/storage.objectCreator"
    assert "/objects/vertex/" in vertex["condition"][0]["expression"]
    vertex_inputs = tf.resource("google_storage_bucket_iam_member", "vertex_agent_inputs")
    assert vertex_inputs["role"] == "roles/storage.objectViewer"
    assert "/objects/inputs/" in vertex_inputs["condition"][0]["expression"]
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


# The queues each identity's code enqueues to (functions/veorelay: TaskRequest(queue=...),
# plus lifecycle.move / notify, which queue webhook events). Least privilege: exactly these.
EXPECTED_ENQUEUE = {
    "api": {"veo-submit-*", "veo-finalize", "veo-webhooks"},  # create_job; cancel (+ discard task) and webhooks:redeliver
    "submit": {"veo-submit-*", "veo-poll", "veo-stream", "veo-webhooks"},  # throttled retry on its own queue
    "poll": {"veo-poll", "veo-finalize", "veo-webhooks"},
    "finalize": {"veo-finalize", "veo-webhooks"},  # the discard task of a job its download failed
    "webhook": {"veo-webhooks"},  # the next attempt of its own schedule
    "stream": {"veo-poll", "veo-finalize", "veo-webhooks"},  # a broken stream falls back to polling
    "sweep": {"veo-submit-*", "veo-poll", "veo-finalize", "veo-webhooks"},  # restart_task, discard tasks; job.failed
    "events": {"veo-submit-*"},  # create_job only
    "tasks": set(),
    "build": set(),
}


def test_enqueue_rights_name_real_queues(tf: Terraform):
    queues = set(tf.locals["fixed_queues"]) | {"veo-submit-*"}
    sas = tf.locals["service_accounts"]
    for key, sa in sas.items():
        unknown = set(sa["enqueue"]) - queues
        assert not unknown, f"{key} may enqueue to unknown queues {sorted(unknown)}"
    assert {k: set(sa["enqueue"]) for k, sa in sas.items()} == EXPECTED_ENQUEUE
    act_as = tf.resource("google_service_account_iam_member", "act_as_tasks")
    assert act_as["role"] == "roles/iam.serviceAccountUser"
    assert act_as["service_account_id"] == '${google_service_account.sa["tasks"].name}', "task creators act as the invoker only"
    # Only deliver_webhook signs URLs, and only as itself.
    signers = {name: body for name, body in tf.resources_of("google_service_account_iam_member").items()
               if body["role"] == "roles/iam.serviceAccountTokenCreator"}
    assert set(signers) == {"webhook_sign_blob"}, f"token creator grants: {sorted(signers)}"
    sign = signers["webhook_sign_blob"]
    assert sign["service_account_id"] == '${google_service_account.sa["webhook"].name}'
    assert sign["member"] == 'serviceAccount:${google_service_account.sa["webhook"].email}', "deliver_webhook signs only as itself"
    assert catalog(tf)["deliver-webhook"]["service_account"] == "webhook"
    assert "iamcredentials.googleapis.com" in tf.locals["apis"], "signBlob needs the IAM Credentials API"


def test_event_trigger_and_schedule_plumbing(tf: Terraform):
    """Eventarc and Scheduler deliver as the invoker identity, which needs eventReceiver; the GCS
    service agent publishes storage events; each storage/schedule function is enabled with them."""
    grants = repr(tf.locals["project_grants"])
    assert '"tasks/eventarc.eventReceiver"' in grants and "local.has_storage" in grants
    publisher = tf.resources_of("google_project_iam_member")["gcs_pubsub_publisher"]
    assert publisher["role"] == "roles/pubsub.publisher"
    assert "google_storage_project_service_account.gcs" in publisher["member"]
    fn = tf.resource("google_cloudfunctions2_function", "fn")
    trigger = fn["dynamic"][-1]["event_trigger"]["content"][0]
    assert trigger["event_type"] == "google.cloud.storage.object.v1.finalized"
    assert trigger["event_filters"][0] == {"attribute": "bucket", "value": "${google_storage_bucket.data.name}"}
    sched = tf.resource("google_cloud_scheduler_job", "schedule")
    assert sched["for_each"] == '${{for name, f in local.functions : name => f if f.trigger == "schedule"}}'
    assert tf.variables["sweep_schedule"]["default"] == "*/5 * * * *"
    cat = catalog(tf)
    assert cat["on-request-object"]["trigger"] == "storage" and cat["sweep-jobs"]["trigger"] == "schedule"
    assert cat["stream-job"]["timeout"] == TASKS_DISPATCH_DEADLINE_MAX, "stream_job holds a stream for the whole 30-min dispatch deadline"


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
