"""Credentials never leave in logs or job errors, even when someone quotes them back to us."""
import json

from veorelay.config import Settings
from veorelay.core import redaction
from veorelay.core.errors import JobError
from veorelay.gcp import logs


def test_known_secrets_and_credential_parameters_are_scrubbed():
    redaction.register(["sk-live-0123456789", None, "short"])
    text = "provider said: bad key sk-live-0123456789 at https://x.test/v1?alt=media&key=AIzaSyABCDEF&x=1"
    assert redaction.redact_text(text) == "provider said: bad key [redacted] at https://x.test/v1?alt=media&key=[redacted]&x=1"
    assert redaction.redact({"detail": ["sk-live-0123456789"], "n": 3}) == {"detail": ["[redacted]"], "n": 3}
    assert redaction.redact_text("a short secret stays") == "a short secret stays"  # under 8 chars: not registered


def test_a_log_line_quoting_a_secret_or_a_traceback_is_scrubbed(capsys):
    redaction.register(["whsec_c2VjcmV0LXNpZ25pbmcta2V5"])
    logs.configure("INFO")
    try:
        raise RuntimeError("signing with whsec_c2VjcmV0LXNpZ25pbmcta2V5 failed")
    except RuntimeError:
        logs.error("delivery crashed", exc_info=True, url="https://hooks.test/in?token=abc123")
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert "whsec_c2VjcmV0" not in line and "abc123" not in line
    assert json.loads(line)["url"] == "https://hooks.test/in?token=[redacted]"


def test_settings_list_every_credential_they_hold():
    s = Settings.from_env({
        "GOOGLE_CLOUD_PROJECT": "p", "VEO_BUCKET": "b", "VEO_LITELLM_GEMINI_API_KEY": "sk-litellm-123456",
        "VEO_FLOW_GOOGLE_TOKEN": "ya29.google-token", "VEO_WEBHOOK_SECRET": "whsec_" + "QUJD" * 8,
    })
    assert {"sk-litellm-123456", "ya29.google-token", "whsec_" + "QUJD" * 8} <= set(s.secret_values())


def test_job_errors_are_scrubbed_before_they_are_stored():
    redaction.register(["sk-echoed-by-provider-1"])
    error = JobError("access_denied", "key sk-echoed-by-provider-1 refused", False, {"body": "sk-echoed-by-provider-1"})
    assert "sk-echoed" not in json.dumps(redaction.redact_error(error).to_dict())
    assert redaction.redact_error(error).code == "access_denied"
