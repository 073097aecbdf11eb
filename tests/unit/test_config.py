import pytest

from veorelay.config import ConfigError, Settings

BASE = {"GOOGLE_CLOUD_PROJECT": "p", "VEO_BUCKET": "b"}


def test_defaults_point_at_the_documented_services():
    s = Settings.from_env(BASE)
    assert s.default_provider == "litellm-gemini"
    assert s.providers["litellm-gemini"].base_url == "https://api.thucchien.ai"
    assert s.providers["vertex"].base_url == "https://us-central1-aiplatform.googleapis.com"
    assert s.output_prefix == "videos"
    assert not s.allow_loopback_urls


def test_provider_keys_follow_the_naming_and_stay_out_of_repr():
    s = Settings.from_env(BASE | {"VEO_LITELLM_GEMINI_BASE_URL": "http://sim:1/", "VEO_LITELLM_GEMINI_API_KEY": "sk-secret", "VEO_WEBHOOK_SECRET": "whsec_x"})
    assert s.providers["litellm-gemini"].base_url == "http://sim:1"
    assert s.providers["litellm-gemini"].api_key == "sk-secret"
    assert "sk-secret" not in repr(s) and "whsec_x" not in repr(s)


def test_settings_are_frozen():
    s = Settings.from_env(BASE)
    with pytest.raises(Exception):
        s.bucket = "other"


@pytest.mark.parametrize("env,words", [
    ({"VEO_BUCKET": "b"}, "GOOGLE_CLOUD_PROJECT"),
    ({"GOOGLE_CLOUD_PROJECT": "p"}, "VEO_BUCKET"),
    (BASE | {"VEO_PROVIDERS_ENABLED": "litellm-gemini,nope"}, "nope"),
    (BASE | {"VEO_PROVIDERS_ENABLED": "newapi"}, "VEO_DEFAULT_PROVIDER"),
])
def test_unrunnable_environments_are_refused_clearly(env, words):
    with pytest.raises(ConfigError, match=words):
        Settings.from_env(env)


def test_task_urls_are_required_only_when_used():
    s = Settings.from_env(BASE | {"VEO_POLL_JOB_URL": "http://x/"})
    assert s.task_url("poll_job") == "http://x/"
    with pytest.raises(ConfigError, match="VEO_FINALIZE_JOB_URL"):
        s.task_url("finalize_job")


def test_secret_manager_placeholders_count_as_missing():
    s = Settings.from_env(BASE | {"VEO_WEBHOOK_SECRET": "UNSET", "VEO_NEWAPI_API_KEY": "UNSET", "VEO_FLOW_GOOGLE_TOKEN": "UNSET"})
    assert s.webhook_secret is None
    assert s.providers["newapi"].api_key is None
    assert "GOOGLE_TOKEN" not in s.providers["flow"].extras
