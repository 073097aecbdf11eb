import base64
import dataclasses
import json
import pathlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from veorelay import config
from veorelay.config import ENVIRONMENT_VARIABLES, SECRET_VARIABLES, ConfigError, Settings

BASE = {"GOOGLE_CLOUD_PROJECT": "p", "VEO_BUCKET": "b"}
WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
REQUIRED = {"GOOGLE_CLOUD_PROJECT", "VEO_BUCKET"}


def test_defaults_point_at_the_documented_services():
    s = Settings.from_env(BASE)
    assert s.default_provider == "litellm-gemini"
    assert s.providers["litellm-gemini"].base_url == "https://api.thucchien.ai"
    assert s.providers["vertex"].base_url == "https://us-central1-aiplatform.googleapis.com"
    assert s.output_prefix == "videos"
    assert not s.allow_loopback_urls


def test_provider_keys_follow_the_naming_and_stay_out_of_repr():
    s = Settings.from_env(BASE | {"VEO_LITELLM_GEMINI_BASE_URL": "http://sim:1/", "VEO_LITELLM_GEMINI_API_KEY": "sk-secret", "VEO_WEBHOOK_SECRET": WHSEC})
    assert s.providers["litellm-gemini"].base_url == "http://sim:1"
    assert s.providers["litellm-gemini"].api_key == "sk-secret"
    assert "sk-secret" not in repr(s) and WHSEC not in repr(s)


def test_vertex_base_url_follows_its_location():
    s = Settings.from_env(BASE | {"VEO_LOCATION": "europe-west4", "VEO_VERTEX_LOCATION": "us-east5"})
    assert s.providers["vertex"].base_url == "https://us-east5-aiplatform.googleapis.com"
    assert Settings.from_env(BASE | {"VEO_LOCATION": "europe-west4"}).providers["vertex"].base_url == "https://europe-west4-aiplatform.googleapis.com"


def test_settings_are_frozen():
    s = Settings.from_env(BASE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.bucket = "other"  # type: ignore[misc]


def test_values_are_read_without_surrounding_whitespace():
    """Secret Manager versions often end with a newline (`echo key | gcloud secrets versions add`)."""
    s = Settings.from_env(BASE | {"VEO_NEWAPI_API_KEY": "sk-1\n", "VEO_JOB_DEADLINE_SECONDS": " 900 "})
    assert s.providers["newapi"].api_key == "sk-1" and s.job_deadline_s == 900


def test_os_environ_is_the_default(monkeypatch):
    for name in ENVIRONMENT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "p")
    monkeypatch.setenv("VEO_BUCKET", "from-os-environ")
    assert Settings.from_env().bucket == "from-os-environ"


def test_every_provider_variable_is_declared():
    for provider in config.PROVIDER_NAMES:
        prefix = config.provider_env_prefix(provider)
        for suffix in ("BASE_URL", "API_KEY", *config.PROVIDER_EXTRAS.get(provider, ())):
            assert prefix + suffix in ENVIRONMENT_VARIABLES
    assert {config.task_url_env(t) for t in config.TASK_TARGETS} <= set(ENVIRONMENT_VARIABLES)


@pytest.mark.parametrize("env,words", [
    ({"VEO_BUCKET": "b"}, "GOOGLE_CLOUD_PROJECT"),
    ({"GOOGLE_CLOUD_PROJECT": "p"}, "VEO_BUCKET"),
    (BASE | {"VEO_PROVIDERS_ENABLED": "litellm-gemini,nope"}, "nope"),
    (BASE | {"VEO_PROVIDERS_ENABLED": "newapi"}, "VEO_DEFAULT_PROVIDER"),
])
def test_unrunnable_environments_are_refused_clearly(env, words):
    with pytest.raises(ConfigError, match=words):
        Settings.from_env(env)


def test_the_legacy_project_variable_is_a_fallback():
    assert Settings.from_env({"GCLOUD_PROJECT": "legacy", "VEO_BUCKET": "b"}).project == "legacy"
    assert Settings.from_env(BASE | {"GCLOUD_PROJECT": "legacy"}).project == "p"


def test_task_urls_are_required_only_when_used():
    s = Settings.from_env(BASE | {"VEO_POLL_JOB_URL": "http://x/"})
    assert s.task_url("poll_job") == "http://x/"
    with pytest.raises(ConfigError, match="VEO_FINALIZE_JOB_URL"):
        s.task_url("finalize_job")


