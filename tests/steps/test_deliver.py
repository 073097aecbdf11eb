"""Webhook delivery (steps/deliver.py): one signed attempt per task, each recorded on the job;
the retry schedule is ours (a new named task per attempt), a 410 or a used-up schedule ends it."""
from __future__ import annotations

import json
import time

import pytest
import requests
from standardwebhooks import Webhook

from veorelay.core.errors import ApiError, TransientError
from veorelay.core.events import webhook_id
from veorelay.net.guarded import BlockedDestination
from veorelay.steps.chain import WebhookCall
from veorelay.steps.deliver import MAX_DELIVERY_RECORDS, deliver_webhook, enqueue_progress, progress_window, redeliver

from .driver import drain, run_named
from .fake_providers import mp4
from .fakes import WEBHOOK_SECRET, FakeResponse, make_runtime
from .helpers import WEBHOOK_URL, accepted_job, downloading_job, receiver_of, running_job, store_of, tasks_of

SCHEDULE = (0.0, 5.0, 300.0)  # VEO_WEBHOOK_RETRY_SCHEDULE of the step tests' settings


def succeeded_job(rt, **fields) -> str:
    """A succeeded job with one video, its job.succeeded attempt 1 pending (and nothing else)."""
    job_id = downloading_job(rt, mp4(5000), webhook_url=WEBHOOK_URL, **fields)
    run_named(rt, f"{job_id}-finalize")
    tasks = tasks_of(rt)
    tasks.pending = [t for t in tasks.pending if t.name == f"{job_id}-wh-job_succeeded-1"]
    return job_id


def call(event: str = "job.succeeded", attempt: int = 1, seq: int | None = None, chain: str = "") -> WebhookCall:
    return WebhookCall(event, attempt, seq, chain)


def test_an_event_is_posted_once_signed_and_its_delivery_recorded(rt, store, tasks, receiver):
    job_id = succeeded_job(rt)

    run_named(rt, f"{job_id}-wh-job_succeeded-1")

    (sent,) = receiver.sent
    assert (sent.method, sent.url, sent.allow_redirects) == ("POST", WEBHOOK_URL, False)
    event = Webhook(WEBHOOK_SECRET).verify(sent.body, sent.headers)  # raises unless signed with the secret
    assert sent.headers["webhook-id"] == webhook_id(job_id, "job.succeeded")
    assert event["type"] == "job.succeeded" and event["data"]["id"] == job_id and event["data"]["status"] == "succeeded"
    (output,) = event["data"]["outputs"]
    assert output["signed_url"].startswith(f"https://storage.fake/{rt.bucket.name}/videos/{job_id}/0.mp4")
    (delivery,) = store.job(job_id)["deliveries"]
    assert delivery["outcome"] == "delivered" and delivery["status_code"] == 200 and delivery["attempt"] == 1
    assert delivery["next_attempt_at"] is None and tasks.pending == []


def test_a_failed_attempt_is_recorded_and_the_next_one_queued_by_the_schedule(rt, store, tasks, receiver):
    job_id = succeeded_job(rt)
    receiver.answer(500)

    run_named(rt, f"{job_id}-wh-job_succeeded-1")

    (delivery,) = store.job(job_id)["deliveries"]
    assert delivery["outcome"] == "retrying" and delivery["error"] == "receiver answered 500" and delivery["next_attempt_at"]
    (retry,) = tasks.pending
    assert (retry.name, retry.delay_s, retry.payload) == (
        f"{job_id}-wh-job_succeeded-2", SCHEDULE[1], {"job_id": job_id, "event": "job.succeeded", "attempt": 2})


def test_a_receivers_retry_after_longer_than_the_schedule_is_honoured(rt, tasks, receiver):
    job_id = succeeded_job(rt)
    receiver.answer(FakeResponse(503, {"Retry-After": "120"}))
    run_named(rt, f"{job_id}-wh-job_succeeded-1")
    assert [t.delay_s for t in tasks.pending] == [120.0]


def test_the_schedule_used_up_gives_up_and_every_attempt_is_on_the_job(rt, store, tasks, receiver):
    job_id = succeeded_job(rt)
    receiver.answer(502)

    drain(rt)

    deliveries = store.job(job_id)["deliveries"]
    assert [(d["attempt"], d["outcome"]) for d in deliveries] == [(1, "retrying"), (2, "retrying"), (3, "gave_up")]
    assert tasks.names("deliver_webhook")[-3:] == [f"{job_id}-wh-job_succeeded-{n}" for n in (1, 2, 3)]
    assert len(receiver.sent) == 3 and len({s.headers["webhook-id"] for s in receiver.sent}) == 1


def test_a_retry_that_gets_through_ends_the_schedule(rt, store, receiver):
    job_id = succeeded_job(rt)
    receiver.answer(500, 204)
    drain(rt)
    assert [d["outcome"] for d in store.job(job_id)["deliveries"]] == ["retrying", "delivered"]


@pytest.mark.parametrize("answer, outcome", [
    (410, "gone"),
    (BlockedDestination("the address is private"), "blocked"),
])
def test_a_receiver_that_is_gone_or_blocked_is_not_tried_again(rt, store, tasks, receiver, answer, outcome):
    job_id = succeeded_job(rt)
    receiver.answer(answer)
    run_named(rt, f"{job_id}-wh-job_succeeded-1")
    assert [d["outcome"] for d in store.job(job_id)["deliveries"]] == [outcome] and tasks.pending == []


