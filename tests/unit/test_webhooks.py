import json
from datetime import datetime, timezone

import standardwebhooks

from veorelay.webhooks import event_body, signed_headers, webhook_id

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_signature_verifies_with_the_standard_webhooks_library():
    now = datetime.now(timezone.utc)
    body = event_body("job.succeeded", {"id": "j1", "status": "succeeded"}, now)
    headers = signed_headers(SECRET, webhook_id("j1", "job.succeeded"), body, now)
    payload = standardwebhooks.Webhook(SECRET).verify(body, headers)
    assert payload["type"] == "job.succeeded" and payload["data"]["id"] == "j1"
    assert headers["webhook-signature"].startswith("v1,")


def test_webhook_id_is_stable_per_job_and_event():
    assert webhook_id("j1", "job.succeeded") == webhook_id("j1", "job.succeeded")
    assert webhook_id("j1", "job.succeeded") != webhook_id("j1", "job.failed")
    assert webhook_id("j1", "job.succeeded") != webhook_id("j2", "job.succeeded")


def test_event_body_is_compact_json_with_type_timestamp_and_data():
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert json.loads(event_body("job.failed", {"id": "x"}, now)) == {"type": "job.failed", "timestamp": "2026-01-02T03:04:05Z", "data": {"id": "x"}}
