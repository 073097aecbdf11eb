"""Provider completion events end to end on the local stack: the simulated Gemini API and Vertex
push (per-request webhook JWTs, Pub/Sub with an OIDC token) to provider_events, which queues an
immediate check; a lost event is caught by the backstop; a forged one changes nothing."""
from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import UTC, datetime

import pytest
import requests
import standardwebhooks

from dev.stack import DEV_GEMINI_WEBHOOK_SECRET

from .helpers import unique_prompt

pytestmark = pytest.mark.integration


def events_url(client) -> str:
    return client.stack.env["VEO_PROVIDER_EVENTS_URL"]


def pushes(client, prompt: str) -> list[dict]:
    return client.sim_calls(prompt, "push")


def wait_for_pushes(client, prompt: str, count: int = 1, timeout_s: float = 10) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    while True:
        got = pushes(client, prompt)
        if len(got) >= count or time.monotonic() > deadline:
            return got
        time.sleep(0.1)


@pytest.mark.parametrize("provider, mode", [("gemini", "request"), ("vertex", "pubsub")])
def test_a_pushed_job_finishes_with_at_most_two_status_checks(client, provider, mode):
    prompt = unique_prompt(directive="[sim:duration=0.3]")
    resp = client.submit({"prompt": prompt, "provider": provider})
    assert resp.status_code == 202, resp.text
    job = client.wait(resp.json()["id"], timeout_s=30)

    assert job["status"] == "succeeded", job
    (push,) = wait_for_pushes(client, prompt)
    assert push["mode"] == mode and push["status"] == 200
    assert len(client.sim_calls(prompt, "poll")) <= 2


def test_a_dropped_event_still_finishes_by_the_backstop(client):
    prompt = unique_prompt(directive="[sim:duration=1,event_drop]")
    job = client.wait(client.submit({"prompt": prompt, "provider": "gemini"}).json()["id"], timeout_s=60)

    assert job["status"] == "succeeded" and pushes(client, prompt) == []
    assert client.sim_calls(prompt, "poll")  # found by a check of its chain


def test_duplicated_and_delayed_events_make_one_finished_job(client):
    prompt = unique_prompt(directive="[sim:duration=0.3,event_dup=3,event_delay=0.2]")
    job = client.wait(client.submit({"prompt": prompt, "provider": "gemini"}).json()["id"], timeout_s=30)

    assert job["status"] == "succeeded"
    assert [p["status"] for p in wait_for_pushes(client, prompt, 3)] == [200, 200, 200]


def test_a_badly_signed_event_is_refused_and_the_job_finishes_anyway(client):
    prompt = unique_prompt(directive="[sim:duration=0.5,event_badsig]")
    job = client.wait(client.submit({"prompt": prompt, "provider": "vertex"}).json()["id"], timeout_s=60)

    assert job["status"] == "succeeded"
    assert [p["status"] for p in wait_for_pushes(client, prompt)] == [401]


def _static_event(operation: str, event_id: str | None = None, secret: str = DEV_GEMINI_WEBHOOK_SECRET) -> tuple[bytes, dict]:
    body = json.dumps({"type": "video.generated", "version": "v1", "data": {"name": operation}}).encode()
    msg_id = event_id or f"msg_{uuid.uuid4().hex}"
    now = datetime.now(UTC)
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(int(now.timestamp())), "Content-Type": "application/json",
               "webhook-signature": standardwebhooks.Webhook(secret).sign(msg_id, now, body.decode())}
    return body, headers


def test_forged_events_cost_at_most_one_provider_call_and_change_nothing(client, stack):
    """Validly signed events (a replay, or a sender holding the secret) for a job still running:
    all of one window make one check, which finds the job running; the job is as it was."""
    prompt = unique_prompt(directive="[sim:duration=30]")
    job_id = client.submit({"prompt": prompt, "provider": "gemini"}).json()["id"]
    client.wait(job_id, {"running"}, timeout_s=20)
    operation = f"models/{client.job(job_id)['model']}/operations/{client.sim_operation(prompt)['id']}"

    outcomes = []
    for _ in range(5):
        body, headers = _static_event(operation)
        resp = requests.post(events_url(client), data=body, headers=headers, timeout=10)
        assert resp.status_code == 200, resp.text
        outcomes.append(resp.json()["outcome"])

    assert outcomes.count("queued") <= 1 and set(outcomes) <= {"queued", "duplicate"}
    time.sleep(1.0)
    assert client.job(job_id)["status"] == "running"
    client.cancel(job_id)


def test_a_forged_signature_is_401_and_writes_nothing(client):
    prompt = unique_prompt(directive="[sim:duration=30]")
    job_id = client.submit({"prompt": prompt, "provider": "gemini"}).json()["id"]
    before = client.wait(job_id, {"running"}, timeout_s=20)
    operation = f"models/{before['model']}/operations/{client.sim_operation(prompt)['id']}"
    wrong = "whsec_" + base64.b64encode(b"an attacker's own secret, 32 b!!").decode()

    body, headers = _static_event(operation, secret=wrong)
    resp = requests.post(events_url(client), data=body, headers=headers, timeout=10)
    stale_body, stale_headers = _static_event(operation)
    stale_headers["webhook-timestamp"] = str(int(time.time()) - 600)  # a replay from ten minutes ago
    stale = requests.post(events_url(client), data=stale_body, headers=stale_headers, timeout=10)

    assert resp.status_code == 401 and stale.status_code == 401
    assert resp.json()["error"]["code"] == "unauthenticated"
    assert client.job(job_id) == before  # not a field changed
    client.cancel(job_id)