@pytest.mark.parametrize("answer, error", [
    (requests.Timeout("read timed out"), "no answer within"),
    (requests.ConnectionError("refused"), "could not connect"),
    (FakeResponse(302, {"Location": "https://elsewhere.example/"}), "redirects are not followed"),
])
def test_a_receiver_that_does_not_answer_well_is_tried_again(rt, store, tasks, receiver, answer, error):
    job_id = succeeded_job(rt)
    receiver.answer(answer)
    run_named(rt, f"{job_id}-wh-job_succeeded-1")
    (delivery,) = store.job(job_id)["deliveries"]
    assert delivery["outcome"] == "retrying" and error in delivery["error"]
    assert tasks.pending_names() == [f"{job_id}-wh-job_succeeded-2"]


def test_a_failed_progress_event_is_not_retried(rt, store, tasks, receiver):
    job_id = running_job(rt, webhook_url=WEBHOOK_URL, webhook_events=["job.progress"])
    tasks.pending.clear()
    receiver.answer(500)
    seq = progress_window(rt, time.time())
    deliver_webhook(rt, job_id, call("job.progress", seq=seq))
    (delivery,) = store.job(job_id)["deliveries"]
    assert delivery["outcome"] == "not_retried" and delivery["seq"] == seq and tasks.pending_names() == []


def test_without_a_secret_for_the_client_nothing_is_sent_unsigned(provider):
    rt = make_runtime({"VEO_WEBHOOK_SECRET": None}, providers=[provider])
    job_id = running_job(rt, webhook_url=WEBHOOK_URL)
    with pytest.raises(TransientError):
        deliver_webhook(rt, job_id, call("job.running"))
    assert receiver_of(rt).sent == [] and "deliveries" not in store_of(rt).job(job_id)


def test_a_webhook_task_for_no_webhook_no_job_or_a_payload_we_never_wrote_sends_nothing(rt, store, receiver):
    job_id = accepted_job(rt)
    deliver_webhook(rt, job_id, call("job.running"))
    deliver_webhook(rt, "f" * 32, call("job.running"))
    deliver_webhook(rt, job_id, None)
    assert receiver.sent == [] and "deliveries" not in store.job(job_id)


def test_an_output_url_that_cannot_be_signed_is_null_and_the_event_still_goes(rt, bucket, store, receiver):
    job_id = succeeded_job(rt)
    bucket.faults.add("sign", RuntimeError("signBlob refused"))
    run_named(rt, f"{job_id}-wh-job_succeeded-1")
    event = json.loads(receiver.sent[0].body)
    assert event["data"]["outputs"][0]["signed_url"] is None and store.job(job_id)["deliveries"][0]["outcome"] == "delivered"


def test_progress_events_are_queued_at_most_once_per_window(provider):
    # A window of ~30 years: the two calls below cannot straddle two windows.
    rt = make_runtime({"VEO_WEBHOOK_PROGRESS_INTERVAL_SECONDS": "1000000000"}, providers=[provider])
    store, tasks = store_of(rt), tasks_of(rt)
    job_id = accepted_job(rt, webhook_url=WEBHOOK_URL, webhook_events=["job.progress"])
    job = store.job(job_id)

    assert [enqueue_progress(rt, job), enqueue_progress(rt, job)] == [True, False]

    window = int(time.time() // 1_000_000_000)
    assert f"{job_id}-wh-job_progress-{window}-1" in tasks.names()
    store.edit(job_id, deliveries=[{"n": i} for i in range(MAX_DELIVERY_RECORDS)])
    tasks.forget_names()
    assert enqueue_progress(rt, store.job(job_id)) is False  # the job's record is full


def test_a_redelivery_sends_the_last_event_again_with_its_id_on_a_fresh_schedule(rt, store, tasks, receiver):
    job_id = succeeded_job(rt)
    drain(rt)

    answer = redeliver(rt, store.job(job_id))

    assert answer["event"] == "job.succeeded" and answer["queued"] is True and answer["webhook_id"] == webhook_id(job_id, "job.succeeded")
    (task,) = tasks.pending
    assert task.name.startswith(f"{job_id}-wh-job_succeeded-r") and task.payload["chain"].startswith("r")
    assert redeliver(rt, store.job(job_id))["queued"] is False  # a double click within the second
    drain(rt)
    deliveries = store.job(job_id)["deliveries"]
    assert [d.get("redelivery", False) for d in deliveries] == [False, True]
    assert receiver.sent[0].headers["webhook-id"] == receiver.sent[1].headers["webhook-id"]


def test_a_redelivery_needs_a_webhook_an_event_and_room_on_the_job(rt, store):
    no_hook = accepted_job(rt)
    with pytest.raises(ApiError) as refused:
        redeliver(rt, store.job(no_hook))
    assert refused.value.status == 409
    no_event = accepted_job(rt, webhook_url=WEBHOOK_URL)
    with pytest.raises(ApiError) as refused:
        redeliver(rt, store.job(no_event))
    assert refused.value.status == 409
    full = succeeded_job(rt)
    store.edit(full, deliveries=[{"n": i} for i in range(MAX_DELIVERY_RECORDS)])
    with pytest.raises(ApiError) as refused:
        redeliver(rt, store.job(full))
    assert refused.value.status == 429
