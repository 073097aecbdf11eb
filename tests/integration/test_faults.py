"""Faults, on the real emulators and the provider simulator: each scenario ends in the state
and error code a client is promised, with no second paid submission, exactly the objects a
consumer may see, and every webhook event delivered at least once under one stable id.

docs/RELIABILITY.md lists these scenarios; tests/unit/test_reliability_doc.py keeps the list
in step with what is collected here (the docstrings and the `proves` texts).
"""
from __future__ import annotations

import hashlib
import itertools
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from typing import Any

import pytest
import requests
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from .helpers import Client, stored_video, unique_prompt
from .reliability import (
    SUBMIT_QUEUE,
    accepted_submissions,
    assert_events,
    assert_objects,
    drained,
    job_tasks,
    jobs_collection,
    lose_tasks,
    paused,
    run_sweep,
    stored_objects,
    submissions,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.faults]

BIG_VIDEO = "size=16MiB"  # big enough that storing it takes seconds (256 KiB chunks in tests)


@pytest.fixture(scope="module")
def jobs(stack):
    return jobs_collection(stack)


@dataclass
class Started:
    id: str
    prompt: str
    hook_path: str


def start(client, directive: str = "", **extra) -> Started:
    hook_url, hook_path = client.hook_url("faults")
    prompt = unique_prompt(directive=directive)
    resp = client.submit({"prompt": prompt, "webhook_url": hook_url, **extra})
    assert resp.status_code == 202, resp.text
    return Started(resp.json()["id"], prompt, hook_path)


def settle(client, bucket, stack, job: Started, status: str, code: str | None = None, paid: int = 1,
           timeout_s: float = 120) -> dict[str, Any]:
    """The common promise: the terminal state and code, `paid` accepted provider submissions,
    exactly the expected objects, every webhook event at least once under one id."""
    final = client.wait(job.id, timeout_s=timeout_s)
    assert final["status"] == status, final
    assert (final["error"] or {}).get("code") == code, final["error"]
    assert accepted_submissions(client, job.prompt) == paid
    assert_objects(bucket, final)
    assert_events(client, stack, job.hook_path, final)
    return final


# ---------------------------------------------------------------------------------------------
# Provider faults, run side by side: every job is submitted when the first of these tests
# starts, and each test then checks its own.
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    id: str
    proves: str
    directive: str
    status: str
    code: str | None = None
    paid: int = 1  # submissions the provider accepted
    refused_submits: int | None = 0  # submissions answered with an error (None: some)
    extra: dict = field(default_factory=dict)