def test_every_internal_function_knows_its_own_url_and_the_keys_default_to_googles():
    s = Settings.from_env(BASE | {"VEO_POLL_JOB_URL": "http://x/", "VEO_SWEEP_JOBS_URL": "https://s/", "VEO_ON_REQUEST_OBJECT_URL": "https://e/"})
    assert s.internal_urls == {"poll_job": "http://x/", "sweep_jobs": "https://s/", "on_request_object": "https://e/"}
    assert set(s.task_urls) == {"poll_job"}  # the sweep and the event handler are no task targets
    assert s.oidc_certs_url == "https://www.googleapis.com/oauth2/v1/certs"
    assert Settings.from_env(BASE | {"VEO_OIDC_CERTS_URL": "http://127.0.0.1:1/oauth2/v1/certs"}).oidc_certs_url.startswith("http://127")
    with pytest.raises(ConfigError, match="VEO_OIDC_CERTS_URL"):
        Settings.from_env(BASE | {"VEO_OIDC_CERTS_URL": "file:///etc/keys"})


# ------------------------------------------------------------------------------ bad values
@pytest.mark.badinput
@pytest.mark.parametrize("name,value", [
    ("VEO_JOB_DEADLINE_SECONDS", "30m"),
    ("VEO_JOB_DEADLINE_SECONDS", "0"),
    ("VEO_JOB_DEADLINE_SECONDS", "-5"),
    ("VEO_DOWNLOAD_ATTEMPTS", "0"),
    ("VEO_DOWNLOAD_ATTEMPTS", "three"),
    ("VEO_UPLOAD_CHUNK_BYTES", "1000000"),
    ("VEO_UPLOAD_CHUNK_BYTES", "0"),
    ("VEO_UPLOAD_CHUNK_BYTES", "8MiB"),
    ("VEO_WEBHOOK_TIMEOUT_SECONDS", "0"),
    ("VEO_WEBHOOK_TIMEOUT_SECONDS", "inf"),
    ("VEO_SWEEP_STALL_SECONDS", "-1"),
    ("VEO_HTTP_TIMEOUT_SECONDS", "nan"),
    ("VEO_POLL_INITIAL_DELAY_SECONDS", "-1"),
    ("VEO_POLL_MIN_DELAY_SECONDS", "0"),
    ("VEO_POLL_MAX_DELAY_SECONDS", "soon"),
    ("VEO_POLL_DELAY_COST_CHECKS", "0"),
    ("VEO_POLL_MAX_CHECKS", "-3"),
    ("VEO_POLL_PRIOR_MEDIAN_SECONDS", "0"),
    ("VEO_POLL_PRIOR_SIGMA", "-0.5"),
    ("VEO_POLL_STATS_TTL_SECONDS", "5m"),
    ("VEO_WEBHOOK_PROGRESS_INTERVAL_SECONDS", "0"),
    ("VEO_SIGNED_URL_TTL_SECONDS", "1.5"),
    ("VEO_WEBHOOK_RETRY_SCHEDULE", "0,5,soon"),
    ("VEO_ALLOW_LOOPBACK_URLS", "maybe"),
    ("VEO_AUTH_DISABLED", "please"),
    ("VEO_VERTEX_WRITE_TO_BUCKET", "sometimes"),
    ("VEO_LOG_LEVEL", "LOUD"),
    ("VEO_OUTPUT_PREFIX", "/"),
    ("VEO_OUTPUT_PREFIX", "inputs"),
    ("VEO_REQUESTS_CLIENT_ID", "no spaces please"),
    ("VEO_NEWAPI_BASE_URL", "computevault.unodetech.xyz"),
    ("VEO_FLOW_GOOGLE_BASE_URL", "ftp://aisandbox-pa.googleapis.com"),
    ("VEO_POLL_JOB_URL", "/poll"),
    ("STORAGE_EMULATOR_HOST", "localhost"),
    ("VEO_PROVIDERS_ENABLED", ","),
    ("VEO_WEBHOOK_SECRET", "whsec_tooshort"),
    ("VEO_WEBHOOK_SECRETS", "[]"),
    ("VEO_API_KEYS", "{"),
])
def test_each_bad_value_is_refused_at_start_naming_its_variable(name, value):
    with pytest.raises(ConfigError, match=name) as refused:
        Settings.from_env(BASE | {name: value})
    if name in SECRET_VARIABLES:
        assert value not in str(refused.value)


def test_every_bad_variable_is_named_at_once():
    with pytest.raises(ConfigError) as refused:
        Settings.from_env(BASE | {"VEO_JOB_DEADLINE_SECONDS": "30m", "VEO_UPLOAD_CHUNK_BYTES": "1000"})
    assert "VEO_JOB_DEADLINE_SECONDS" in str(refused.value) and "VEO_UPLOAD_CHUNK_BYTES" in str(refused.value)


