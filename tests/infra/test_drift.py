"""Drift between the Terraform (infra/), the code (functions/), the local stack (dev/stack.py)
and cloudbuild.yaml. Each test reads the real files; nothing is deployed or downloaded."""

from __future__ import annotations

import importlib
import re
import textwrap
from collections.abc import Mapping
from pathlib import Path

import pytest
from infra_helpers import CLOUDBUILD, CONFIG_PY, INFRA, MAIN_PY, REPO, Terraform, decorated_functions, is_expression, load_yaml

NAME_RE = re.compile(r"^[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$")  # Cloud Functions 2nd gen / Cloud Run names

# Read by config.py but deliberately NOT set by Terraform (local stack / developer machines).
DEV_ONLY_ENV = {
    "CLOUD_TASKS_EMULATOR_HOST": "points the Tasks client at the local emulator",
    "FIRESTORE_EMULATOR_HOST": "points Firestore at the local emulator",
    "STORAGE_EMULATOR_HOST": "points GCS at fake-gcs-server",
    "VEO_ALLOW_LOOPBACK_URLS": "lets webhooks target 127.0.0.1 (SSRF in production)",
    "VEO_VERTEX_ACCESS_TOKEN": "a developer's token; deployed functions use their service account",
    "GCLOUD_PROJECT": "legacy alias of GOOGLE_CLOUD_PROJECT, which Terraform sets",
    "VEO_VERTEX_API_KEY": "Vertex AI authenticates as the function's service account, with no key",
    "VEO_AUTH_DISABLED": "turns API keys off for local experiments (production always checks them)",
    "VEO_HTTP_TIMEOUT_SECONDS": "caps provider call timeouts so the tests see a timeout in seconds",
    "VEO_OIDC_CERTS_URL": "the local Tasks emulator's throwaway signing key; deployed functions trust Google's keys (the default)",
    "VEO_GEMINI_JWKS_URL": "the simulator's per-request webhook keys; deployed functions trust Google's JWKS (the default)",
    "VEO_PUSH_OIDC_CERTS_URL": "the simulator's Pub/Sub push signing key; deployed functions trust Google's keys (the default)",
}

# Read by config.py, left to the code's default in production on purpose: not a knob a team
# tunes per deployment (the useful ones are Terraform variables: var.tuning).
CODE_DEFAULT_ENV = {
    "VEO_POLL_PRIOR_MEDIAN_SECONDS": "overrides the per-model prior of core/poll_plan.py for every model at once; "
                                     "the learned durations (poll_stats) outweigh the prior after a few dozen jobs",
    "VEO_POLL_PRIOR_SIGMA": "same as VEO_POLL_PRIOR_MEDIAN_SECONDS: an experiment knob, unset = per-model priors",
    "VEO_POLL_STATS_TTL_SECONDS": "how often an instance re-reads learned durations (cache lifetime, 300 s): "
                                  "an implementation detail with no cost or latency trade-off worth exposing",
    "VEO_LITELLM_GEMINI_PUSH": "off (the default) unless the gateway passes webhookConfig through; a deployment whose "
                               "LiteLLM does sets it by hand, as docs/PROVIDERS.md says",
    "VEO_BODY_TIMEOUT_SECONDS": "how long a client may take to send its body (15 s, 3x for multipart): a defence "
                                "against slow clients within the api's timeout, not a knob (tests shorten it)",
    "VEO_CATALOG_FILE": "the model catalog ships with the functions (functions/veorelay/catalog/*.toml); an override "
                        "file is a deployment's own addition to its source, not a Terraform setting",
    "VEO_EVENTS_MAX_SECONDS": "how long GET /jobs/{id}/events holds a stream (150 s) before a clean end with a retry: "
                              "hint; tied to the api's timeout in infra/main.tf (tests/infra/test_api_timeout.py), not a knob",
}


# ------------------------------------------------------------------------------ helpers
def catalog(tf: Terraform) -> dict[str, dict]:
    return tf.locals["function_catalog"]


def enabled(tf: Terraform) -> dict[str, dict]:
    return {name: f for name, f in catalog(tf).items() if f["enabled"] is True}


def resolve(tf: Terraform, value):
    """A literal, or `${var.x}` resolved to the variable's default."""
    if is_expression(value):
        m = re.fullmatch(r"\$\{var\.([a-z0-9_]+)\}", value)
        assert m, f"cannot resolve {value!r} offline: use a literal or a plain var.<name>"
        return tf.variables[m.group(1)]["default"]
    return value


def url_env_name(entry_point: str) -> str:
    return f"VEO_{entry_point.upper()}_URL"