DEADLINE_10S = {"deadline_seconds": 10}
PROVIDER_CASES = [
    Case("submit-429-retry-after", "a submission throttled with 429 + Retry-After waits it out in a named task (job stays accepted) and is paid once",
         "[sim:submit_429x2]", "succeeded", refused_submits=2),
    Case("submit-500", "a submission answered 500 is retried with the queue's backoff and paid once", "[sim:submit_500x3]", "succeeded", refused_submits=3),
    Case("submit-503", "a submission answered 503 (provider unavailable, Retry-After) is retried and paid once", "[sim:submit_503x2]", "succeeded", refused_submits=2),
    Case("submit-400", "a provider refusing the request (4xx) fails the job at once with invalid_request: never retried",
         "[sim:submit_400]", "failed", "invalid_request", paid=0, refused_submits=1),
    Case("submit-429-until-deadline", "a provider that throttles every submission leaves the job accepted until its deadline, then deadline_exceeded",
         "[sim:submit_429]", "failed", "deadline_exceeded", paid=0, refused_submits=None, extra=DEADLINE_10S),
    Case("poll-500", "polls answered 500 are retried; the job succeeds", "[sim:poll_500x3]", "succeeded"),
    Case("poll-503", "polls answered 503 are retried; the job succeeds", "[sim:poll_503x2]", "succeeded"),
    Case("poll-429", "polls answered 429 are retried; the job succeeds", "[sim:poll_429x2]", "succeeded"),
    Case("poll-connection-reset", "polls whose connection is reset are retried; the job succeeds", "[sim:poll_resetx2]", "succeeded"),
    Case("poll-garbage-json", "polls answered with broken JSON are retried, never taken for an answer", "[sim:poll_garbagex2]", "succeeded"),
    Case("poll-html-200", "polls answered 200 with an HTML page are retried, never taken for an answer", "[sim:poll_htmlx2]", "succeeded"),
    Case("poll-slower-than-timeout", "a provider slower than the call timeout is retried until the deadline, then deadline_exceeded",
         "[sim:slow_poll=8]", "failed", "deadline_exceeded", extra=DEADLINE_10S),
    Case("never-finishes", "an operation that never finishes ends at the job's deadline with deadline_exceeded",
         "[sim:never_finish]", "failed", "deadline_exceeded", extra=DEADLINE_10S),
    Case("rai-filtered", "a generation removed by safety filters fails with rai_filtered", "[sim:rai_filtered]", "failed", "rai_filtered"),
    Case("operation-error", "an operation ending in an error fails with provider_error", "[sim:op_error]", "failed", "provider_error"),
    Case("success-without-video", "a 'success' without any video fails with provider_error, not an empty success",
         "[sim:empty_success]", "failed", "provider_error"),
    Case("download-expired", "a download link that expired (403) fails with download_expired", "[sim:expired]", "failed", "download_expired"),
    Case("download-truncated", "a download cut in the middle is retried, then fails with download_invalid; no partial object",
         "[sim:truncated]", "failed", "download_invalid"),
    Case("download-wrong-length", "a download shorter than its Content-Length fails with download_invalid; no partial object",
         "[sim:wrong_length]", "failed", "download_invalid"),
    Case("download-html-200", "a download answering 200 with an HTML page fails with download_invalid", "[sim:html_200]", "failed", "download_invalid"),
    Case("download-redirect", "a download behind a redirect is followed and stored", "[sim:redirect]", "succeeded"),
]


@pytest.fixture(scope="module")
def provider_jobs(client) -> dict[str, Started]:
    return {case.id: start(client, case.directive, **case.extra) for case in PROVIDER_CASES}


@pytest.mark.parametrize("case", PROVIDER_CASES, ids=[c.id for c in PROVIDER_CASES])
def test_provider_fault(case: Case, provider_jobs, client, bucket, stack):
    """A provider fault ends in its documented state and code, paid at most once."""
    job = provider_jobs[case.id]
    settle(client, bucket, stack, job, case.status, case.code, paid=case.paid)
    refused = [c for c in submissions(client, job.prompt) if c["status"] != 200]
    if case.refused_submits is None:
        assert refused
    else:
        assert len(refused) == case.refused_submits
    if case.id == "submit-429-retry-after":
        at = [c["at"] for c in submissions(client, job.prompt)]
        assert all(b - a >= 1.9 for a, b in itertools.pairwise(at)), f"Retry-After: 2 not honoured: {at}"


# ---------------------------------------------------------------------------------------------
# Duplicated and concurrent deliveries
# ---------------------------------------------------------------------------------------------
def parallel(calls) -> list:
    barrier = threading.Barrier(len(calls))

    def run(call):
        barrier.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def test_a_submit_task_delivered_three_times_at_once_pays_once(client, bucket, stack):
    """A submit task delivered three times at once calls the provider once (the submit claim)."""
    with paused(stack, SUBMIT_QUEUE):
        job = start(client)
        answers = parallel([lambda: client.send_task("submit_job", {"job_id": job.id})] * 3)
    assert [a.status_code for a in answers] == [200, 200, 200]
    settle(client, bucket, stack, job, "succeeded")
    assert len(submissions(client, job.prompt)) == 1


