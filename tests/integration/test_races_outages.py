"""Races, cleanup, outages and recovery, on the real emulators and the simulator: Firestore and
Cloud Tasks paused (SIGSTOP by PID) under live requests, cancels racing a finishing download,
videos a dead attempt left behind, and genaipro generations that look alike.

Each scenario asserts the answer (status, error code and field), the job's final state, the
provider submissions paid for, and exactly the objects a consumer finds afterwards.
"""
from __future__ import annotations

import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from google.cloud import firestore

from dev.stack import PROJECT
from veorelay.gcp.deadlines import TASKS_BUDGET_S

from .helpers import stored_video, unique_prompt
from .reliability import (
    accepted_submissions,
    assert_events,
    assert_objects,
    drained,
    jobs_collection,
    lose_tasks,
    paused,
    process_paused,
    run_sweep,
    stored_objects,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.faults]

# What a client waits at most for an answer while Firestore or Cloud Tasks hangs: one call's
# deadline (gcp/deadlines.py, 5 s) and the request's own work, with room for a loaded machine.
ANSWER_BOUND_S = 9.0
RACE_ROUNDS = 8
CANCELS = 3


@pytest.fixture(scope="module")
def jobs(stack):
    return jobs_collection(stack)


@pytest.fixture(scope="module")
def claims(stack):
    saved = os.environ.get("FIRESTORE_EMULATOR_HOST")
    os.environ["FIRESTORE_EMULATOR_HOST"] = stack.firestore_host
    try:
        return firestore.Client(project=PROJECT).collection("generation_claims")
    finally:
        if saved is None:
            os.environ.pop("FIRESTORE_EMULATOR_HOST", None)
        else:
            os.environ["FIRESTORE_EMULATOR_HOST"] = saved


def start(client, directive: str = "", prompt: str | None = None, **extra) -> tuple[str, str, str]:
    hook_url, hook_path = client.hook_url("races")
    prompt = prompt or unique_prompt(directive=directive)
    resp = client.submit({"prompt": prompt, "webhook_url": hook_url, **extra})
    assert resp.status_code == 202, resp.text
    return resp.json()["id"], prompt, hook_path


def timed(call):
    started = time.monotonic()
    resp = call()
    return resp, time.monotonic() - started


def assert_unavailable(resp, elapsed_s: float) -> None:
    error = resp.json()["error"]
    assert resp.status_code == 503 and (error["code"], error["field"]) == ("unavailable", None), resp.text
    assert error["message"] and int(resp.headers["Retry-After"]) >= 1
    assert elapsed_s < ANSWER_BOUND_S, f"answered after {elapsed_s:.1f}s"


# ---------------------------------------------------------------------------------------------
# Outages
# ---------------------------------------------------------------------------------------------
def test_firestore_paused_mid_request_answers_503_in_bounded_time_and_loses_nothing(client, bucket, stack, record_property):
    """Firestore paused (SIGSTOP) under live requests: POST /jobs and GET /jobs/{id} answer 503 unavailable in bounded time; after SIGCONT the same Idempotency-Key is the job, which completes, as does the job that was running."""
    running_id, running_prompt, running_hook = start(client, "[sim:duration=3]")
    client.wait(running_id, {"running"})
    prompt = unique_prompt()
    body, key = {"prompt": prompt}, {"Idempotency-Key": f"paused-{prompt[-10:]}"}
    with process_paused(stack, "firestore"):
        posted, post_s = timed(lambda: client.submit(body, headers=key))
        got, get_s = timed(lambda: client.get(running_id))
    record_property("post_503_s", round(post_s, 2))
    record_property("get_503_s", round(get_s, 2))
    print(f"Firestore paused: POST /jobs 503 after {post_s:.2f}s, GET /jobs/{{id}} 503 after {get_s:.2f}s")
    assert_unavailable(posted, post_s)
    assert_unavailable(got, get_s)

    again = client.submit(body, headers=key)  # what the 503 told the client to do
    assert again.status_code in (200, 202), again.text  # 200: the first create had landed after all
    job = client.wait(again.json()["id"], timeout_s=90)
    assert job["status"] == "succeeded" and accepted_submissions(client, prompt) == 1
    assert_objects(bucket, job)
    # The job that was running while Firestore stood still: its steps were retried, paid once.
    done = client.wait(running_id, timeout_s=90)
    assert done["status"] == "succeeded" and accepted_submissions(client, running_prompt) == 1
    assert_objects(bucket, done)
    assert_events(client, stack, running_hook, done)


