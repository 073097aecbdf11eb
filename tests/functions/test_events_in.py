"""Events in: jobs started by a request object dropped in the bucket (on_request_object, called
the way Eventarc calls it), job.progress throttling, the connect-time SSRF check seen on the
job, and the documented bucket consumer run against a real job.json."""
from __future__ import annotations

import hashlib
import json
import socket
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
import standardwebhooks
from functions_framework import create_app
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from tests.integration.helpers import landed_job_json

pytestmark = pytest.mark.integration

CONSUMER = Path(__file__).resolve().parents[2] / "docs" / "examples" / "bucket_consumer" / "main.py"


@pytest.fixture(scope="module")
def bucket(function_env) -> storage.Bucket:
    client = storage.Client(project=function_env["GOOGLE_CLOUD_PROJECT"], credentials=AnonymousCredentials(),
                            client_options={"api_endpoint": function_env["STORAGE_EMULATOR_HOST"]})
    return client.bucket(function_env["VEO_BUCKET"])


def finalized(call, bucket_name: str, blob: storage.Blob | None = None, name: str | None = None,
              event_id: str | None = None, target: str = "on_request_object", app=None):
    """POST a google.cloud.storage.object.v1.finalized CloudEvent, as Eventarc does (binary mode)."""
    name = name or blob.name
    data = {"bucket": bucket_name, "name": name, "generation": str(blob.generation if blob else 1), "metageneration": "1",
            "size": str(blob.size if blob else 10), "contentType": "application/json"}
    headers = {
        "ce-id": event_id or uuid.uuid4().hex, "ce-specversion": "1.0", "ce-type": "google.cloud.storage.object.v1.finalized",
        "ce-source": f"//storage.googleapis.com/projects/_/buckets/{bucket_name}", "ce-subject": f"objects/{name}",
        "ce-time": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }
    return (app or call(target)).post("/", json=data, headers=headers)


def drop(bucket: storage.Bucket, body, name: str | None = None) -> storage.Blob:
    blob = bucket.blob(name or f"requests/test-{uuid.uuid4().hex[:10]}.json")
    blob.upload_from_string(body if isinstance(body, (bytes, str)) else json.dumps(body), content_type="application/json")
    return blob


def result_of(bucket: storage.Blob, request_blob: storage.Blob) -> dict:
    return json.loads(bucket.blob(request_blob.name.removesuffix(".json") + ".result.json").download_as_text())


def wait_job(read, job_id: str, timeout_s: float = 60) -> dict:
    """`read(job_id)` until the job ends: call("api") for the API client's jobs, `stored` for
    the bucket's (client "bucket" has no API key on the test stack)."""
    deadline = time.monotonic() + timeout_s
    while True:
        job = read(job_id)
        if job["status"] in {"succeeded", "failed", "cancelled"} or time.monotonic() > deadline:
            return job
        time.sleep(0.25)


def cancel_as(client_id: str, job_id: str) -> None:
    from veorelay.runtime import runtime
    from veorelay.steps.cancel import cancel_job

    assert runtime().store.get(job_id)["client_id"] == client_id
    cancel_job(runtime(), job_id)


def receiver_got(stack, path: str, count: int = 1, timeout_s: float = 30) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    while True:
        got = requests.get(f"{stack.webhook_receiver_url}/_received", params={"path": path}, timeout=5).json()
        if len(got) >= count or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


def wait_running(rt, job_id: str, timeout_s: float = 30) -> dict:
    deadline = time.monotonic() + timeout_s
    while (job := rt.store.get(job_id))["status"] != "running":
        assert time.monotonic() < deadline, f"job {job_id} not running after {timeout_s}s: {job['status']}"
        time.sleep(0.1)
    return job


def job_count(jobs_collection) -> int:
    return jobs_collection.count().get()[0][0].value


# ------------------------------------------------------------------ jobs from request objects