def test_a_finalize_task_delivered_twice_at_once_stores_one_video(client, bucket, stack):
    """A finalize task delivered twice at once leaves one video and one job.json, nothing else."""
    with paused(stack, "veo-finalize"):
        job = start(client)
        client.wait(job.id, {"downloading"})
        answers = parallel([lambda: client.send_task("finalize_job", {"job_id": job.id})] * 2)
    assert [a.status_code for a in answers] == [200, 200]
    final = settle(client, bucket, stack, job, "succeeded")
    assert len(final["outputs"]) == 1


def test_two_concurrent_polls_conflict_in_firestore_and_finalize_once(client, bucket, stack):
    """Two polls seeing the same success at once: one Firestore transaction wins, one download."""
    with paused(stack, "veo-poll"):
        job = start(client, "[sim:duration=0.5,slow_poll=1]")
        client.wait(job.id, {"running"})
        wait_for(lambda: client.sim_operation(job.prompt)["done"], what="the operation to be done")  # both polls see the success
        answers = parallel([lambda: client.send_task("poll_job", {"job_id": job.id, "poll": 1})] * 2)
    assert [a.status_code for a in answers] == [200, 200]
    settle(client, bucket, stack, job, "succeeded")
    assert len(client.sim_calls(job.prompt, "download")) == 1


def test_the_same_idempotency_key_posted_five_times_at_once_is_one_job(client, bucket, stack):
    """Five concurrent POSTs with one Idempotency-Key: one job (one 202), one submission."""
    hook_url, hook_path = client.hook_url("idem")
    prompt = unique_prompt()
    body, key = {"prompt": prompt, "webhook_url": hook_url}, {"Idempotency-Key": f"order-{prompt[-10:]}"}
    answers = parallel([lambda: client.submit(body, headers=key)] * 5)
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 200, 202]
    [job_id] = {a.json()["id"] for a in answers}
    settle(client, bucket, stack, Started(job_id, prompt, hook_path), "succeeded")


def test_an_idempotency_key_replayed_after_24_hours_returns_the_same_job(client, bucket, stack, jobs):
    """An Idempotency-Key sent again a day later returns the first job; nothing is submitted again."""
    hook_url, hook_path = client.hook_url("nightly")
    prompt = unique_prompt()
    body, key = {"prompt": prompt, "webhook_url": hook_url}, {"Idempotency-Key": f"nightly-{prompt[-10:]}"}
    first = client.submit(body, headers=key)
    assert first.status_code == 202
    done = settle(client, bucket, stack, Started(first.json()["id"], prompt, hook_path), "succeeded")
    doc = jobs.document(done["id"])
    stored = doc.get().to_dict()
    # The job document is the idempotency record: its TTL (expire_at) keeps it 30 days past its end.
    assert stored["expire_at"] == stored["timestamps"]["succeeded"] + timedelta(days=30)
    day_ago = stored["created_at"] - timedelta(hours=25)
    doc.update({"created_at": day_ago, "updated_at": day_ago})  # as if it ran yesterday
    again = client.submit(body, headers=key)
    assert (again.status_code, again.json()["id"], again.json()["status"]) == (200, done["id"], "succeeded")
    assert accepted_submissions(client, prompt) == 1
    # The same key from another client is another job: keys are scoped per client.
    other = Client(stack, "other")
    theirs = other.submit(body, headers=key)
    assert theirs.status_code == 202 and theirs.json()["id"] != done["id"]
    assert other.wait(theirs.json()["id"])["status"] == "succeeded"
    assert accepted_submissions(client, prompt) == 2