def test_cloud_tasks_paused_at_admission_answers_503_and_the_sweep_submits_the_recorded_job(client, bucket, stack, jobs):
    """Cloud Tasks paused while POST /jobs queues the submission: 503 unavailable in bounded time; the job is recorded, and with no retry from the client the sweep submits it; paid once."""
    prompt = unique_prompt()
    with process_paused(stack, "tasks"):
        posted, post_s = timed(lambda: client.submit({"prompt": prompt}))
    print(f"Cloud Tasks paused: POST /jobs 503 after {post_s:.2f}s")
    assert_unavailable(posted, post_s)
    [doc] = [snap.to_dict() for snap in jobs.where(filter=firestore.FieldFilter("request.prompt", "==", prompt)).stream()]
    assert doc["status"] == "accepted"  # recorded before anything else: never lost
    time.sleep(float(stack.env["VEO_SWEEP_STALL_SECONDS"]) + 0.5)
    assert doc["id"] in run_sweep(stack)["job_ids"]["restarted"]
    job = client.wait(doc["id"], timeout_s=60)
    assert job["status"] == "succeeded" and accepted_submissions(client, prompt) == 1
    assert_objects(bucket, job)


def test_a_cancel_cloud_tasks_could_not_announce_is_announced_by_the_sweep(client, stack, jobs):
    """Cloud Tasks paused as a running job is cancelled: 503, the job cancelled all the same; the client never sends it again, and once the event is due the sweep queues job.cancelled: the receiver gets it, and the sweep after that has nothing to do."""
    job_id, _, hook = start(client, "[sim:duration=30]")
    client.wait(job_id, {"running"})
    with process_paused(stack, "tasks"):
        answer, took = timed(lambda: client.cancel(job_id))
    assert_unavailable(answer, took)
    assert client.job(job_id)["status"] == "cancelled"
    doc = jobs.document(job_id)
    assert doc.get().to_dict()["notify_due_at"] > datetime.now(UTC)
    doc.update({"notify_due_at": datetime.now(UTC) - timedelta(seconds=1)})  # its time come

    assert job_id in run_sweep(stack)["job_ids"]["notified"]

    assert_events(client, stack, hook, client.job(job_id))
    drained(stack, "veo-webhooks", job_id)
    assert doc.get().to_dict()["notify_due_at"] is None
    assert job_id not in run_sweep(stack)["job_ids"]["notified"]


def test_job_running_cloud_tasks_could_not_queue_comes_from_the_sweep(client, stack, jobs):
    """Cloud Tasks paused while the provider takes a submission: the job moves to running, but
    neither job.running nor its first check can be queued, and the queue's retry of the submit
    finds the job already running. The sweep restarts its checks and, once the watch is due,
    queues job.running; the job succeeds and the receiver gets both events, signed, once each id."""
    job_id, _, hook = start(client, "[sim:slow_submit=2,duration=3]")
    doc = jobs.document(job_id)
    wait_for(lambda: (doc.get().to_dict() or {}).get("submit_claim"), timeout_s=30, what="the submission to be in flight")
    with process_paused(stack, "tasks"):
        wait_for(lambda: doc.get().to_dict()["status"] == "running", timeout_s=30, what="the job to run")
        time.sleep(TASKS_BUDGET_S + 1)  # the submit step's CreateTask calls run out of time meanwhile
    watched = doc.get().to_dict()
    assert watched["notify_events"] == ["job.running"] and watched["notify_due_at"] > datetime.now(UTC)
    assert not client.webhooks(hook, timeout_s=0)
    doc.update({"notify_due_at": datetime.now(UTC) - timedelta(seconds=1)})  # its time come
    time.sleep(float(stack.env["VEO_SWEEP_STALL_SECONDS"]) + 0.5)

    swept = run_sweep(stack)["job_ids"]
    assert job_id in swept["notified"] and job_id in swept["restarted"]

    job = client.wait(job_id, timeout_s=60)
    assert job["status"] == "succeeded"
    events = assert_events(client, stack, hook, job)
    assert set(events) == {"job.running", "job.succeeded"}
    drained(stack, "veo-webhooks", job_id)
    assert doc.get().to_dict()["notify_due_at"] is None