def terraform_env_names(tf: Terraform) -> set[str]:
    """Every environment variable name Terraform can set on a function (any provider, any
    catalog entry once enabled): plain env, provider settings, mounted secrets, task URLs."""
    names = set(tf.locals["base_env"])
    for p in tf.locals["provider_catalog"].values():
        names.add(p["base_url_env"])
        names.update(p["extra_env"])
        names.update(p["secrets"])
    names.update(tf.locals["webhook_secrets"])
    names.update(tf.locals["api_key_secrets"])
    for own in tf.locals["function_own_env"].values():
        names.update(own)
    names.update(tf.locals.get("push_env") or {})  # infra/push.tf: completion events, every function
    for key, body in tf.resources_of("google_cloudfunctions2_function").items():  # functions of their own
        if key != "fn":
            names.update(s["key"] for s in body["service_config"][0].get("secret_environment_variables") or [])
    names.update(url_env_name(f["entry_point"]) for f in catalog(tf).values() if not f["public"])  # every internal function's
    return names


# ------------------------------------------------------------------------------ functions
def test_main_py_parser_on_a_fixture(tmp_path: Path):
    """The entry-point reader understands every way main.py may declare functions."""
    src = tmp_path / "main.py"
    src.write_text(textwrap.dedent("""
        import functions_framework
        import functions_framework as ff
        from functions_framework import cloud_event, http as h

        @functions_framework.http
        def api(request): ...

        @ff.http
        def submit_job(request): ...

        @h
        def poll_job(request): ...

        @cloud_event
        def on_request_object(event): ...

        @functions_framework.cloud_event
        async def later(event): ...

        def helper(): ...

        class NotAFunction:
            @functions_framework.http
            def method(self): ...

        def outer():
            @functions_framework.http
            def nested(request): ...
    """))
    assert decorated_functions(src) == {
        "api": "http",
        "submit_job": "http",
        "poll_job": "http",
        "on_request_object": "cloud_event",
        "later": "cloud_event",
    }


def test_function_names_and_entry_points(tf: Terraform):
    for name, f in catalog(tf).items():
        assert NAME_RE.match(name), f"{name}: not a valid Cloud Functions 2nd gen name (lowercase, digits, hyphens)"
        assert name == f["entry_point"].replace("_", "-"), (
            f"{name}: the deployed name must be the entry point with '-' for '_' "
            f"({f['entry_point'].replace('_', '-')}), so URLs and VEO_*_URL names stay predictable"
        )
        assert isinstance(f["enabled"], bool), f"{name}: enabled must be a literal true/false"
        assert f["trigger"] in {"http", "schedule", "storage"}, f"{name}: unknown trigger {f['trigger']!r}"
    fn = tf.resource("google_cloudfunctions2_function", "fn")
    assert fn["for_each"] == "${local.functions}"
    assert fn["build_config"][0]["entry_point"] == "${each.value.entry_point}"
    assert fn["build_config"][0]["runtime"] == "python312"
    assert tf.locals["functions"] == "${{for name, f in local.function_catalog : name => f if f.enabled}}"


def function_drift(catalog_: dict[str, dict], in_code: dict[str, str]) -> list[str]:
    """What differs between the Terraform function catalog and main.py's decorated functions."""
    deployed = {f["entry_point"]: name for name, f in catalog_.items() if f["enabled"]}
    planned = {f["entry_point"]: name for name, f in catalog_.items() if not f["enabled"]}
    problems = []
    for entry in sorted(set(in_code) - set(deployed)):
        if entry in planned:
            problems.append(f"main.py defines {entry}: set `enabled = true` on {planned[entry]} in infra/main.tf")
        else:
            problems.append(f"main.py defines {entry}, which infra/main.tf does not deploy: add an entry to local.function_catalog")
    for entry in sorted(set(deployed) - set(in_code)):
        problems.append(f"infra/main.tf deploys {deployed[entry]} (entry point {entry}), which functions/main.py does not define")
    for entry in sorted(set(in_code) & set(deployed)):
        trigger = catalog_[deployed[entry]]["trigger"]
        want = "cloud_event" if trigger == "storage" else "http"
        if in_code[entry] != want:
            problems.append(f"{entry} is @functions_framework.{in_code[entry]} but its Terraform trigger is {trigger!r} (needs {want})")
    return problems


def test_function_drift_is_detected():
    cat = {
        "api": {"entry_point": "api", "enabled": True, "trigger": "http"},
        "poll-job": {"entry_point": "poll_job", "enabled": True, "trigger": "http"},
        "stream-job": {"entry_point": "stream_job", "enabled": False, "trigger": "http"},
        "on-request-object": {"entry_point": "on_request_object", "enabled": True, "trigger": "storage"},
    }
    assert function_drift(cat, {"api": "http", "poll_job": "http", "on_request_object": "cloud_event"}) == []
    problems = function_drift(cat, {"api": "http", "stream_job": "http", "extra": "http", "on_request_object": "http"})
    assert any("set `enabled = true` on stream-job" in p for p in problems)
    assert any("main.py defines extra" in p for p in problems)
    assert any("deploys poll-job" in p for p in problems)
    assert any("on_request_object is @functions_framework.http" in p for p in problems)


