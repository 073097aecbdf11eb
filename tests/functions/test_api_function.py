"""The public `api` entry point: routing, validation, and what a refused request leaves behind (nothing)."""
from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.integration


def job_count(jobs_collection) -> int:
    return jobs_collection.count().get()[0][0].value


def ended(call, job_id: str, timeout_s: float = 60) -> dict:
    """GET /jobs/{id} until the job is in a final state (the stack's functions run it)."""
    deadline = time.monotonic() + timeout_s
    while (job := call("api").get(f"/jobs/{job_id}").get_json())["status"] not in ("succeeded", "failed", "cancelled"):
        assert time.monotonic() < deadline, f"job {job_id} still {job['status']} after {timeout_s}s"
        time.sleep(0.25)
    return job


def test_accepted_job_is_recorded_and_readable(call, jobs_collection):
    resp = call("api").post("/jobs", json={"prompt": "a fox in the snow", "aspect_ratio": "9:16"})
    assert resp.status_code == 202
    job = resp.get_json()
    assert job["status"] == "accepted" and job["request"] == {"prompt": "a fox in the snow", "aspect_ratio": "9:16"}
    stored = jobs_collection.document(job["id"]).get().to_dict()
    assert (stored["provider"], stored["client_id"], stored["request"]["prompt"]) == ("litellm-gemini", "demo", "a fox in the snow")
    got = call("api").get(f"/jobs/{job['id']}")
    assert got.status_code == 200 and got.get_json()["id"] == job["id"]
    done = ended(call, job["id"])
    assert done["status"] == "succeeded" and done["error"] is None
    assert [o["name"] for o in done["outputs"]] == [f"videos/{job['id']}/0.mp4"]


@pytest.mark.badinput
@pytest.mark.parametrize("kwargs,status,code,field", [
    ({"data": "{not json", "content_type": "application/json"}, 400, "invalid_request", None),
    ({"data": "prompt=x", "content_type": "text/plain"}, 415, "invalid_request", None),
    ({"json": {"prompt": "p", "sample_count": "2"}}, 400, "invalid_request", "sample_count"),
    ({"json": {"prompt": "p", "unknown": 1}}, 400, "invalid_request", "unknown"),
    ({"json": {"prompt": "p", "provider": "nope"}}, 400, "unsupported_option", "provider"),
    ({"json": {"prompt": "p", "generate_audio": True}}, 400, "unsupported_option", "generate_audio"),
    ({"json": {"prompt": "p", "model": "veo-9"}}, 400, "unsupported_option", "model"),
    ({"json": {"prompt": "p", "duration_seconds": 7}}, 400, "unsupported_option", "duration_seconds"),
    ({"json": {"prompt": "p", "webhook_url": "https://169.254.169.254/latest"}}, 400, "invalid_request", "webhook_url"),
    ({"json": {"prompt": "p", "webhook_url": "http://example.com/hook"}}, 400, "invalid_request", "webhook_url"),
    ({"data": b"x" * (1024 * 1024 + 1), "content_type": "application/json"}, 413, "payload_too_large", None),
])
def test_refused_requests_say_why_and_create_nothing(call, jobs_collection, kwargs, status, code, field):
    before = job_count(jobs_collection)
    resp = call("api").post("/jobs", **kwargs)
    assert resp.status_code == status
    assert resp.get_json()["error"]["code"] == code
    assert resp.get_json()["error"]["field"] == field
    assert resp.get_json()["error"]["message"]
    assert job_count(jobs_collection) == before


@pytest.mark.parametrize("method,path,status,code,field", [
    ("get", "/jobs/0123456789abcdef0123456789abcdef", 404, "not_found", "id"),
    ("get", "/jobs/../../etc", 404, "not_found", None),
    ("get", "/nowhere", 404, "not_found", None),
    ("put", "/jobs", 405, "invalid_request", None),
    ("get", "/jobs?limit=0", 400, "invalid_request", "limit"),
    ("post", "/jobs/0123456789abcdef0123456789abcdef/events", 405, "invalid_request", None),
    ("get", "/jobs/0123456789abcdef0123456789abcdef/events", 404, "not_found", "id"),
    ("delete", "/jobs/0123456789abcdef0123456789abcdef", 405, "invalid_request", None),
    ("post", "/jobs/0123456789abcdef0123456789abcdef:cancel", 404, "not_found", "id"),
])
def test_unknown_jobs_and_routes(call, method, path, status, code, field):
    resp = getattr(call("api"), method)(path)
    assert resp.status_code == status
    error = resp.get_json()["error"]
    assert (set(error), error["code"], error["field"]) == ({"code", "message", "field"}, code, field), error


def test_providers_lists_capabilities(call):
    resp = call("api").get("/providers")
    assert resp.status_code == 200
    table = resp.get_json()
    assert table["default"] == "litellm-gemini"
    caps = table["providers"]["litellm-gemini"]
    assert "veo-3.1-generate-preview" in caps["models"] and "aspect_ratio" in caps["options"]


def test_cancel_ends_the_job_once(call):
    job_id = call("api").post("/jobs", json={"prompt": "to be cancelled [sim:never_finish]"}).get_json()["id"]
    first = call("api").post(f"/jobs/{job_id}:cancel")
    assert first.status_code == 200
    assert first.get_json()["status"] == "cancelled" and first.get_json()["error"]["code"] == "cancelled"
    again = call("api").post(f"/jobs/{job_id}:cancel")  # a cancel sent again gets the same answer
    assert again.status_code == 200 and again.get_json()["status"] == "cancelled"


@pytest.mark.parametrize("target", ["submit_job", "poll_job", "finalize_job", "deliver_webhook"])
def test_internal_functions_refuse_callers_that_are_not_cloud_tasks(bare, target):
    resp = bare(target).post("/", json={"job_id": "0123456789abcdef0123456789abcdef"},
                             headers={"X-CloudTasks-QueueName": "veo-poll"})  # a header proves nothing
    assert (resp.status_code, resp.get_json()["status"]) == (401, "unauthenticated")


@pytest.mark.parametrize("payload", [{}, {"job_id": "../x"}, {"job_id": 5}, "not an object"])
def test_malformed_tasks_are_dropped_not_retried_forever(call, payload):
    resp = call("poll_job").post("/", json=payload, headers={"X-CloudTasks-QueueName": "veo-poll"})  # the invoker's token
    assert resp.status_code == 200 and resp.get_json()["status"] == "dropped"


def test_idempotency_key_returns_the_same_job_and_refuses_a_different_body(call, jobs_collection):
    headers = {"Idempotency-Key": "order-123-" + __import__("uuid").uuid4().hex}
    first = call("api").post("/jobs", json={"prompt": "a lighthouse at dusk"}, headers=headers)
    again = call("api").post("/jobs", json={"prompt": "a lighthouse at dusk"}, headers=headers)
    assert (first.status_code, again.status_code) == (202, 200)
    assert first.get_json()["id"] == again.get_json()["id"]
    before = job_count(jobs_collection)
    other = call("api").post("/jobs", json={"prompt": "a different film"}, headers=headers)
    assert other.status_code == 409 and other.get_json()["error"]["field"] == "Idempotency-Key"
    assert job_count(jobs_collection) == before
    bad = call("api").post("/jobs", json={"prompt": "x"}, headers={"Idempotency-Key": "a b"})
    assert (bad.status_code, bad.get_json()["error"]["code"], bad.get_json()["error"]["field"]) == (400, "invalid_request", "Idempotency-Key")