# ---------------------------------------------------------------------------------------------
# Cancel racing a finishing download
# ---------------------------------------------------------------------------------------------
def _race_round(client, stack, n: int) -> dict:
    job_id, prompt, hook = start(client, "[sim:size=3MiB]")
    wait_for(lambda: client.sim_calls(prompt, "download"), timeout_s=60, what="the download to start")
    time.sleep(random.uniform(0, 1.2) * (n % 3) / 2)  # at the start, in the middle, near the end of the copy
    barrier = threading.Barrier(CANCELS)

    def cancel():
        barrier.wait()
        return client.cancel(job_id)

    with ThreadPoolExecutor(CANCELS) as pool:
        answers = [f.result() for f in [pool.submit(cancel) for _ in range(CANCELS)]]
    final = client.wait(job_id, timeout_s=90)
    return {"id": job_id, "prompt": prompt, "hook": hook, "answers": answers, "final": final}


def test_concurrent_cancels_racing_a_finishing_download_end_one_way_only(client, bucket, stack):
    """Concurrent cancels against a finishing download (rounds side by side): cancelled with every cancel 200 and no video, or succeeded with every cancel 409 and its video and job.json."""
    with ThreadPoolExecutor(RACE_ROUNDS) as pool:
        rounds = list(pool.map(lambda n: _race_round(client, stack, n), range(RACE_ROUNDS)))
    outcomes = {"cancelled": 0, "succeeded": 0}
    for got in rounds:
        final, answers = got["final"], got["answers"]
        codes = [a.status_code for a in answers]
        if final["status"] == "cancelled":
            assert codes == [200] * CANCELS and all(a.json()["status"] == "cancelled" for a in answers), codes
            assert final["outputs"] == [] and final["error"]["code"] == "cancelled"
        else:
            assert final["status"] == "succeeded", final
            assert codes == [409] * CANCELS and all(a.json()["error"]["code"] == "conflict" for a in answers), codes
        outcomes[final["status"]] += 1
        assert_objects(bucket, final)  # a cancelled job: none at all; a succeeded one: its video and job.json
        assert_events(client, stack, got["hook"], final)  # and never a job.succeeded for a cancelled job
        assert accepted_submissions(client, got["prompt"]) == 1
    print(f"cancel races on the emulators: {outcomes}")


# ---------------------------------------------------------------------------------------------
# Only a succeeded job has videos
# ---------------------------------------------------------------------------------------------
def test_videos_a_dead_attempt_left_are_removed_when_the_sweep_fails_the_job_and_again_at_discard_due(client, bucket, stack, jobs):
    """A downloading job whose finalize attempt died after storing a video, with no retry left, failed by the sweep at its deadline: its discard task removes the video; one stored later still is removed by the sweep's final discard."""
    with paused(stack, "veo-finalize"):
        job_id, _, hook = start(client, deadline_seconds=10)
        client.wait(job_id, {"downloading"})
        assert lose_tasks(stack, "veo-finalize", job_id) == 1  # no attempt will ever run again
        leftover = bucket.blob(f"videos/{job_id}/0.mp4")
        leftover.upload_from_string(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 4096, content_type="video/mp4")  # what it stored
        deadline = datetime.fromisoformat(client.job(job_id)["deadline_at"].replace("Z", "+00:00"))
        wait_for(lambda: datetime.now(UTC) > deadline, timeout_s=30, what="the deadline")
        assert job_id in run_sweep(stack)["job_ids"]["deadline_exceeded"]
        assert stored_objects(bucket, job_id) == {f"videos/{job_id}/0.mp4"}  # the discard task waits on the paused queue
    drained(stack, "veo-finalize", job_id)
    final = client.job(job_id)
    assert (final["status"], final["error"]["code"]) == ("failed", "deadline_exceeded")
    assert_objects(bucket, final)
    assert_events(client, stack, hook, final)

    # An attempt that was still running stores a video after that, and dies: at discard_due_at
    # (when no attempt can be running any more) the sweep has it removed, once.
    bucket.blob(f"videos/{job_id}/0.mp4").upload_from_string(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64, content_type="video/mp4")
    doc = jobs.document(job_id)
    assert doc.get().to_dict()["discard_due_at"] > datetime.now(UTC)
    doc.update({"discard_due_at": datetime.now(UTC) - timedelta(seconds=1)})
    assert job_id in run_sweep(stack)["job_ids"]["discarded"]
    drained(stack, "veo-finalize", job_id)
    assert stored_objects(bucket, job_id) == set() and doc.get().to_dict()["discard_due_at"] is None
    assert job_id not in run_sweep(stack)["job_ids"]["discarded"]


