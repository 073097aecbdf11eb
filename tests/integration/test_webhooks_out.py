"""Webhooks out, on the real emulators: signed events (with a secret being rotated), signed URLs
to the videos, the retry schedule driven by a receiver that fails on purpose, and redelivery."""
from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import standardwebhooks
from google.cloud import firestore

from .helpers import Client, crc32c, md5, unique_prompt
from .reliability import drained

pytestmark = pytest.mark.integration

@pytest.fixture(scope="module")
def secrets(stack):
    """Client "default" is rotating: the new secret first, the old one (the stack's) after it."""
    new, old = json.loads(stack.env["VEO_WEBHOOK_SECRETS"])["default"]
    assert old == stack.env["VEO_WEBHOOK_SECRET"]
    return {"new": new, "old": old}


@pytest.fixture(scope="module")
def finished(client):
    """One job with the default events, finished, both its events received."""
    hook_url, hook_path = client.hook_url("events")
    prompt = unique_prompt("a paper boat on a pond")
    resp = client.submit({"prompt": prompt, "webhook_url": hook_url, "metadata": {"order": 7}})
    assert resp.status_code == 202, resp.text
    job = client.wait(resp.json()["id"])
    assert job["status"] == "succeeded", job
    hooks = {e: client.webhooks(hook_path, event=e) for e in ("job.running", "job.succeeded")}
    return {"job": job, "path": hook_path, "hooks": hooks, "prompt": prompt}


def script(client: Client, path: str, responses: list) -> None:
    requests.post(f"{client.receiver}/_behavior", json={"path": path, "responses": responses}, timeout=5).raise_for_status()


def settled_deliveries(client: Client, job_id: str, event: str, count: int = 1, timeout_s: float = 90) -> list[dict]:
    """The job's recorded attempts for `event` (at least `count`), once the last one is not
    waiting for a retry."""
    deadline = time.monotonic() + timeout_s
    while True:
        records = [d for d in client.job(job_id)["webhook"]["deliveries"] if d["event"] == event]
        if len(records) >= count and records[-1]["outcome"] != "retrying":
            return sorted(records, key=lambda d: d["attempt"])
        if time.monotonic() > deadline:
            raise AssertionError(f"{event} still retrying after {timeout_s}s: {records}")
        time.sleep(0.25)


def at(record: dict) -> datetime:
    return datetime.fromisoformat(record["at"].replace("Z", "+00:00"))


def test_each_event_is_signed_with_the_current_and_the_retiring_secret(finished, secrets):
    for event_type, [hook] in finished["hooks"].items():
        signatures = hook["headers"]["webhook-signature"].split(" ")
        assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)
        for secret in secrets.values():  # receivers on either side of the rotation accept it
            event = standardwebhooks.Webhook(secret).verify(hook["body"], hook["headers"])
            assert event["type"] == event_type and event["data"]["id"] == finished["job"]["id"]
        assert hook["headers"]["webhook-id"].startswith("msg_")
    running = json.loads(finished["hooks"]["job.running"][0]["body"])
    assert set(running) == {"type", "timestamp", "data"} and running["data"]["metadata"] == {"order": 7}


def test_a_succeeded_event_carries_a_signed_url_that_downloads_the_video(finished):
    [hook] = finished["hooks"]["job.succeeded"]
    event = json.loads(hook["body"])
    [output] = event["data"]["outputs"]
    assert output["uri"] == finished["job"]["outputs"][0]["uri"]
    query = parse_qs(urlsplit(output["signed_url"]).query)
    assert query["X-Goog-Algorithm"] == ["GOOG4-RSA-SHA256"] and query["X-Goog-Expires"] == ["86400"]
    expires = datetime.fromisoformat(output["signed_url_expires_at"].replace("Z", "+00:00"))
    sent = datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00"))
    assert timedelta(hours=23) < expires - sent <= timedelta(hours=24, minutes=1)
    video = requests.get(output["signed_url"], timeout=30)
    assert video.status_code == 200 and video.content[4:8] == b"ftyp"
    assert (crc32c(video.content), md5(video.content)) == (output["crc32c"], output["md5"])


def test_every_attempt_is_on_the_job_and_no_secret_is_anywhere(finished, stack_env, secrets, client):
    stack = stack_env  # its env is in os.environ for this test: firestore.Client() finds the emulator
    job = client.job(finished["job"]["id"])
    assert job["webhook"]["events"] == ["job.running", "job.succeeded", "job.failed", "job.cancelled"]
    records = {d["event"]: d for d in job["webhook"]["deliveries"]}
    assert set(records) == {"job.running", "job.succeeded"}
    for event_type, record in records.items():
        assert record["status_code"] == 200 and record["outcome"] == "delivered" and record["error"] is None
        assert record["attempt"] == 1 and record["latency_ms"] >= 0 and record["next_attempt_at"] is None
        assert record["webhook_id"] == finished["hooks"][event_type][0]["headers"]["webhook-id"]
    stored = firestore.Client(project=stack.env["GOOGLE_CLOUD_PROJECT"]).collection("jobs").document(job["id"]).get().to_dict()
    logs = "".join(p.read_text(errors="replace") for p in (stack.workdir / "logs").glob("*.log"))
    for secret in secrets.values():
        assert secret not in json.dumps(stored, default=str) and secret.removeprefix("whsec_") not in logs


def test_webhook_events_limits_what_is_sent(client, stack):
    hook_url, hook_path = client.hook_url("only-end")
    job_id = client.submit({"prompt": unique_prompt(), "webhook_url": hook_url, "webhook_events": ["job.succeeded"]}).json()["id"]
    assert client.wait(job_id)["status"] == "succeeded"
    client.webhooks(hook_path, event="job.succeeded")
    drained(stack, "veo-webhooks", job_id)  # every webhook task of the job has run: a job.running would be in by now
    got = [json.loads(r["body"])["type"] for r in client.webhooks(hook_path, timeout_s=0)]
    assert got == ["job.succeeded"]
    assert client.job(job_id)["webhook"]["events"] == ["job.succeeded"]