def test_a_dropped_request_object_starts_a_job_and_gets_its_result_beside_it(call, bucket, stack, function_env, jobs_collection):
    hook_path = f"/hooks/dropped-{uuid.uuid4().hex[:8]}"
    prompt = f"a kite over the dunes #{uuid.uuid4().hex[:8]}"
    request_blob = drop(bucket, {"prompt": prompt, "webhook_url": stack.webhook_receiver_url + hook_path,
                                 "webhook_events": ["job.succeeded"], "metadata": {"source": "bucket"}})
    event_id = uuid.uuid4().hex
    resp = finalized(call, bucket.name, request_blob, event_id=event_id)
    assert resp.status_code == 200, resp.get_data(as_text=True)

    result = result_of(bucket, request_blob)
    assert result["error"] is None and result["job"]["status"] == "accepted"
    assert result["request"] == {"bucket": bucket.name, "name": request_blob.name, "generation": str(request_blob.generation),
                                 "event_id": event_id}
    job = wait_job(lambda job_id: jobs_collection.document(job_id).get().to_dict(), result["job"]["id"])
    assert job["status"] == "succeeded" and job["metadata"] == {"source": "bucket"} and job["request"]["prompt"] == prompt
    assert job["client_id"] == "bucket"  # VEO_REQUESTS_CLIENT_ID's default

    # Jobs from the bucket belong to client "bucket", which has no secret of its own in the
    # test stack: its webhooks are signed with VEO_WEBHOOK_SECRET alone.
    [hook] = receiver_got(stack, hook_path)
    assert len(hook["headers"]["webhook-signature"].split(" ")) == 1
    event = standardwebhooks.Webhook(function_env["VEO_WEBHOOK_SECRET"]).verify(hook["body"], hook["headers"])
    assert event["type"] == "job.succeeded" and event["data"]["id"] == job["id"]


@pytest.mark.faults
def test_the_same_event_delivered_twice_starts_one_job(call, bucket, jobs_collection):
    request_blob = drop(bucket, {"prompt": "twice delivered [sim:never_finish]"})
    event_id = uuid.uuid4().hex
    before = job_count(jobs_collection)
    first = finalized(call, bucket.name, request_blob, event_id=event_id)
    first_result = result_of(bucket, request_blob)
    again = finalized(call, bucket.name, request_blob, event_id=event_id)
    assert (first.status_code, again.status_code) == (200, 200)
    assert result_of(bucket, request_blob)["job"]["id"] == first_result["job"]["id"]
    assert job_count(jobs_collection) == before + 1

    # The same name written again is a new object generation: a new request, a new job.
    newer = drop(bucket, {"prompt": "written again [sim:never_finish]"}, name=request_blob.name)
    assert finalized(call, bucket.name, newer).status_code == 200
    second = result_of(bucket, newer)
    assert second["job"]["id"] != first_result["job"]["id"] and second["request"]["generation"] == str(newer.generation)
    assert job_count(jobs_collection) == before + 2
    # A late redelivery of the first event does not overwrite the newer generation's result.
    assert finalized(call, bucket.name, request_blob, event_id=event_id).status_code == 200
    assert result_of(bucket, newer)["job"]["id"] == second["job"]["id"]
    for job_id in (first_result["job"]["id"], second["job"]["id"]):
        cancel_as("bucket", job_id)


@pytest.mark.badinput
@pytest.mark.parametrize("body,code,status_field", [
    ({"prompt": "p", "colour": "blue"}, "invalid_request", "colour"),
    ({"prompt": "   "}, "invalid_request", "prompt"),
    ({"prompt": "p", "sample_count": "2"}, "invalid_request", "sample_count"),
    ({"prompt": "p", "webhook_url": "https://169.254.169.254/latest/meta-data/"}, "invalid_request", "webhook_url"),
    ({"prompt": "p", "webhook_events": ["job.succeeded"]}, "invalid_request", "webhook_events"),
    ({"prompt": "p", "provider": "nope"}, "unsupported_option", "provider"),
    (b"{not json", "invalid_request", None),
    (b"[1, 2, 3]", "invalid_request", None),
    (b"\xff\xfe\x00garbage", "invalid_request", None),
    (b" " * (1024 * 1024 + 1), "payload_too_large", None),
])
def test_a_bad_request_object_gets_the_same_error_as_the_api_and_no_job(call, bucket, jobs_collection, body, code, status_field):
    before = job_count(jobs_collection)
    request_blob = drop(bucket, body)
    resp = finalized(call, bucket.name, request_blob)
    assert resp.status_code == 200  # answered, not retried: retrying cannot fix the request
    result = result_of(bucket, request_blob)
    assert result["job"] is None and result["error"]["message"]
    assert (result["error"]["code"], result["error"]["field"]) == (code, status_field), result["error"]
    if isinstance(body, dict):  # the same refusal POST /jobs gives
        api = call("api").post("/jobs", json=body).get_json()
        assert api["error"] == result["error"]
    assert job_count(jobs_collection) == before


