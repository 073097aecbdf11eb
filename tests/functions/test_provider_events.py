"""The public provider_events function through the functions-framework test client, against the
stack's emulators: a signed event queues one named check (a duplicate collapses into it), a bad
signature is 401 with nothing written, and what is not an event is refused."""
from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime

import pytest
import requests
import standardwebhooks

from dev.stack import DEV_GEMINI_WEBHOOK_SECRET, DEV_PUBSUB_PUSHER

pytestmark = pytest.mark.integration


def signed_event(operation: str, secret: str = DEV_GEMINI_WEBHOOK_SECRET) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"type": "video.generated", "version": "v1", "data": {"name": operation}}).encode()
    msg_id, now = f"msg_{uuid.uuid4().hex}", datetime.now(UTC)
    return body, {"webhook-id": msg_id, "webhook-timestamp": str(int(now.timestamp())),
                  "webhook-signature": standardwebhooks.Webhook(secret).sign(msg_id, now, body.decode())}


@pytest.fixture(scope="module")
def running_job(stack, function_env):
    """A gemini job of the stack still generating (30 s): its id and its operation."""
    api = stack.function_urls["api"].rstrip("/")
    auth = {"Authorization": f"Bearer {stack.api_key}"}
    prompt = f"a lighthouse in a storm #{uuid.uuid4().hex[:8]} [sim:duration=30]"
    job_id = requests.post(f"{api}/jobs", json={"prompt": prompt, "provider": "gemini"}, headers=auth, timeout=30).json()["id"]
    deadline = time.monotonic() + 20
    while (job := requests.get(f"{api}/jobs/{job_id}", headers=auth, timeout=10).json())["status"] != "running":
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
    ops = requests.get(f"{stack.simulator_url}/_sim/operations", params={"hash": "0"}, timeout=10).json()
    (op,) = [o for o in ops if o["prompt"] == prompt]
    yield job_id, f"models/{job['model']}/operations/{op['id']}"
    requests.post(f"{api}/jobs/{job_id}:cancel", headers=auth, timeout=10)


def test_a_signed_event_queues_one_check_and_a_duplicate_collapses(bare, running_job):
    _, operation = running_job
    client = bare("provider_events")
    body, headers = signed_event(operation)

    first = client.post("/", data=body, headers=headers)
    again = client.post("/", data=body, headers=headers)  # the provider's redelivery

    assert first.status_code == 200 and first.get_json()["outcome"] in ("queued", "duplicate")
    assert again.status_code == 200 and again.get_json()["outcome"] == "duplicate"


def test_an_event_for_an_operation_nobody_has_is_a_no_op(bare):
    body, headers = signed_event(f"models/veo-3.0-generate-001/operations/{uuid.uuid4().hex}")
    resp = bare("provider_events").post("/", data=body, headers=headers)
    assert resp.status_code == 200 and resp.get_json()["outcome"] == "unknown"


def test_a_bad_signature_is_401_and_writes_nothing(bare, running_job, jobs_collection):
    job_id, operation = running_job
    before = jobs_collection.document(job_id).get().to_dict()
    body, headers = signed_event(operation, secret="whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQQ==")

    resp = bare("provider_events").post("/", data=body, headers=headers)
    unsigned = bare("provider_events").post("/", data=body)

    assert resp.status_code == 401 and unsigned.status_code == 401
    assert resp.get_json()["error"]["code"] == "unauthenticated"
    assert jobs_collection.document(job_id).get().to_dict() == before


def test_a_pubsub_push_without_the_subscriptions_token_is_401(bare, stack):
    envelope = {"message": {"data": "e30=", "messageId": "1"}, "subscription": "projects/p/subscriptions/s"}
    for token in (stack.oidc_token(stack.env["VEO_PROVIDER_EVENTS_URL"]),  # the invoker's, not the pusher's
                  stack.oidc_token(stack.env["VEO_PROVIDER_EVENTS_URL"], email=DEV_PUBSUB_PUSHER)):  # signed by another key
        resp = bare("provider_events").post("/", json=envelope, headers={"Authorization": f"Bearer {token}"})
        assert (resp.status_code, resp.get_json()["error"]["code"]) == (401, "unauthenticated"), resp.get_json()
        assert resp.headers["WWW-Authenticate"].startswith("Bearer ")


def test_what_is_not_an_event_is_refused(bare):
    client = bare("provider_events")
    assert client.get("/").status_code == 405
    assert client.post("/", data=b"x" * (64 * 1024 + 1), headers={"Content-Type": "application/json"}).status_code == 413
