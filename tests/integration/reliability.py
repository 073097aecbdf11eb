"""What the fault, load and secrets tests check on every job: the state it ended in, the objects
it left, the provider submissions it paid for, and the webhooks its receiver got."""
from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests
import standardwebhooks
from google.cloud import firestore

from dev.stack import BUCKET, PROJECT

SUBMIT_QUEUE = "veo-submit-litellm-gemini"
FINAL_EVENTS = {"succeeded": "job.succeeded", "failed": "job.failed", "cancelled": "job.cancelled"}


def jobs_collection(stack) -> firestore.CollectionReference:
    """The jobs collection of the stack's Firestore emulator, for what only an operator sees."""
    saved = os.environ.get("FIRESTORE_EMULATOR_HOST")
    os.environ["FIRESTORE_EMULATOR_HOST"] = stack.firestore_host  # read when the client is built
    try:
        return firestore.Client(project=PROJECT).collection("jobs")
    finally:
        if saved is None:
            os.environ.pop("FIRESTORE_EMULATOR_HOST", None)
        else:
            os.environ["FIRESTORE_EMULATOR_HOST"] = saved


def stored_objects(bucket, job_id: str) -> set[str]:
    """Every object of the job (all of them live under its output prefix)."""
    return {b.name for b in bucket.list_blobs(prefix=f"videos/{job_id}/")}


def expected_objects(job: dict[str, Any]) -> set[str]:
    """A succeeded job leaves its videos, their posters and job.json; any other job leaves nothing."""
    if job["status"] != "succeeded":
        return set()
    posters = {o["poster"]["name"] for o in job["outputs"] if o.get("poster")}
    return {o["uri"].split(f"gs://{BUCKET}/", 1)[1] for o in job["outputs"]} | posters | {f"videos/{job['id']}/job.json"}


def assert_objects(bucket, job: dict[str, Any], timeout_s: float = 30) -> None:
    """Exactly the expected objects (job.json is written just after `succeeded`: wait for it)."""
    want = expected_objects(job)
    deadline = time.monotonic() + timeout_s
    while (got := stored_objects(bucket, job["id"])) != want and time.monotonic() < deadline:
        time.sleep(0.3)
    assert got == want, f"objects of {job['id']}: {sorted(got)}, expected {sorted(want)}"


def submissions(client, prompt: str) -> list[dict[str, Any]]:
    return client.sim_calls(prompt, "submit")


def accepted_submissions(client, prompt: str) -> int:
    """Submissions the provider accepted: each one is a paid generation."""
    return sum(1 for c in submissions(client, prompt) if c["status"] == 200)


def assert_events(client, stack, hook_path: str, job: dict[str, Any], timeout_s: float = 60) -> dict[str, list[dict]]:
    """The event that ends the job arrived at least once, every event type carried one stable
    webhook-id over all its deliveries, every body is signed and describes this job, and a job
    that did not succeed never announced a success."""
    final = FINAL_EVENTS[job["status"]]
    assert client.webhooks(hook_path, event=final, timeout_s=timeout_s), f"no {final} webhook for {job['id']}"
    verifier = standardwebhooks.Webhook(stack.env["VEO_WEBHOOK_SECRET"])
    by_type: dict[str, list[dict]] = {}
    for record in client.webhooks(hook_path, timeout_s=0):
        event = verifier.verify(record["body"], record["headers"])
        assert event["data"]["id"] == job["id"]
        by_type.setdefault(event["type"], []).append(record)
    for event_type, records in by_type.items():
        ids = {_header(r, "webhook-id") for r in records}
        assert len(ids) == 1, f"{event_type} was sent under several ids: {ids}"
    if job["status"] != "succeeded":
        assert "job.succeeded" not in by_type
    last = json.loads(by_type[final][-1]["body"])
    assert last["data"]["status"] == job["status"]
    if job.get("error"):
        assert last["data"]["error"]["code"] == job["error"]["code"]
    return by_type


def _header(record: dict, name: str) -> str | None:
    return {k.lower(): v for k, v in record["headers"].items()}.get(name)


def run_sweep(stack) -> dict[str, Any]:
    """One run of sweep_jobs, as Cloud Scheduler makes it."""
    resp = requests.post(stack.function_urls["sweep_jobs"], json={}, timeout=120,
                         headers={"X-CloudScheduler": "true", **stack.invoker_headers("sweep_jobs")})
    assert resp.status_code == 200, resp.text
    return resp.json()


def wait_for(predicate, timeout_s: float = 60, interval_s: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(interval_s)


def job_tasks(stack, queue: str, job_id: str) -> list:
    return [t for t in stack.tasks_client().list_tasks(parent=stack.queue_path(queue)) if t.name.rsplit("/", 1)[-1].startswith(job_id)]


def drained(stack, queue: str, job_id: str, timeout_s: float = 60) -> None:
    """Wait until `queue` holds no task of the job. The Tasks emulator lists a task until an
    attempt of it is answered 2xx (an attempt in flight included), so once none is left every
    task the job had there has run to its end, and whatever it was to do is done."""
    wait_for(lambda: not job_tasks(stack, queue, job_id), timeout_s=timeout_s, what=f"{queue} to hold no task of {job_id}")


def jobs_with_prompt(stack, prompt: str) -> list[str]:
    """The ids of the job documents whose request has this prompt (what an operator would find)."""
    query = jobs_collection(stack).where(filter=firestore.FieldFilter("request.prompt", "==", prompt))
    return [snap.id for snap in query.stream()]


def lose_tasks(stack, queue: str, job_id: str) -> int:
    """Delete the job's tasks from a queue: a task lost to a purge, a give-up, an operator."""
    tasks = job_tasks(stack, queue, job_id)
    for task in tasks:
        stack.tasks_client().delete_task(name=task.name)
    return len(tasks)


@contextmanager
def process_paused(stack, name: str) -> Iterator[None]:
    """SIGSTOP one of the stack's processes (by PID) for the block, SIGCONT after, whatever happens."""
    stack.pause_process(name)
    try:
        yield
    finally:
        stack.resume_process(name)


@contextmanager
def paused(stack, queue: str) -> Iterator[None]:
    """Hold a queue's dispatches (tasks still get created) for the duration of the block."""
    client = stack.tasks_client()
    client.pause_queue(name=stack.queue_path(queue))
    try:
        yield
    finally:
        client.resume_queue(name=stack.queue_path(queue))
