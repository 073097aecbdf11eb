"""The webhook verifiers in docs/EVENTS.md are meant to be copied: run them as written."""
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from veorelay.core.events import webhook_id
from veorelay.net.webhooks import event_body, signed_headers

DOC = Path(__file__).resolve().parents[2] / "docs" / "EVENTS.md"
NEW, OLD = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_b2xkLW9sZC1vbGQtb2xkLXNlY3JldC0xMjM0NQ=="


def snippet(name: str) -> dict:
    """Execute the ```python block after `<!-- tested: name -->` and return its namespace."""
    match = re.search(rf"<!-- tested: {name} -->\n```python\n(.*?)```", DOC.read_text(), re.S)
    assert match, f"no tested snippet {name} in {DOC}"
    namespace: dict = {"__name__": f"doc_{name}"}
    exec(compile(match.group(1), f"{DOC}:{name}", "exec"), namespace)
    return namespace


def signed_event(secrets, sent_at=None):
    now = sent_at or datetime.now(UTC)
    body = event_body("job.succeeded", {"id": "j1", "status": "succeeded"}, now)
    return body.encode(), signed_headers(secrets, webhook_id("j1", "job.succeeded"), body, now)


def test_the_plain_hmac_verifier_accepts_either_secret_during_a_rotation():
    verify = snippet("verify_hmac")["verify"]
    body, headers = signed_event([NEW, OLD])
    assert verify(NEW, headers, body)["data"]["id"] == "j1"
    assert verify(OLD, headers, body)["type"] == "job.succeeded"


@pytest.mark.badinput
def test_the_plain_hmac_verifier_refuses_tampering_other_secrets_and_replays():
    verify = snippet("verify_hmac")["verify"]
    body, headers = signed_event([NEW])
    with pytest.raises(ValueError, match="no valid signature"):
        verify(NEW, headers, body.replace(b"succeeded", b"failed"))
    with pytest.raises(ValueError, match="no valid signature"):
        verify(OLD, headers, body)
    stale_body, stale = signed_event([NEW], datetime.now(UTC) - timedelta(minutes=10))
    with pytest.raises(ValueError, match="too old"):
        verify(NEW, stale, stale_body)


def test_the_standardwebhooks_receiver_accepts_a_signed_event_and_refuses_a_forged_one(monkeypatch, capsys):
    monkeypatch.setenv("VEO_RELAY_WEBHOOK_SECRET", OLD)
    app = snippet("verify_standardwebhooks")["app"]
    body, headers = signed_event([NEW, OLD])
    ok = app.test_client().post("/hooks/veo", data=body, headers=headers)
    assert ok.status_code == 204 and f"{headers['webhook-id']} job.succeeded j1 succeeded" in capsys.readouterr().out
    forged = app.test_client().post("/hooks/veo", data=body.replace(b"j1", b"j2"), headers=headers)
    assert forged.status_code == 400


@pytest.mark.parametrize("name", ["verify_standardwebhooks", "verify_hmac"])
def test_the_readme_copies_of_the_verifiers_are_the_tested_ones(name):
    readme = (DOC.parents[1] / "README.md").read_text()
    pattern = rf"<!-- tested: {name} -->\n```python\n(.*?)```"
    assert re.search(pattern, readme, re.S).group(1) == re.search(pattern, DOC.read_text(), re.S).group(1)