def test_terraform_deploys_exactly_the_functions_in_main_py(tf: Terraform):
    if not MAIN_PY.exists():
        pytest.fail(f"{MAIN_PY.relative_to(REPO)} does not exist: it must define the entry points "
                    f"Terraform deploys ({', '.join(sorted(f['entry_point'] for f in enabled(tf).values()))})", pytrace=False)
    problems = function_drift({**catalog(tf), **standalone_functions(tf)}, decorated_functions(MAIN_PY))
    assert not problems, "\n".join(problems)


def standalone_functions(tf: Terraform) -> dict[str, dict]:
    """Functions declared by a resource of their own (infra/push.tf's provider_events), as
    catalog entries: deployed, their entry point, an HTTP trigger unless they have an event one."""
    return {
        body["name"]: {"entry_point": body["build_config"][0]["entry_point"], "enabled": True,
                       "trigger": "storage" if body.get("event_trigger") else "http"}
        for key, body in tf.resources_of("google_cloudfunctions2_function").items() if key != "fn"
    }


# ------------------------------------------------------------------------------ environment
class RecordingEnv(Mapping):
    """An environment that records every name read from it."""

    def __init__(self, values: dict[str, str]):
        self._values = values
        self.read: set[str] = set()

    def __getitem__(self, key):
        self.read.add(key)
        return self._values[key]

    def get(self, key, default=None):
        self.read.add(key)
        return self._values.get(key, default)

    def __contains__(self, key):
        self.read.add(key)
        return key in self._values

    def __iter__(self):
        return iter(self._values)

    def __len__(self):
        return len(self._values)


def secret_placeholders(tf: Terraform) -> dict[str, str]:
    """Env name -> value of version 1 of its secret (local.secret_placeholders, secrets.tf)."""
    import json

    expr = tf.locals["secret_placeholders"]
    m = re.fullmatch(r'\$\{\{for env_name in keys\(local\.all_secrets\) : env_name => '
                     r'contains\((\[[^\]]*\]), env_name\) \? "\{\}" : "UNSET"\}\}', expr)
    assert m, f"cannot read local.secret_placeholders offline: {expr}"
    json_secrets = set(json.loads(m.group(1)))
    names = set(tf.locals["webhook_secrets"]) | set(tf.locals["api_key_secrets"])
    for p in tf.locals["provider_catalog"].values():
        names.update(p["secrets"])
    assert json_secrets <= names, f"placeholders for unknown secrets {sorted(json_secrets - names)}"
    return {name: "{}" if name in json_secrets else "UNSET" for name in names}


def names_config_reads(tf: Terraform) -> set[str]:
    config = importlib.import_module("veorelay.config")
    settings_cls = getattr(config, "Settings", None)
    if settings_cls is None or not hasattr(settings_cls, "from_env"):
        pytest.fail("functions/veorelay/config.py no longer has Settings.from_env(environ): "
                    "update tests/infra/test_drift.py to read its environment names", pytrace=False)
    providers = list(getattr(config, "PROVIDER_NAMES", tf.locals["provider_catalog"]))
    # The environment a deployed function sees: every name Terraform can set (with its
    # literal value when it has one), every provider enabled so every provider's names are read.
    literal = {**tf.locals["base_env"]}
    for p in tf.locals["provider_catalog"].values():
        literal[p["base_url_env"]] = p["base_url"]
        literal.update(p["extra_env"])
    values = {}
    for name in terraform_env_names(tf):
        value = literal.get(name)
        if value is None or is_expression(value):
            value = "https://example.invalid" if name.endswith("_URL") else "1"
        values[name] = value
    # var.tuning's knobs as Terraform renders their defaults: config.py validates values, and a
    # stand-in such as "1" is no valid upload chunk size.
    values.update(tuned_env(tf))
    # Secrets as a fresh deployment mounts them: their placeholder versions.
    values.update(secret_placeholders(tf))
    # infra/push.tf's, as a deployment renders them: its secret's placeholder, the default push
    # mode, the Vertex topic when vertex is enabled.
    if "push_env" in tf.locals:
        values.update({"VEO_GEMINI_WEBHOOK_SECRET": "UNSET", "VEO_GEMINI_PUSH": tf.variables["gemini_push_mode"]["default"],
                       "VEO_VERTEX_PUBSUB_TOPIC": "projects/my-project/topics/veo-vertex-done"})
    values.update({
        "GOOGLE_CLOUD_PROJECT": "p",
        "VEO_BUCKET": "b",
        "VEO_OUTPUT_PREFIX": "videos",
        "VEO_LOG_LEVEL": "INFO",
        "VEO_PROVIDERS_ENABLED": ",".join(providers),
        "VEO_DEFAULT_PROVIDER": providers[0],
        "VEO_INPUT_BUCKETS": "gs-input-bucket",  # join(",", var.input_buckets): bucket names ("1" is none)
        "VEO_BUDGETS": "{}",  # jsonencode(var.budgets) of its default
        "VEO_FAILOVER_CHAINS": "{}",  # jsonencode(var.failover_chains) of its default
    })
    env = RecordingEnv(values)
    settings_cls.from_env(env)
    return env.read