@pytest.mark.faults
@pytest.mark.parametrize("name,responses,expected", [
    # (receiver's scripted answers, then (status_code, outcome) of each attempt recorded)
    ("retry-after", [503, {"status": 503, "retry_after": 2}, 200], [(503, "retrying"), (503, "retrying"), (200, "delivered")]),
    ("exhausted", [500] * 8, [(500, "retrying")] * 4 + [(500, "gave_up")]),
    ("gone", [503, 410, 200], [(503, "retrying"), (410, "gone")]),
    ("redirect", [{"status": 302, "headers": {"Location": "http://169.254.169.254/"}}, 200], [(302, "retrying"), (200, "delivered")]),
    ("slow", [{"status": 200, "delay": 6}, 200], [(None, "retrying"), (200, "delivered")]),
])
def test_a_failing_receiver_gets_the_retry_schedule(client, name, responses, expected):
    """The test stack's schedule is 0, 0.5, 0.5, 1, 1 s (five attempts) and its timeout 4 s."""
    hook_url, hook_path = client.hook_url(name)
    script(client, hook_path, responses)
    job_id = client.submit({"prompt": unique_prompt(), "webhook_url": hook_url, "webhook_events": ["job.running"]}).json()["id"]

    records = settled_deliveries(client, job_id, "job.running")
    assert [(r["status_code"], r["outcome"]) for r in records] == expected
    assert [r["attempt"] for r in records] == list(range(1, len(expected) + 1))
    received = client.webhooks(hook_path, count=len(expected))
    assert len(received) == len(expected)  # nothing after a 410 or the last scheduled attempt
    assert {r["headers"]["webhook-id"] for r in received} == {records[0]["webhook_id"]}  # one event, one id
    assert all(r["next_attempt_at"] for r in records[:-1]) and records[-1]["next_attempt_at"] is None
    if name == "retry-after":  # the receiver's Retry-After (2 s) beat the schedule's 0.5 s
        assert at(records[2]) - at(records[1]) >= timedelta(seconds=1.9)
    if name == "redirect":
        assert records[0]["error"] == "receiver answered 302 (redirects are not followed)"
    if name == "slow":
        assert records[0]["error"] == "no answer within 4s"


def test_redeliver_sends_the_last_event_again_with_the_same_id(client, finished, secrets):
    job_id, path = finished["job"]["id"], finished["path"]
    original = finished["hooks"]["job.succeeded"][0]
    resp = requests.post(f"{client.api}/jobs/{job_id}/webhooks:redeliver", headers=client.auth, timeout=10)
    assert resp.status_code == 202, resp.text
    assert resp.json() == {"event": "job.succeeded", "webhook_id": original["headers"]["webhook-id"], "queued": True}
    again = client.webhooks(path, count=2, event="job.succeeded")
    assert len(again) == 2 and again[1]["headers"]["webhook-id"] == original["headers"]["webhook-id"]
    event = standardwebhooks.Webhook(secrets["new"]).verify(again[1]["body"], again[1]["headers"])
    assert event["data"]["outputs"][0]["signed_url"]  # signed afresh
    records = settled_deliveries(client, job_id, "job.succeeded", count=2)
    assert [(r.get("redelivery", False), r["outcome"]) for r in records] == [(False, "delivered"), (True, "delivered")]


@pytest.mark.badinput
@pytest.mark.parametrize("case,status,code", [
    ("no webhook", 409, "conflict"),
    ("no such job", 404, "not_found"),
    ("another client's job", 404, "not_found"),
    ("no event it asked for", 409, "conflict"),
    ("GET", 405, "invalid_request"),
])
def test_redeliver_refuses_what_it_cannot_do(client, stack, finished, case, status, code):
    caller, method, job_id = client, "post", finished["job"]["id"]
    if case == "no webhook":
        job_id = client.submit({"prompt": "no webhook here [sim:never_finish]"}).json()["id"]
    elif case == "no event it asked for":  # cancelled before it could succeed: job.succeeded never happened
        job_id = client.submit({"prompt": unique_prompt(directive="[sim:never_finish]"), "webhook_url": client.hook_url("none")[0],
                                "webhook_events": ["job.succeeded"]}).json()["id"]
        client.cancel(job_id)
    elif case == "no such job":
        job_id = "0" * 32
    elif case == "another client's job":
        caller = Client(stack, "other")
    elif case == "GET":
        method = "get"
    resp = getattr(requests, method)(f"{client.api}/jobs/{job_id}/webhooks:redeliver", headers=caller.auth, timeout=10)
    assert resp.status_code == status and resp.json()["error"]["code"] == code, resp.text
    if case == "no webhook":
        client.cancel(job_id)


@pytest.mark.badinput
@pytest.mark.parametrize("payload", [
    {"event": "job.exploded"}, {"event": "job.succeeded", "attempt": 0}, {"event": "job.succeeded", "attempt": "2"},
    {"event": "job.progress", "seq": "x"}, {"event": "job.succeeded", "chain": "../../x"}, {},
])
def test_a_malformed_webhook_task_is_dropped_not_sent(client, finished, payload):
    before = len(client.job(finished["job"]["id"])["webhook"]["deliveries"])
    resp = client.send_task("deliver_webhook", {"job_id": finished["job"]["id"], **payload})
    assert resp.status_code == 200  # answered: a retry could not fix it
    assert len(client.job(finished["job"]["id"])["webhook"]["deliveries"]) == before