# ---------------------------------------------------------------------------------------------
# Webhook receivers that fail
# ---------------------------------------------------------------------------------------------
def test_a_webhook_receiver_failing_three_times_gets_the_event_once_it_answers(client, bucket, stack):
    """A receiver answering 503, 429 and 500 gets the event on the next attempt, same webhook-id each time."""
    hook_url, hook_path = client.hook_url("flaky")
    requests.post(f"{client.receiver}/_behavior", json={"path": hook_path, "responses": [503, {"status": 429, "retry_after": 1}, 500]}, timeout=5)
    prompt = unique_prompt()
    resp = client.submit({"prompt": prompt, "webhook_url": hook_url, "webhook_events": ["job.succeeded"]})
    job = Started(resp.json()["id"], prompt, hook_path)
    settle(client, bucket, stack, job, "succeeded")
    received = client.webhooks(hook_path, count=4)
    assert [r["status"] for r in received] == [503, 429, 500, 200]
    attempts = wait_for(lambda: [d for d in client.job(job.id)["webhook"]["deliveries"] if d["event"] == "job.succeeded"][3:] and
                        [d for d in client.job(job.id)["webhook"]["deliveries"] if d["event"] == "job.succeeded"], what="4 recorded attempts")
    assert [d["status_code"] for d in attempts] == [503, 429, 500, 200]


def test_a_webhook_receiver_down_for_a_while_gets_the_event_when_back(client, bucket, stack):
    """A receiver that is down (connection refused) when the job ends gets the event once it is back."""
    hook_url, hook_path = client.hook_url("down")
    prompt = unique_prompt(directive="[sim:duration=1]")
    stack.kill_function("webhook-receiver")
    try:
        resp = client.submit({"prompt": prompt, "webhook_url": hook_url, "webhook_events": ["job.succeeded"]})
        job = Started(resp.json()["id"], prompt, hook_path)
        wait_for(lambda: [d for d in client.job(job.id)["webhook"]["deliveries"] if d["status_code"] is None],
                 what="a failed delivery attempt")
    finally:
        stack.restart_function("webhook-receiver")
    final = settle(client, bucket, stack, job, "succeeded")
    attempts = [d for d in client.job(final["id"])["webhook"]["deliveries"] if d["event"] == "job.succeeded"]
    assert attempts[0]["status_code"] is None and attempts[-1]["status_code"] == 200
    assert len({d["webhook_id"] for d in attempts}) == 1


# ---------------------------------------------------------------------------------------------
# Cancel
# ---------------------------------------------------------------------------------------------
def test_cancel_while_running_stops_polling_and_notifies(client, bucket, stack):
    """Cancel while the provider works: cancelled, job.cancelled sent, polling stops, no video."""
    job = start(client, "[sim:duration=30]")
    client.wait(job.id, {"running"})
    wait_for(lambda: client.sim_calls(job.prompt, "poll"), what="a first poll")
    resp = client.cancel(job.id)
    assert resp.status_code == 200 and resp.json()["status"] == "cancelled"
    polls_at_cancel = len(client.sim_calls(job.prompt, "poll"))
    settle(client, bucket, stack, job, "cancelled", "cancelled")
    # The poll queued before the cancel has run (and queued no other): polling is over, with at
    # most the one poll that was already under way when the cancel came.
    drained(stack, "veo-poll", job.id)
    assert len(client.sim_calls(job.prompt, "poll")) - polls_at_cancel <= 1


def test_a_provider_success_after_cancel_is_recorded_not_delivered(client, bucket, stack, jobs):
    """A success the provider reports after the job was cancelled is recorded, never delivered."""
    job = start(client, "[sim:duration=0.5,slow_poll=3]")
    client.wait(job.id, {"running"})
    # The first poll is in flight (the provider takes 3 s to answer it): cancel under it.
    wait_for(lambda: any(t.dispatch_count for t in job_tasks(stack, "veo-poll", job.id)), what="a poll in flight")
    time.sleep(0.5)
    assert client.cancel(job.id).status_code == 200
    late = wait_for(lambda: jobs.document(job.id).get().to_dict().get("late_result"), what="the late result")
    assert late["state"] == "succeeded" and late["outputs"]
    final = settle(client, bucket, stack, job, "cancelled", "cancelled")
    assert final["outputs"] == [] and "late_result" not in final  # recorded for operators, not shown
    assert client.sim_calls(job.prompt, "download") == []