def test_terraform_sets_every_variable_config_reads(tf: Terraform):
    assert CONFIG_PY.exists(), f"{CONFIG_PY.relative_to(REPO)} is the environment contract Terraform must satisfy"
    read = names_config_reads(tf)
    missing = sorted(read - terraform_env_names(tf) - set(DEV_ONLY_ENV) - set(CODE_DEFAULT_ENV))
    assert not missing, (
        "functions/veorelay/config.py reads environment variables Terraform never sets: "
        f"{', '.join(missing)}. Add them to local.base_env (or provider_catalog) in infra/main.tf, "
        "or to DEV_ONLY_ENV in this test if they must stay unset in production, "
        "or to CODE_DEFAULT_ENV if the code's default is the production value."
    )
    # (DEV_ONLY_ENV also lists names the client libraries read, or config.py reads only as fallbacks.)
    stale = sorted(set(CODE_DEFAULT_ENV) - read)
    assert not stale, f"CODE_DEFAULT_ENV lists names config.py no longer reads: {stale}"


def test_terraform_never_sets_dev_only_variables(tf: Terraform):
    leaked = sorted(terraform_env_names(tf) & (set(DEV_ONLY_ENV) | set(CODE_DEFAULT_ENV)))
    assert not leaked, f"Terraform sets variables this test says it must not: {leaked}"
    assert "VEO_AUTH_DISABLED" in DEV_ONLY_ENV and "VEO_AUTH_DISABLED" not in tf.text, (
        "VEO_AUTH_DISABLED turns API keys off: it must never appear in infra/"
    )


def test_function_own_env_targets_real_functions(tf: Terraform):
    """Per-function settings name catalog entries; the signer is deliver_webhook's own identity."""
    own = tf.locals["function_own_env"]
    assert set(own) <= set(catalog(tf)), f"function_own_env names unknown functions {sorted(set(own) - set(catalog(tf)))}"
    shared = set(tf.locals["base_env"]) & {n for env in own.values() for n in env}
    assert not shared, f"set both for every function and for one: {sorted(shared)}"
    webhook = catalog(tf)["deliver-webhook"]
    assert own["deliver-webhook"]["VEO_SIGNING_SERVICE_ACCOUNT"] == f'${{local.sa_emails["{webhook["service_account"]}"]}}'
    fn = tf.resource("google_cloudfunctions2_function", "fn")
    env = fn["service_config"][0]["environment_variables"]
    assert env.startswith("${merge(local.function_env, lookup(local.function_own_env, each.key, {}), "), env


# ------------------------------------------------------------------------------ tuning defaults
_OPTIONAL = re.compile(r"(\w+)\s*=\s*optional\(\s*(?:list\(\w+\)|\w+)\s*,\s*(\[[^\]]*\]|\"[^\"]*\"|[^,)\s]+)\s*\)")


def tuning_defaults(tf: Terraform) -> dict[str, object]:
    """var.tuning's attribute defaults, as Terraform would render them."""
    import json

    found = {name: json.loads(raw) for name, raw in _OPTIONAL.findall(tf.variables["tuning"]["type"])}
    assert found, "could not read var.tuning's optional() defaults"
    return found