@pytest.mark.parametrize("name", ["videos/abc/0.mp4", "videos/abc/job.json", "requests/x.result.json", "requests/notes.txt", "inputs/x.json"])
def test_objects_that_are_not_requests_are_ignored(call, bucket, jobs_collection, name):
    folder, leaf = name.rsplit("/", 1)
    blob = drop(bucket, {"prompt": "not a request"}, name=f"{folder}/{uuid.uuid4().hex[:6]}-{leaf}")
    before = job_count(jobs_collection)
    assert finalized(call, bucket.name, blob).status_code == 200
    assert bucket.get_blob(blob.name.removesuffix(".json") + ".result.json") is None
    assert job_count(jobs_collection) == before


def test_an_event_from_another_bucket_is_ignored(call, bucket, jobs_collection):
    blob = drop(bucket, {"prompt": "p"})
    before = job_count(jobs_collection)
    assert finalized(call, "someone-elses-bucket", blob).status_code == 200
    assert bucket.get_blob(blob.name.removesuffix(".json") + ".result.json") is None
    assert job_count(jobs_collection) == before


# ------------------------------------------------------------------ job.progress, rebinding


def test_progress_events_are_throttled_to_one_per_window(call, stack, function_env):
    from veorelay.runtime import runtime
    from veorelay.steps.accept import create_job
    from veorelay.steps.deliver import enqueue_progress

    rt = runtime()
    hook_path = f"/hooks/progress-{uuid.uuid4().hex[:8]}"
    job, _ = create_job(rt, {"prompt": "progress [sim:never_finish]", "webhook_url": stack.webhook_receiver_url + hook_path,
                             "webhook_events": ["job.progress"]}, client_id="demo")
    # job.progress goes only while the job runs (steps/deliver.py): the stack's chain submits it.
    job = wait_running(rt, job["id"])
    job = {**job, "progress": {"percent": 40, "stage": "running"}}
    sent = [enqueue_progress(rt, job), enqueue_progress(rt, job)]
    [hook] = receiver_got(stack, hook_path)
    event = standardwebhooks.Webhook(function_env["VEO_WEBHOOK_SECRET"]).verify(hook["body"], hook["headers"])
    assert event["type"] == "job.progress" and event["data"]["id"] == job["id"]
    assert sent == [True, False]  # the second one, in the same window, is the same task
    call("api").post(f"/jobs/{job['id']}:cancel")


@pytest.mark.faults
def test_dns_rebinding_after_submission_is_refused_at_connect_and_shown_on_the_job(call, monkeypatch):
    from veorelay.runtime import runtime
    from veorelay.steps.chain import decode_webhook
    from veorelay.steps.deliver import deliver_webhook

    answers = [["93.184.216.34"], ["169.254.169.254"]]
    real = socket.getaddrinfo

    def rebinding_dns(host, port, *args, **kwargs):
        if host != "rebind.test":
            return real(host, port, *args, **kwargs)
        address = answers.pop(0)[0] if len(answers) > 1 else answers[0][0]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding_dns)
    resp = call("api").post("/jobs", json={"prompt": "rebind [sim:never_finish]", "webhook_url": "https://rebind.test/hook",
                                           "webhook_events": ["job.succeeded"]})
    assert resp.status_code == 202  # at submission the name resolved to a public address
    job_id = resp.get_json()["id"]
    # The job as if it had succeeded (no event is queued for it), so its job.succeeded may go.
    runtime().store.update(job_id, {"accepted", "running"}, {"status": "succeeded"})
    deliver_webhook(runtime(), job_id, decode_webhook({"event": "job.succeeded", "attempt": 1}))
    [record] = call("api").get(f"/jobs/{job_id}").get_json()["webhook"]["deliveries"]
    assert record["outcome"] == "blocked" and record["status_code"] is None and record["next_attempt_at"] is None
    assert record["error"] == "blocked: refused to connect to rebind.test: it resolves to 169.254.169.254, the cloud metadata server"
    call("api").post(f"/jobs/{job_id}:cancel")