def test_cancel_while_downloading_leaves_no_video(client, bucket, stack):
    """Cancel after the provider finished but before the video was stored: cancelled, no video."""
    with paused(stack, "veo-finalize"):
        job = start(client)
        client.wait(job.id, {"downloading"})
        assert client.cancel(job.id).status_code == 200
    settle(client, bucket, stack, job, "cancelled", "cancelled")
    drained(stack, "veo-finalize", job.id)  # the queued finalize has run: it downloaded and stored nothing
    assert client.sim_calls(job.prompt, "download") == []
    assert stored_objects(bucket, job.id) == set()


# ---------------------------------------------------------------------------------------------
# Lost tasks and the sweep
# ---------------------------------------------------------------------------------------------
def test_a_lost_submit_task_is_restarted_by_the_sweep(client, bucket, stack):
    """A job whose submit task was lost (crash between recording and queueing) is submitted by the sweep."""
    with paused(stack, SUBMIT_QUEUE):
        job = start(client)
        assert lose_tasks(stack, SUBMIT_QUEUE, job.id) == 1
    time.sleep(float(stack.env["VEO_SWEEP_STALL_SECONDS"]) + 0.5)
    assert client.job(job.id)["status"] == "accepted"  # nothing else would ever move it
    assert job.id in run_sweep(stack)["job_ids"]["restarted"]
    settle(client, bucket, stack, job, "succeeded")


def test_a_lost_poll_task_is_restarted_by_the_sweep(client, bucket, stack):
    """A running job whose poll chain was lost is polled again after the sweep, and succeeds once."""
    with paused(stack, "veo-poll"):
        job = start(client)
        client.wait(job.id, {"running"})
        assert lose_tasks(stack, "veo-poll", job.id) == 1
    time.sleep(float(stack.env["VEO_SWEEP_STALL_SECONDS"]) + 0.5)
    assert client.job(job.id)["status"] == "running"
    assert job.id in run_sweep(stack)["job_ids"]["restarted"]
    settle(client, bucket, stack, job, "succeeded")


def test_a_lost_finalize_task_is_restarted_by_the_sweep(client, bucket, stack):
    """A downloading job whose finalize task was lost is stored after the sweep, once."""
    with paused(stack, "veo-finalize"):
        job = start(client)
        client.wait(job.id, {"downloading"})
        assert lose_tasks(stack, "veo-finalize", job.id) == 1
    time.sleep(3 * float(stack.env["VEO_SWEEP_STALL_SECONDS"]) + 0.5)  # a finalize may stream long
    assert client.job(job.id)["status"] == "downloading"
    assert job.id in run_sweep(stack)["job_ids"]["restarted"]
    settle(client, bucket, stack, job, "succeeded")


def test_a_job_whose_chain_is_lost_ends_at_the_first_sweep_past_its_deadline(client, bucket, stack):
    """No job stays non-terminal past its deadline plus one sweep: a lost job is failed by the next sweep."""
    with paused(stack, "veo-poll"):
        job = start(client, "[sim:never_finish]", deadline_seconds=10)
        client.wait(job.id, {"running"})
        lose_tasks(stack, "veo-poll", job.id)
    deadline = client.job(job.id)["deadline_at"]
    wait_for(lambda: _past(deadline), timeout_s=30, what="the deadline")
    assert client.job(job.id)["status"] == "running"  # stuck: no task will ever touch it again
    assert job.id in run_sweep(stack)["job_ids"]["deadline_exceeded"]
    settle(client, bucket, stack, job, "failed", "deadline_exceeded")


def _past(iso: str) -> bool:
    from datetime import datetime

    return datetime.now(UTC) > datetime.fromisoformat(iso.replace("Z", "+00:00"))


def test_a_sweep_that_restarts_a_live_chain_changes_nothing_but_the_chain(client, bucket, stack):
    """A false alarm (a slow, not lost, job swept) neither pays twice nor stores twice: the old chain stops."""
    job = start(client, "[sim:duration=5]")
    client.wait(job.id, {"running"})
    time.sleep(float(stack.env["VEO_SWEEP_STALL_SECONDS"]) + 0.5)
    assert job.id in run_sweep(stack)["job_ids"]["restarted"]
    settle(client, bucket, stack, job, "succeeded")
    assert len(client.sim_calls(job.prompt, "download")) == 1


