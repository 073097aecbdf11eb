"""Our own backend failing under the public API (edges/api.py over the fakes): Firestore or Cloud
Tasks down or contended is a 503 `unavailable` with Retry-After, never a 500, and nothing
accepted is lost: the same request sent again (same Idempotency-Key) finishes the job's
admission, and a job recorded whose submission could not be queued is submitted by the sweep."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

import flask
import pytest
from google.api_core import exceptions as gexc

from veorelay.core.clock import utcnow
from veorelay.core.errors import ErrorCode, TransientError
from veorelay.core.job import JobStatus
from veorelay.edges import api
from veorelay.steps.sweep import stall_after_s, sweep

from .driver import run_named
from .fake_providers import mp4
from .fakes import make_runtime
from .helpers import PROMPT, WEBHOOK_URL, bucket_of, downloading_job, poster_name, running_job, store_of, tasks_of, video_name

pytestmark = pytest.mark.faults

APP = flask.Flask("veo-relay-steps")
KEY = {"Idempotency-Key": "order-4711"}


@pytest.fixture
def rt():
    return make_runtime(env={"VEO_AUTH_DISABLED": "true"})  # the client is then "default"


def call(rt, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any, Any]:
    with APP.test_request_context(path, method=method, json=body, headers=headers or {}):
        resp = api.handle(flask.request, rt)
    return resp.status_code, resp.get_json(), resp.headers


def unavailable(status: int, body: Any, headers: Any) -> None:
    assert status == 503 and body["error"]["code"] == ErrorCode.UNAVAILABLE and body["error"]["field"] is None, body
    assert body["error"]["message"] and int(headers["Retry-After"]) >= 1


@pytest.mark.parametrize("fault", [gexc.DeadlineExceeded("Deadline Exceeded"), gexc.ServiceUnavailable("connection refused"),
                                   gexc.RetryError("Timeout of 10.0s exceeded", None)])
def test_firestore_down_at_post_jobs_is_a_503_and_the_same_key_sent_again_is_the_job(rt, fault):
    """Firestore down when POST /jobs records the job: 503 unavailable with Retry-After, nothing created; the same Idempotency-Key later: 202, one job, one submission."""
    store, tasks, bucket = store_of(rt), tasks_of(rt), bucket_of(rt)
    store.faults.add("create", fault)

    unavailable(*call(rt, "POST", "/jobs", {"prompt": PROMPT, "provider": "fake"}, KEY))
    assert store.ids() == [] and tasks.created == [] and bucket.names() == []

    status, job, _ = call(rt, "POST", "/jobs", {"prompt": PROMPT, "provider": "fake"}, KEY)
    assert status == 202 and store.ids() == [job["id"]] and tasks.names() == [f"{job['id']}-submit"]


def test_cloud_tasks_down_at_post_jobs_is_a_503_and_the_job_recorded_is_never_lost(rt):
    """Cloud Tasks down when POST /jobs queues the submission: 503 unavailable; the job stays recorded (accepted) and is submitted, by the same key sent again or by the sweep."""
    store, tasks = store_of(rt), tasks_of(rt)
    tasks.faults.add("enqueue", TransientError(ErrorCode.UNAVAILABLE, "could not enqueue submit_job: ServiceUnavailable"), times=1)

    unavailable(*call(rt, "POST", "/jobs", {"prompt": PROMPT, "provider": "fake"}, KEY))
    [job_id] = store.ids()
    assert store.job(job_id)["status"] == JobStatus.ACCEPTED and tasks.created == []

    # No client retry: the sweep finds the accepted job nothing moves and submits it.
    later = utcnow() + timedelta(seconds=stall_after_s(rt.settings, JobStatus.ACCEPTED) + 1)
    assert sweep(rt, now=later).restarted == [job_id] and tasks.names() == [f"{job_id}-g1-submit"]

    # The client's retry (same key) answers the job and queues its submission (a no-op twice).
    status, job, _ = call(rt, "POST", "/jobs", {"prompt": PROMPT, "provider": "fake"}, KEY)
    assert (status, job["id"], job["status"]) == (200, job_id, "accepted")
    assert tasks.names() == [f"{job_id}-g1-submit"] and tasks.refused == [f"{job_id}-g1-submit"]


def test_firestore_down_at_get_and_cancel_is_a_503_not_a_500(rt):
    """Firestore down under GET /jobs/{id} and POST /jobs/{id}:cancel: 503 unavailable with Retry-After; the job is as it was."""
    store = store_of(rt)
    job_id = running_job(rt)
    store.faults.add("get", gexc.DeadlineExceeded("Deadline Exceeded"), times=2)

    unavailable(*call(rt, "GET", f"/jobs/{job_id}"))
    unavailable(*call(rt, "POST", f"/jobs/{job_id}:cancel"))
    assert store.job(job_id)["status"] == JobStatus.RUNNING
    assert call(rt, "GET", f"/jobs/{job_id}")[0] == 200


def test_contention_on_the_job_is_retried_and_the_cancel_answers_200(rt):
    """A cancel losing to concurrent writes (Aborted, a changed document) a few times is retried: 200 and the job cancelled."""
    store = store_of(rt)
    job_id = running_job(rt, webhook_url=WEBHOOK_URL)
    store.faults.add("transition", gexc.Aborted("Too much contention on these documents"), times=2)
    store.faults.add("transition", gexc.FailedPrecondition("the stored version does not match"), times=2)

    status, job, _ = call(rt, "POST", f"/jobs/{job_id}:cancel")

    assert (status, job["status"], job["error"]["code"]) == (200, "cancelled", "cancelled")
    assert store.job(job_id)["status"] == JobStatus.CANCELLED and len(store.faults.raised) == 4


def test_contention_that_persists_is_a_503_with_retry_after_and_the_cancel_sent_again_ends_the_job(rt):
    """Contention outlasting the retries: 503 unavailable with Retry-After, never a 500; the job unchanged. Sent again: 200, cancelled, job.cancelled queued once."""
    store, tasks = store_of(rt), tasks_of(rt)
    job_id = running_job(rt, webhook_url=WEBHOOK_URL)
    tasks.pending.clear()
    store.faults.add("transition", gexc.Aborted("Too much contention on these documents"), times=100)

    status, body, headers = call(rt, "POST", f"/jobs/{job_id}:cancel")

    unavailable(status, body, headers)
    assert headers["Retry-After"] == "1" and store.job(job_id)["status"] == JobStatus.RUNNING and tasks.pending == []
    store.faults = type(store.faults)()
    assert call(rt, "POST", f"/jobs/{job_id}:cancel")[0] == 200
    assert call(rt, "POST", f"/jobs/{job_id}:cancel")[0] == 200  # again: the same answer, no second event
    assert tasks.pending_names() == [f"{job_id}-wh-job_cancelled-1"]


def test_a_cancel_whose_event_could_not_be_queued_is_a_503_and_the_cancel_sent_again_queues_it(rt):
    """The job cancelled but Cloud Tasks down for its event: 503; the cancel sent again is 200 and queues job.cancelled."""
    store, tasks = store_of(rt), tasks_of(rt)
    job_id = running_job(rt, webhook_url=WEBHOOK_URL)
    tasks.faults.add("enqueue", TransientError(ErrorCode.UNAVAILABLE, "could not enqueue deliver_webhook"), name=f"{job_id}-wh-job_cancelled-1")

    unavailable(*call(rt, "POST", f"/jobs/{job_id}:cancel"))
    assert store.job(job_id)["status"] == JobStatus.CANCELLED and f"{job_id}-wh-job_cancelled-1" not in tasks.names()

    status, job, _ = call(rt, "POST", f"/jobs/{job_id}:cancel")
    assert (status, job["status"]) == (200, "cancelled") and f"{job_id}-wh-job_cancelled-1" in tasks.names()


def test_cancelling_a_job_that_ended_otherwise_is_a_409(rt):
    """Cancel of a succeeded or failed job: 409 conflict naming its state; nothing changes."""
    job_id = downloading_job(rt, mp4(5000))
    run_named(rt, f"{job_id}-finalize")
    status, body, _ = call(rt, "POST", f"/jobs/{job_id}:cancel")
    assert (status, body["error"]["code"], body["error"]["field"]) == (409, "conflict", None) and "succeeded" in body["error"]["message"]
    assert store_of(rt).job(job_id)["status"] == JobStatus.SUCCEEDED
    assert bucket_of(rt).names(f"videos/{job_id}/") == [poster_name(rt, job_id, 0), video_name(rt, job_id, 0), f"videos/{job_id}/job.json"]