@pytest.mark.badinput
@pytest.mark.parametrize("url,words", [
    ("https://[::ffff:169.254.169.254]/", "metadata server"),
    ("https://0.0.0.0/hook", "unspecified"),
    ("http://0x0a.0.0.1/hook", "private address"),  # 10.0.0.1 in hex
    ("https://metadata.google.internal/computeMetadata/v1/", "metadata server"),
    ("https://10.0.0.1/hook", "private address"),
    ("https://[fd00::1]/hook", "unique-local"),
    ("https://user:pw@example.invalid/hook", "without credentials"),
    ("ftp://example.invalid/hook", "https"),
])
def test_the_api_refuses_webhook_urls_inside_the_platform(call, url, words):
    resp = call("api").post("/jobs", json={"prompt": "p", "webhook_url": url})
    error = resp.get_json()["error"]
    assert (resp.status_code, error["code"], error["field"]) == (400, "invalid_request", "webhook_url") and words in error["message"]


# ------------------------------------------------------------------ the documented bucket consumer


def test_the_documented_consumer_finds_every_video_when_job_json_lands(call, bucket, capsys):
    prompt = f"a lantern festival #{uuid.uuid4().hex[:8]} [sim:samples=2]"
    accepted = call("api").post("/jobs", json={"prompt": prompt, "metadata": {"campaign": "spring"}}).get_json()
    job = wait_job(lambda job_id: call("api").get(f"/jobs/{job_id}").get_json(), accepted["id"])
    assert job["status"] == "succeeded", job
    job_json = landed_job_json(bucket, job["id"])
    capsys.readouterr()  # the relay's own log lines so far: only the consumer's output counts below
    consumer = create_app(target="on_job_json", source=str(CONSUMER)).test_client()

    for output in job["outputs"]:  # videos fire the event too: the consumer waits for job.json
        assert finalized(call, bucket.name, bucket.get_blob(output["name"]), app=consumer).status_code == 200
    assert capsys.readouterr().out == ""
    assert job_json.content_type == "application/json"
    assert finalized(call, bucket.name, job_json, app=consumer).status_code == 200

    seen = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(seen) == len(job["outputs"]) == 2  # [sim:samples=2]
    for line, output in zip(seen, job["outputs"]):
        assert line["video"] == output["uri"] and line["content_type"] == "video/mp4"
        assert (line["crc32c"], line["md5"]) == (output["crc32c"], output["md5"])
        assert line["job_id"] == job["id"] and (line["provider"], line["model"]) == (job["provider"], job["model"])
        assert line["prompt_sha256"] == hashlib.sha256(prompt.encode()).hexdigest()
        assert line["client_metadata"] == {"campaign": "spring"}


def test_the_documented_consumer_refuses_a_video_that_is_not_the_one_job_json_records(call, bucket, capsys):
    accepted = call("api").post("/jobs", json={"prompt": f"a paper boat #{uuid.uuid4().hex[:8]}"}).get_json()
    job = wait_job(lambda job_id: call("api").get(f"/jobs/{job_id}").get_json(), accepted["id"])
    assert job["status"] == "succeeded", job
    job_json = landed_job_json(bucket, job["id"])
    video = bucket.blob(job["outputs"][0]["name"])
    video.metadata = bucket.get_blob(video.name).metadata
    data = video.download_as_bytes()
    video.upload_from_string(data[:-1] + bytes([data[-1] ^ 1]), content_type="video/mp4")  # other bytes, same name
    capsys.readouterr()
    consumer = create_app(target="on_job_json", source=str(CONSUMER)).test_client()

    answer = finalized(call, bucket.name, job_json, app=consumer)

    assert answer.status_code == 500 and capsys.readouterr().out == ""  # Eventarc retries; nothing was handled
