"""Webhook settings: per-client secrets (rotation), the retry schedule, signed URL lifetime."""
import json

import pytest

from veorelay.config import ConfigError, Settings

BASE = {"GOOGLE_CLOUD_PROJECT": "p", "VEO_BUCKET": "b"}
NEW, OLD = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_b2xkLW9sZC1vbGQtb2xkLXNlY3JldC0xMjM0NQ=="


def test_each_client_has_its_secrets_and_others_fall_back_to_the_default():
    s = Settings.from_env(BASE | {"VEO_WEBHOOK_SECRET": OLD, "VEO_WEBHOOK_SECRETS": json.dumps({"acme": [NEW, OLD]})})
    assert s.webhooks.secrets_for("acme") == (NEW, OLD)
    assert s.webhooks.secrets_for("someone-else") == (OLD,)
    assert Settings.from_env(BASE).webhooks.secrets_for("acme") == ()
    assert NEW not in repr(s) and OLD not in repr(s)


def test_defaults_are_the_documented_ones():
    w = Settings.from_env(BASE).webhooks
    assert w.retry_schedule_s == (0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
    assert w.signed_url_ttl_s == 24 * 3600 and w.progress_interval_s == 30
    assert Settings.from_env(BASE).webhook_timeout_s == 15


def test_short_schedules_for_tests():
    s = Settings.from_env(BASE | {"VEO_WEBHOOK_RETRY_SCHEDULE": "0,0.5,1", "VEO_SIGNED_URL_TTL_SECONDS": "600"})
    assert s.webhooks.retry_schedule_s == (0, 0.5, 1) and s.webhooks.signed_url_ttl_s == 600


@pytest.mark.badinput
@pytest.mark.parametrize("env,words", [
    ({"VEO_WEBHOOK_SECRETS": "{not json " + NEW}, "not valid JSON"),
    ({"VEO_WEBHOOK_SECRETS": json.dumps([NEW])}, "JSON object"),
    ({"VEO_WEBHOOK_SECRETS": json.dumps({"acme": []})}, "acme"),
    ({"VEO_WEBHOOK_SECRETS": json.dumps({"acme": [NEW, "whsec_not base64!" + OLD]})}, "acme"),
    ({"VEO_WEBHOOK_SECRETS": json.dumps({"acme": [NEW, 5]})}, "acme"),
    ({"VEO_WEBHOOK_RETRY_SCHEDULE": "0,5,soon"}, "comma-separated"),
    ({"VEO_WEBHOOK_RETRY_SCHEDULE": "0,-5"}, "between 0"),
    ({"VEO_WEBHOOK_RETRY_SCHEDULE": "0,99999999"}, "between 0"),
    ({"VEO_SIGNED_URL_TTL_SECONDS": "604801"}, "VEO_SIGNED_URL_TTL_SECONDS"),
    ({"VEO_SIGNED_URL_TTL_SECONDS": "0"}, "VEO_SIGNED_URL_TTL_SECONDS"),
])
def test_bad_webhook_settings_are_refused_without_quoting_a_secret(env, words):
    with pytest.raises(ConfigError, match=words) as refused:
        Settings.from_env(BASE | env)
    assert NEW not in str(refused.value) and OLD not in str(refused.value)