# ---------------------------------------------------------------------------------------------
# genaipro: recovery never guesses
# ---------------------------------------------------------------------------------------------
def genaipro(client, prompt: str):
    resp = client.submit({"provider": "genaipro", "prompt": prompt})
    assert resp.status_code == 202, resp.text
    return resp.json()["id"]


def test_a_broken_genaipro_stream_with_a_look_alike_generation_ends_provider_error_not_someone_elses_video(client, bucket, claims):
    """A genaipro stream breaks and the histories hold two generations of its prompt (another client's twin): the job ends provider_error saying why; no claim, no video, paid once."""
    prompt = unique_prompt("a twin", "[sim:stream_break,history_twin]")
    job = client.wait(genaipro(client, prompt), timeout_s=60)
    assert (job["status"], job["error"]["code"]) == ("failed", "provider_error")
    assert "cannot tell which one is this job's" in job["error"]["message"]
    assert stored_objects(bucket, job["id"]) == set() and accepted_submissions(client, prompt) == 1
    assert claimed(claims, job["id"]) == {}


def claimed(claims, *job_ids: str) -> dict[str, str]:
    """{history id: job id} of the generations these jobs claimed."""
    found = claims.where(filter=firestore.FieldFilter("job_id", "in", list(job_ids))).stream()
    return {snap.to_dict()["history_id"]: snap.to_dict()["job_id"] for snap in found}


def test_two_genaipro_jobs_of_one_prompt_never_take_the_same_generation(client, bucket, claims):
    """Two jobs, one prompt, both streams broken: sent together, each ends provider_error (the look-alikes cannot be told apart) or takes a generation no other job has; sent one after the other, each claims its own, and their videos differ."""
    together = unique_prompt("same prompt, same time", "[sim:stream_break]")
    first, second = genaipro(client, together), genaipro(client, together)
    ended = [client.wait(first, timeout_s=60), client.wait(second, timeout_s=60)]
    for job in ended:
        if job["status"] == "failed":
            assert job["error"]["code"] == "provider_error" and "cannot tell" in job["error"]["message"], job
        else:  # it found its generation before the other one existed: then each has its own
            assert job["status"] == "succeeded", job
        assert_objects(bucket, job)
    owners = claimed(claims, first, second)
    assert len(owners) == sum(len(j["outputs"]) for j in ended)  # a generation is claimed by one job at most
    assert len({o["md5"] for j in ended for o in j["outputs"]}) == sum(len(j["outputs"]) for j in ended)  # all different videos
    assert accepted_submissions(client, together) == 2

    apart = unique_prompt("same prompt, one after the other", "[sim:stream_break]")
    a = client.wait(genaipro(client, apart), timeout_s=60)
    b = client.wait(genaipro(client, apart), timeout_s=60)  # a's generation is still a look-alike: claimed by a
    assert a["status"] == b["status"] == "succeeded", (a, b)
    assert sorted(claimed(claims, a["id"], b["id"]).values()) == sorted([a["id"], b["id"]])
    assert stored_video(bucket, a["outputs"][0]) != stored_video(bucket, b["outputs"][0])
    for job in (a, b):
        assert_objects(bucket, job)
    assert accepted_submissions(client, apart) == 2