def _tf_string(value) -> str:
    """tostring() of a number, or join(",", ...) of a list of numbers, as Terraform prints them."""
    if isinstance(value, list):
        return ",".join(_tf_string(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def tuned_env(tf: Terraform) -> dict[str, str]:
    """The base_env variables set from var.tuning, with the values its defaults render to."""
    defaults = tuning_defaults(tf)
    tuned = {}
    for env_name, expr in tf.locals["base_env"].items():
        m = re.search(r"var\.tuning\.([a-z0-9_]+)", str(expr))
        if m:
            assert m.group(1) in defaults, f"{env_name} uses var.tuning.{m.group(1)}, which has no default"
            tuned[env_name] = _tf_string(defaults[m.group(1)])
    return tuned


def test_tuning_defaults_are_the_codes_defaults(tf: Terraform):
    """Deploying with an empty var.tuning must behave exactly like the code with nothing set."""
    config = importlib.import_module("veorelay.config")
    defaults = tuning_defaults(tf)
    tuned = tuned_env(tf)
    unused = sorted(set(defaults) - {re.search(r"var\.tuning\.([a-z0-9_]+)", str(e)).group(1)
                                      for e in tf.locals["base_env"].values() if "var.tuning." in str(e)})
    assert not unused, f"var.tuning fields no function receives: {unused}"
    base = {"GOOGLE_CLOUD_PROJECT": "p", "VEO_BUCKET": "b", "VEO_PROVIDERS_ENABLED": "litellm-gemini",
            "VEO_DEFAULT_PROVIDER": "litellm-gemini"}
    with_code_defaults = config.Settings.from_env(base)
    with_terraform_defaults = config.Settings.from_env({**base, **tuned})
    assert with_terraform_defaults == with_code_defaults, (
        "var.tuning's defaults differ from config.py's: "
        + ", ".join(f"{k}={v}" for k, v in sorted(tuned.items()))
    )


def test_task_url_names_follow_the_code(tf: Terraform):
    """Terraform computes VEO_<ENTRY>_URL with the same rule as the code, for every Cloud Tasks target."""
    env_expr = tf.locals["function_env"]
    assert 'VEO_${upper(f.entry_point)}_URL' in env_expr, "function_env no longer builds VEO_<ENTRY>_URL names"
    # The run.app URL (Cloud Run's deterministic form), not the cloudfunctions.net one: internal
    # ingress admits Cloud Tasks only through run.app (test_internal_callers_use_run_app_urls).
    assert "https://${name}-${data.google_project.this.number}.${var.region}.run.app" in tf.locals["function_urls"]
    config = importlib.import_module("veorelay.config")
    targets = getattr(config, "TASK_TARGETS", None)
    assert targets is not None, "config.py must list TASK_TARGETS, the functions Cloud Tasks invokes"
    tasks_targets = {f["entry_point"] for f in catalog(tf).values() if f["trigger"] == "http" and not f["public"]}
    assert set(targets) == tasks_targets, (
        f"config.TASK_TARGETS {sorted(targets)} != Terraform's Cloud Tasks targets {sorted(tasks_targets)}"
    )


def test_every_internal_function_knows_its_url_the_audience_of_its_callers_tokens(tf: Terraform):
    """edges/invoker.py checks each internal function's OIDC token against VEO_<ENTRY>_URL: Terraform
    gives it to every non-public function, and creates the Scheduler job with that URL as audience."""
    config = importlib.import_module("veorelay.config")
    internal = {f["entry_point"] for f in catalog(tf).values() if not f["public"]}
    assert set(config.INTERNAL_ENTRY_POINTS) == internal, (
        f"config.INTERNAL_ENTRY_POINTS {sorted(config.INTERNAL_ENTRY_POINTS)} != Terraform's internal functions {sorted(internal)}")
    assert "if !f.public" in tf.locals["function_env"], "function_env no longer gives every internal function its URL"
    oidc = tf.resource("google_cloud_scheduler_job", "schedule")["http_target"][0]
    assert oidc["uri"] == oidc["oidc_token"][0]["audience"] == "${google_cloudfunctions2_function.fn[each.key].service_config[0].uri}"


def test_providers_match_the_code(tf: Terraform):
    config = importlib.import_module("veorelay.config")
    providers = tf.locals["provider_catalog"]
    assert set(providers) == set(config.PROVIDER_NAMES), "infra provider_catalog and config.PROVIDER_NAMES differ"
    validation = tf.variables["providers_enabled"]["validation"][0]["condition"]
    for name in config.PROVIDER_NAMES:
        assert f'"{name}"' in validation, f"variable providers_enabled does not accept {name}"
        prefix = config.provider_env_prefix(name)
        p = providers[name]
        assert p["base_url_env"] == prefix + "BASE_URL"
        for env_name in [*p["secrets"], *p["extra_env"]]:
            assert env_name.startswith(prefix), f"{env_name} does not start with {prefix}"
        default = config.DEFAULT_BASE_URLS[name]
        if "{location}" in default:
            assert p["base_url"] == default.format(location="${local.vertex_location}")
        else:
            assert p["base_url"] == default, f"{name}: Terraform default base URL {p['base_url']} != code's {default}"
    assert tf.variables["default_provider"]["default"] in tf.variables["providers_enabled"]["default"]
    assert tf.variables["output_prefix"]["default"] == "videos"


# ------------------------------------------------------------------------------ queues
QUEUE_FIELDS = {
    "max_attempts", "min_backoff_s", "max_backoff_s", "max_doublings", "max_retry_duration_s",
    "max_dispatches_per_second", "max_concurrent_dispatches",
}


def terraform_queues(tf: Terraform, providers) -> dict[str, dict]:
    queues = {qid: {k: resolve(tf, v) for k, v in spec.items()} for qid, spec in tf.locals["fixed_queues"].items()}
    template = {k: resolve(tf, v) for k, v in tf.locals["submit_queue_template"].items()}
    for p in providers:
        queues[f"veo-submit-{p}"] = dict(template)
    return queues


def test_queue_resource_uses_every_field(tf: Terraform):
    q = tf.resource("google_cloud_tasks_queue", "queue")
    assert q["for_each"] == "${local.queues}"
    body = repr(q)
    for field in QUEUE_FIELDS:
        assert f"each.value.{field}" in body, f"google_cloud_tasks_queue.queue ignores {field}"


def test_queues_match_dev_stack(tf: Terraform):
    assert (REPO / "dev" / "stack.py").exists(), "dev/stack.py holds QUEUES, the local twin of the Terraform queues"
    stack = importlib.import_module("dev.stack")
    queues = getattr(stack, "QUEUES", None)
    assert isinstance(queues, dict) and queues, "dev/stack.py has no QUEUES dict"
    problems = []
    for qid, spec in queues.items():
        if not isinstance(spec, Mapping) or set(spec) != QUEUE_FIELDS:
            pytest.fail(
                f"dev/stack.py QUEUES[{qid!r}] has fields {sorted(spec) if isinstance(spec, Mapping) else type(spec)}; "
                f"this test compares {sorted(QUEUE_FIELDS)} (seconds as numbers). "
                "Align the shapes (or teach tests/infra/test_drift.py the new one).",
                pytrace=False,
            )
    stack_providers = [q.removeprefix("veo-submit-") for q in queues if q.startswith("veo-submit-")]
    unknown = sorted(set(stack_providers) - set(tf.locals["provider_catalog"]))
    assert not unknown, f"dev/stack.py has submit queues for providers Terraform does not know: {unknown}"
    ours = terraform_queues(tf, stack_providers)
    if set(ours) != set(queues):
        problems.append(f"queue ids differ: only in Terraform {sorted(set(ours) - set(queues))}, "
                        f"only in dev/stack.py {sorted(set(queues) - set(ours))}")
    for qid in sorted(set(ours) & set(queues)):
        for field in sorted(QUEUE_FIELDS):
            theirs, mine = queues[qid][field], ours[qid][field]
            if float(theirs) != float(mine):
                problems.append(f"{qid}.{field}: dev/stack.py {theirs} != Terraform {mine}")
    assert not problems, "\n".join(problems)


def test_queue_ids_match_config(tf: Terraform):
    config = importlib.import_module("veorelay.config")
    qs = config.QueueSettings()
    fixed = set(tf.locals["fixed_queues"])
    for attr in ("poll", "finalize", "webhooks", "stream"):
        assert getattr(qs, attr) in fixed, f"config queue {attr}={getattr(qs, attr)!r} is not a Terraform queue"
    assert qs.submit("x") == "veo-submit-x"
    assert 'for p in var.providers_enabled : "veo-submit-${p}"' in tf.locals["submit_queues"]


# ------------------------------------------------------------------------------ cloudbuild.yaml
def test_cloudbuild_deploys_through_terraform_only(tf: Terraform):
    text = CLOUDBUILD.read_text(encoding="utf-8")
    code = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    for forbidden in ("gcloud functions deploy", "gcloud run deploy", "gcloud beta functions"):
        assert forbidden not in code, f"cloudbuild.yaml must deploy through Terraform, not `{forbidden}`"
    for name, f in catalog(tf).items():
        for token in {name, f["entry_point"]}:
            assert not re.search(rf"(?<![\w-]){re.escape(token)}(?![\w-])", code), (
                f"cloudbuild.yaml names the function {token!r}: names live only in infra/main.tf and functions/main.py"
            )

    build = load_yaml(CLOUDBUILD)
    steps = build["steps"]
    ids = [s.get("id") for s in steps]
    assert len(ids) == len(set(ids)) and all(ids), "every step needs a unique id"
    order = {sid: i for i, sid in enumerate(ids)}
    for sid in ("install", "test", "terraform-init", "terraform-plan", "terraform-apply"):
        assert sid in order, f"cloudbuild.yaml has no {sid} step"
    assert order["install"] < order["test"] < order["terraform-init"] < order["terraform-plan"] < order["terraform-apply"]

    test_step = steps[order["test"]]
    args = test_step.get("args", [])
    assert "pytest" in args, "the test step must run pytest"
    for path in ("tests/unit", "tests/functions", "tests/infra"):
        assert path in args, f"the test step does not run {path}"
        assert (REPO / path).is_dir(), f"{path} does not exist but cloudbuild.yaml runs it"

    for sid, cmd in (("terraform-init", "init"), ("terraform-plan", "plan")):
        assert steps[order[sid]]["args"] == ["infra/tf.sh", cmd]
    assert "sh infra/tf.sh apply" in " ".join(steps[order["terraform-apply"]]["args"])

    tf_images = {s["name"] for s in steps if s["name"].startswith("hashicorp/terraform:")}
    assert len(tf_images) == 1, f"use one Terraform image everywhere, not {sorted(tf_images)}"
    version = tuple(int(x) for x in tf_images.pop().split(":", 1)[1].split("."))
    required = re.search(r'required_version\s*=\s*">=\s*([0-9.]+)', tf.files["versions.tf"]).group(1)
    assert version >= tuple(int(x) for x in required.split(".")), "Cloud Build's Terraform is older than required_version"


def test_cloudbuild_substitutions(tf: Terraform):
    build = load_yaml(CLOUDBUILD)
    defined = set(build["substitutions"])
    assert {"_PROJECT_ID", "_REGION"} <= defined, "cloudbuild.yaml needs _PROJECT_ID and _REGION substitutions"
    text = CLOUDBUILD.read_text(encoding="utf-8")
    used = set(re.findall(r"(?<!\$)\$\{?(_[A-Z0-9_]+)", text))
    assert used == defined, f"substitutions defined but unused {sorted(defined - used)}, used but undefined {sorted(used - defined)}"
    assert build["options"]["substitutionOption"] == "MUST_MATCH"
    assert build["options"]["dynamicSubstitutions"] is True  # _PROJECT_ID defaults to ${PROJECT_ID}

    # The optional push trigger passes only substitutions the build defines.
    trigger = tf.resource("google_cloudbuild_trigger", "deploy")
    assert set(trigger["substitutions"]) <= defined
    assert trigger["filename"] == "cloudbuild.yaml"


def test_tf_sh_sets_only_declared_variables(tf: Terraform):
    script = (INFRA / "tf.sh").read_text(encoding="utf-8")
    exported = set(re.findall(r"TF_VAR_([a-z0-9_]+)=", script))
    assert exported, "infra/tf.sh sets no TF_VAR_*"
    unknown = sorted(exported - set(tf.variables))
    assert not unknown, f"infra/tf.sh sets TF_VAR_ for undeclared variables: {unknown}"
    required = {name for name, v in tf.variables.items() if "default" not in v}
    assert required <= exported, f"variables without default that tf.sh does not set: {sorted(required - exported)}"


# ------------------------------------------------------------------------------ threads = concurrency
# functions-framework serves with gunicorn, threads = int(THREADS or cpu_count() * 4)
# (functions_framework/_http/gunicorn.py): a function given more concurrent requests than it has
# threads queues them inside the instance. Every function's THREADS is its concurrency.
_LAST_MERGE_OBJECT = re.compile(r',\s*\{\s*THREADS\s*=\s*(?P<value>"[^"]*"|[^{}\s][^{}]*?)\s*\}\s*\)\}$')


def threads_problems(name: str, body: dict) -> list[str]:
    """What is wrong with one google_cloudfunctions2_function's THREADS (empty: it equals the
    function's max_instance_request_concurrency, and nothing merged after it can override it)."""
    config = (body.get("service_config") or [{}])[0]
    concurrency = config.get("max_instance_request_concurrency", 1)  # Cloud Functions' default: 1
    expr = concurrency[2:-1] if is_expression(concurrency) else None
    wanted_exprs = {f"tostring({expr})", expr} if expr else set()
    wanted_literal = None if expr else str(concurrency)
    env = config.get("environment_variables")

    def matches(value) -> bool:
        if is_expression(value):
            return value[2:-1] in wanted_exprs
        return wanted_literal is not None and str(value).strip('"') == wanted_literal

    if isinstance(env, dict):
        if "THREADS" not in env:
            return [f"{name}: no THREADS in environment_variables (functions-framework then serves cpu x 4 threads, "
                    f"not its concurrency {concurrency})"]
        value = env["THREADS"]
    elif is_expression(env):
        m = _LAST_MERGE_OBJECT.search(env)
        if not env.startswith("${merge(") or m is None:
            return [f"{name}: environment_variables must end with {{ THREADS = tostring(<its concurrency>) }} as merge()'s "
                    f"last argument, so nothing overrides it: {env}"]
        value = m.group("value")
        value = value if value.startswith('"') else "${" + value + "}"
    else:
        return [f"{name}: no environment_variables, so no THREADS (concurrency {concurrency})"]
    if not matches(value):
        return [f"{name}: THREADS = {value} is not its max_instance_request_concurrency ({concurrency})"]
    return []


def test_threads_drift_is_detected():
    """The checker itself: each way THREADS and the concurrency can part is caught."""
    ok_expr = {"service_config": [{"max_instance_request_concurrency": "${each.value.concurrency}",
                                   "environment_variables": "${merge(local.env, {THREADS = tostring(each.value.concurrency)})}"}]}
    ok_literal = {"service_config": [{"max_instance_request_concurrency": 80, "environment_variables": {"THREADS": "80", "A": "b"}}]}
    ok_default = {"service_config": [{"environment_variables": {"THREADS": "1"}}]}
    assert threads_problems("a", ok_expr) == threads_problems("b", ok_literal) == threads_problems("c", ok_default) == []
    bad = {
        "none": {"service_config": [{"max_instance_request_concurrency": 80, "environment_variables": {"A": "b"}}]},
        "other": {"service_config": [{"max_instance_request_concurrency": 80, "environment_variables": {"THREADS": "8"}}]},
        "overridden": {"service_config": [{"max_instance_request_concurrency": "${each.value.concurrency}",
                                           "environment_variables": "${merge({THREADS = tostring(each.value.concurrency)}, local.env)}"}]},
        "another expr": {"service_config": [{"max_instance_request_concurrency": "${each.value.concurrency}",
                                             "environment_variables": "${merge(local.env, {THREADS = tostring(each.value.cpu)})}"}]},
        "no env": {"service_config": [{"max_instance_request_concurrency": 4}]},
        "default 1": {"service_config": [{"environment_variables": {"THREADS": "4"}}]},
    }
    for name, body in bad.items():
        assert threads_problems(name, body), f"{name}: drift not detected"


def test_every_function_serves_as_many_threads_as_its_concurrency(tf: Terraform):
    """Every google_cloudfunctions2_function in any infra/*.tf, not only the catalog's."""
    functions = tf.resources_of("google_cloudfunctions2_function")
    assert "fn" in functions, "infra/ declares no google_cloudfunctions2_function.fn"
    problems = [p for name, body in sorted(functions.items()) for p in threads_problems(name, body)]
    assert not problems, "\n".join(problems)
    for name, f in catalog(tf).items():  # each.value.concurrency is a number for every catalog entry
        assert isinstance(f["concurrency"], int) and f["concurrency"] >= 1, f"{name}: concurrency {f['concurrency']!r}"


def test_functions_framework_takes_its_threads_from_the_threads_variable(monkeypatch):
    """The installed functions-framework does what the Terraform relies on: THREADS sets gunicorn's
    threads; without it, cpu_count() x 4 (so 4 on a 1-vCPU function, far below concurrency 40)."""
    import os

    gunicorn = importlib.import_module("functions_framework._http.gunicorn")  # a runtime dependency: never skipped
    monkeypatch.setenv("THREADS", "40")
    assert gunicorn.GunicornApplication(object(), "127.0.0.1", 0, False).options["threads"] == 40
    monkeypatch.delenv("THREADS")
    assert gunicorn.GunicornApplication(object(), "127.0.0.1", 0, False).options["threads"] == (os.cpu_count() or 1) * 4


# ------------------------------------------------------------------------------ run.app URLs
_FUNCTION_DOT_URL = re.compile(r"google_cloudfunctions2_function\.[a-z0-9_]+(?:\[[^\]]*\])?\.url\b")


def test_internal_callers_use_run_app_urls(tf: Terraform):
    """Internal ingress admits Cloud Tasks, Scheduler and Eventarc only through a function's default
    run.app URL: the task targets (VEO_<ENTRY>_URL), the Scheduler job and the OIDC audiences use it,
    never the function's `url` (cloudfunctions.net)."""
    assert tf.locals["function_urls"] == (
        '${{for name, f in local.functions : name => "https://${name}-${data.google_project.this.number}.${var.region}.run.app"}}'
    )
    assert "local.function_urls[name] if !f.public" in tf.locals["function_env"]
    sched = tf.resource("google_cloud_scheduler_job", "schedule")["http_target"][0]
    assert sched["uri"] == "${google_cloudfunctions2_function.fn[each.key].service_config[0].uri}"
    assert sched["oidc_token"][0]["audience"] == sched["uri"]
    fn = tf.resource("google_cloudfunctions2_function", "fn")
    post = fn["lifecycle"][0]["postcondition"][0]
    assert post["condition"] == '${endswith(self.service_config[0].uri, ".run.app")}'
    # No caller is configured with a cloudfunctions.net URL: not in any local or resource (what
    # Terraform evaluates; comments may name it), and no Scheduler job, Pub/Sub push or Eventarc
    # trigger with a function's `url` (its cloudfunctions.net URL).
    assert "cloudfunctions.net" not in repr(tf.locals) + repr(tf.resources)
    callers = ("google_cloud_scheduler_job", "google_pubsub_subscription", "google_eventarc_trigger")
    for (rtype, name), body in tf.resources.items():
        if rtype in callers:
            assert not _FUNCTION_DOT_URL.search(repr(body)), f"{rtype}.{name} calls a function's cloudfunctions.net `url`"
    # The code sends each task to that URL with that URL as its token's audience (gcp/tasks.py),
    # and the function accepts a token for its own run.app URL (gcp/oidc.py).
    oidc = importlib.import_module("veorelay.gcp.oidc")
    own = "https://poll-job-123456789012.us-central1.run.app"
    assert oidc.is_own_audience(own, own) and oidc.is_own_audience("https://poll-job-abcdefgh12-uc.a.run.app", own)
    assert not oidc.is_own_audience("https://submit-job-123456789012.us-central1.run.app", own)
    tasks_src = (REPO / "functions" / "veorelay" / "gcp" / "tasks.py").read_text(encoding="utf-8")
    assert '"url": url' in tasks_src and '"audience": url' in tasks_src