# ---------------------------------------------------------------------------------------------
# Processes that die (these restart parts of the stack, so they come last)
# ---------------------------------------------------------------------------------------------
def test_a_function_killed_between_two_steps_resumes_from_the_queue(client, bucket, stack):
    """poll_job dies after the job was submitted: the queue retries until it is back; paid once."""
    job = start(client, "[sim:duration=3]")
    client.wait(job.id, {"running"})
    stack.kill_function("poll_job")
    try:
        # A poll is refused (connection refused) and the queue tries it again.
        wait_for(lambda: any(t.dispatch_count >= 2 for t in job_tasks(stack, "veo-poll", job.id)), what="a poll retried")
        assert client.job(job.id)["status"] == "running"
    finally:
        stack.restart_function("poll_job")
    settle(client, bucket, stack, job, "succeeded")


def test_a_finalize_killed_mid_stream_leaves_no_partial_object_and_the_retry_completes_once(client, bucket, stack):
    """finalize_job killed while streaming a video: nothing at the final name, the retry stores it once."""
    job = start(client, f"[sim:{BIG_VIDEO}]")
    wait_for(lambda: client.sim_calls(job.prompt, "download"), what="the download to start")
    stack.kill_function("finalize_job")
    try:
        assert client.job(job.id)["status"] == "downloading"
        assert stored_objects(bucket, job.id) == set()
    finally:
        stack.restart_function("finalize_job")
    final = settle(client, bucket, stack, job, "succeeded")
    served = client.sim_operation(job.prompt)["outputs"][0]
    data = stored_video(bucket, final["outputs"][0])
    assert (hashlib.sha256(data).hexdigest(), len(data)) == (served["sha256"], served["size"])  # what the provider served
    assert len(client.sim_calls(job.prompt, "download")) == 2  # the killed attempt and the retry


def test_storage_failing_mid_upload_is_retried_and_stores_the_video_once(client, bucket, stack):
    """Cloud Storage going away in the middle of an upload: the step is retried, the video stored once."""
    job = start(client, f"[sim:{BIG_VIDEO}]")
    wait_for(lambda: client.sim_calls(job.prompt, "download"), what="the download to start")
    stack.kill_function("gcs")  # the emulator keeps objects in memory: they go with it
    try:
        time.sleep(1)
        assert client.job(job.id)["status"] == "downloading"
    finally:
        stack.restart_function("gcs")
        _bucket_again(stack)
    final = settle(client, bucket, stack, job, "succeeded")
    served = client.sim_operation(job.prompt)["outputs"][0]
    assert hashlib.sha256(stored_video(bucket, final["outputs"][0])).hexdigest() == served["sha256"]


def _bucket_again(stack) -> None:
    gcs = storage.Client(project=stack.env["GOOGLE_CLOUD_PROJECT"], credentials=AnonymousCredentials(),
                         client_options={"api_endpoint": stack.env["STORAGE_EMULATOR_HOST"]})
    gcs.create_bucket(stack.env["VEO_BUCKET"])


def test_a_provider_down_at_submission_keeps_the_job_accepted_until_it_is_back(client, bucket, stack):
    """The provider unreachable at submission: the job stays accepted and is submitted once it is back."""
    stack.kill_function("simulator")
    try:
        job = start(client)
        # A submission is refused (connection refused) and the queue tries it again.
        wait_for(lambda: any(t.dispatch_count >= 2 for t in job_tasks(stack, SUBMIT_QUEUE, job.id)), what="a submission retried")
        assert client.job(job.id)["status"] == "accepted"
    finally:
        stack.restart_function("simulator")
    settle(client, bucket, stack, job, "succeeded")  # the simulator forgot the refused calls