def test_poll_gaps_must_be_ordered():
    with pytest.raises(ConfigError, match="VEO_POLL_MIN_DELAY_SECONDS"):
        Settings.from_env(BASE | {"VEO_POLL_MIN_DELAY_SECONDS": "40"})  # above the default max (30)
    s = Settings.from_env(BASE | {"VEO_POLL_MIN_DELAY_SECONDS": "40", "VEO_POLL_MAX_DELAY_SECONDS": "60"})
    assert (s.poll.min_delay_s, s.poll.max_delay_s) == (40, 60)


def test_an_upload_chunk_of_256_kib_multiples_is_accepted():
    assert Settings.from_env(BASE | {"VEO_UPLOAD_CHUNK_BYTES": str(3 * 256 * 1024)}).upload_chunk_bytes == 786432


# ------------------------------------------------------------------------------ UNSET
def test_secret_manager_placeholders_count_as_missing():
    s = Settings.from_env(BASE | {"VEO_WEBHOOK_SECRET": "UNSET", "VEO_NEWAPI_API_KEY": "UNSET", "VEO_FLOW_GOOGLE_TOKEN": "UNSET"})
    assert s.webhooks.default_secret is None and s.webhooks.secrets_for("anyone") == ()
    assert s.providers["newapi"].api_key is None
    assert "GOOGLE_TOKEN" not in s.providers["flow"].extras


@pytest.mark.parametrize("name", sorted(set(ENVIRONMENT_VARIABLES) - REQUIRED))
@pytest.mark.parametrize("placeholder", ["UNSET", " UNSET\n", "", "  "])
def test_unset_and_empty_mean_not_set_for_every_variable(name, placeholder):
    assert Settings.from_env(BASE | {name: placeholder}) == Settings.from_env(BASE)


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_a_required_variable_left_unset_is_missing(name):
    with pytest.raises(ConfigError, match=f"{name} is not set"):
        Settings.from_env(BASE | {name: "UNSET"})


def test_a_fresh_deployment_holds_no_credential():
    """Every secret at its placeholder version (infra/secrets.tf): nothing signs, nothing authenticates."""
    placeholders = {name: "{}" if name in ("VEO_WEBHOOK_SECRETS", "VEO_API_KEYS") else "UNSET" for name in SECRET_VARIABLES}
    s = Settings.from_env(BASE | placeholders)
    assert s.secret_values() == ()
    assert s.api_keys == {} and s.webhooks.secrets_for("bucket") == ()


# ------------------------------------------------------------------------------ secrets in errors
# Hypothesis also tries the string constants of the code under test: a "secret" that is a piece
# of config.py's own wording ("VEO_WEBHOOK_") cannot be told apart from a refusal that names it.
_CONFIG_WORDING = pathlib.Path(config.__file__).read_text()
_SECRETISH = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=12, max_size=60).filter(
    lambda v: v.strip() and v.strip() != "UNSET" and v.strip() not in _CONFIG_WORDING)


@given(name=st.sampled_from(sorted(SECRET_VARIABLES)), value=_SECRETISH)
def test_a_refused_secret_is_never_quoted(name, value):
    try:
        Settings.from_env(BASE | {name: value})
    except ConfigError as refused:
        assert name in str(refused)
        assert value.strip() not in str(refused)


@given(secrets=st.lists(_SECRETISH, min_size=1, max_size=3), shape=st.sampled_from(["list", "one", "nested"]))
def test_a_refused_webhook_secrets_table_never_quotes_its_secrets(secrets, shape):
    entry = {"list": secrets, "one": secrets[0], "nested": [secrets]}[shape]
    try:
        Settings.from_env(BASE | {"VEO_WEBHOOK_SECRETS": json.dumps({"acme": entry})})
    except ConfigError as refused:
        assert "VEO_WEBHOOK_SECRETS" in str(refused) and "acme" in str(refused)
        for secret in secrets:
            assert secret not in str(refused) and json.dumps(secret) not in str(refused)


@given(secret=st.binary(min_size=16, max_size=48).map(lambda b: "whsec_" + base64.b64encode(b).decode()))
def test_a_swapped_webhook_secrets_table_never_quotes_the_secret(secret):
    with pytest.raises(ConfigError, match="VEO_WEBHOOK_SECRETS") as refused:
        Settings.from_env(BASE | {"VEO_WEBHOOK_SECRETS": json.dumps({secret: "acme"})})
    assert secret not in str(refused.value)
