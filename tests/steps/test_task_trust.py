"""A task's payload against the job's record: the record wins. A webhook task whose event the job
contradicts sends nothing; a poll task that is not of the job's current chain asks nothing; and
nothing a provider or a task adds to a job grows it past its caps, on any path."""
from __future__ import annotations

import time
from datetime import timedelta

import pytest

from veorelay.core.clock import utcnow
from veorelay.core.errors import ErrorCode
from veorelay.core.job import MAX_OUTPUTS, MAX_STAGE_CHARS, JobStatus
from veorelay.net.guarded import BlockedDestination
from veorelay.providers.base import OutputRef, Progress
from veorelay.steps import chain
from veorelay.steps.cancel import cancel_job
from veorelay.steps.chain import PollCall, WebhookCall
from veorelay.steps.deliver import (
    MAX_DELIVERY_RECORDS,
    MAX_PROGRESS_RECORDS,
    deliver_webhook,
    enqueue_progress,
    progress_window,
    redeliver,
)
from veorelay.steps.poll import STALE_CHECK_S, poll_job
from veorelay.steps.sweep import stall_after_s, sweep

from .driver import drain, run_named
from .fake_providers import FakeStream, broken, mp4, running, status, succeeded
from .helpers import WEBHOOK_URL, accepted_job, downloading_job, running_job, streaming_job

pytestmark = pytest.mark.badinput

ALL_EVENTS = ["job.running", "job.progress", "job.succeeded", "job.failed", "job.cancelled"]


def webhook_job(rt, state: str) -> str:
    """A job with a webhook for every event, in `state`; no task pending."""
    if state == "accepted":
        job_id = accepted_job(rt, webhook_url=WEBHOOK_URL, webhook_events=ALL_EVENTS)
    elif state == "running":
        job_id = running_job(rt, webhook_url=WEBHOOK_URL, webhook_events=ALL_EVENTS)
    elif state == "succeeded":
        job_id = downloading_job(rt, mp4(4000), webhook_url=WEBHOOK_URL, webhook_events=ALL_EVENTS)
        run_named(rt, f"{job_id}-finalize")
    elif state == "cancelled":
        job_id = running_job(rt, webhook_url=WEBHOOK_URL, webhook_events=ALL_EVENTS)
        cancel_job(rt, job_id)
    else:
        raise AssertionError(state)
    rt.scheduler.pending.clear()
    return job_id


def send(rt, job_id: str, event: str, seq: int | None = None, attempt: int = 1) -> None:
    deliver_webhook(rt, job_id, WebhookCall(event, attempt, seq, ""))


# ------------------------------------------------------------------------------ webhook events


@pytest.mark.parametrize("state, event", [
    ("running", "job.succeeded"),  # the case: no job.succeeded for a running job
    ("running", "job.failed"),
    ("accepted", "job.cancelled"),
    ("succeeded", "job.failed"),
    ("succeeded", "job.cancelled"),
    ("cancelled", "job.succeeded"),
    ("accepted", "job.running"),  # never ran
])
def test_an_event_the_job_contradicts_is_a_no_op(rt, store, tasks, receiver, state, event):
    job_id = webhook_job(rt, state)
    writes = len(store.writes)

    send(rt, job_id, event)

    assert receiver.sent == [] and len(store.writes) == writes and tasks.pending == []


@pytest.mark.parametrize("state, event", [
    ("running", "job.running"),
    ("succeeded", "job.running"),  # a late retry of an event that did happen still goes
    ("succeeded", "job.succeeded"),
    ("cancelled", "job.cancelled"),
])
def test_an_event_the_job_bears_out_is_sent(rt, store, receiver, state, event):
    job_id = webhook_job(rt, state)
    send(rt, job_id, event)
    assert [s.url for s in receiver.sent] == [WEBHOOK_URL] and store.job(job_id)["deliveries"][0]["event"] == event


def test_an_event_the_webhook_did_not_ask_for_is_a_no_op(rt, receiver):
    job_id = running_job(rt, webhook_url=WEBHOOK_URL, webhook_events=["job.succeeded"])
    send(rt, job_id, "job.running")
    assert receiver.sent == []


def test_progress_goes_only_while_the_job_runs_within_its_running_time(rt, store, receiver):
    job_id = webhook_job(rt, "running")
    now = progress_window(rt, time.time())
    started = progress_window(rt, store.job(job_id)["timestamps"]["running"].timestamp())

    for seq in (None, now + 5, started - 3):  # no number, the future, before the job ran
        send(rt, job_id, "job.progress", seq)
    send(rt, job_id, "job.running", seq=now)  # only job.progress events are numbered
    assert receiver.sent == []

    send(rt, job_id, "job.progress", now)
    assert [d["seq"] for d in store.job(job_id)["deliveries"]] == [now]


def test_progress_after_the_job_moved_on_goes_only_if_it_was_sent_before(rt, store, receiver):
    job_id = webhook_job(rt, "running")
    seq = progress_window(rt, time.time())
    send(rt, job_id, "job.progress", seq)
    store.edit(job_id, status="downloading")

    send(rt, job_id, "job.progress", seq + 1)  # never sent while running: stale now
    send(rt, job_id, "job.progress", seq)  # recorded: a redelivery of it may go again

    assert [d["seq"] for d in store.job(job_id)["deliveries"]] == [seq, seq] and len(receiver.sent) == 2


# ------------------------------------------------------------------------------ the deliveries cap


def test_a_full_record_of_attempts_sends_nothing_more(rt, store, tasks, receiver):
    job_id = webhook_job(rt, "succeeded")
    store.edit(job_id, deliveries=[{"n": i} for i in range(MAX_DELIVERY_RECORDS)])
    send(rt, job_id, "job.succeeded")
    assert receiver.sent == [] and len(store.job(job_id)["deliveries"]) == MAX_DELIVERY_RECORDS and tasks.pending == []


def test_an_attempt_that_finds_the_record_filled_meanwhile_queues_no_next_one(rt, store, tasks, receiver, monkeypatch):
    job_id = webhook_job(rt, "succeeded")
    receiver.answer(500)
    monkeypatch.setattr(store, "append", lambda *args, **kwargs: False)  # another attempt filled it first

    send(rt, job_id, "job.succeeded")

    assert len(receiver.sent) == 1 and tasks.pending == []


def test_redeliveries_never_grow_the_record_past_its_cap(rt, store, tasks, receiver):
    job_id = webhook_job(rt, "succeeded")
    store.edit(job_id, deliveries=[{"n": i} for i in range(MAX_DELIVERY_RECORDS - 1)])
    receiver.answer(500)

    redeliver(rt, store.job(job_id))
    drain(rt)

    assert len(store.job(job_id)["deliveries"]) == MAX_DELIVERY_RECORDS and tasks.pending == []


def test_progress_never_crowds_out_how_the_job_ended(rt, store, tasks, receiver):
    job_id = webhook_job(rt, "running")
    store.edit(job_id, deliveries=[{"n": i} for i in range(MAX_PROGRESS_RECORDS)])
    assert enqueue_progress(rt, store.job(job_id)) is False
    send(rt, job_id, "job.progress", progress_window(rt, time.time()))
    assert receiver.sent == []
    store.edit(job_id, status="succeeded")
    send(rt, job_id, "job.succeeded")
    assert len(receiver.sent) == 1 and store.job(job_id)["deliveries"][-1]["event"] == "job.succeeded"


def test_a_recorded_error_is_short(rt, store, receiver):
    job_id = webhook_job(rt, "succeeded")
    receiver.answer(BlockedDestination("x" * 5000))  # its message is recorded
    send(rt, job_id, "job.succeeded")
    assert len(store.job(job_id)["deliveries"][0]["error"]) <= 200


# ------------------------------------------------------------------------------ the current chain


def test_a_poll_task_of_another_chain_asks_nothing_and_queues_nothing(rt, provider, store, tasks):
    job_id = running_job(rt)
    tasks.pending.clear()
    provider.checks.set(running(40))
    writes = len(store.writes)

    poll_job(rt, job_id, PollCall(3, 10.0, 0, "deadbeef"))  # a chain this job never had
    poll_job(rt, job_id, chain.decode_poll({"job_id": job_id, "poll": 3, "chain": 5}))  # a chain no code of ours wrote
    poll_job(rt, job_id, PollCall(3, 10.0, 1))  # a sweep generation it never reached

    assert provider.calls == [] and tasks.pending == [] and len(store.writes) == writes


def test_a_check_retried_for_over_half_an_hour_ends_its_chain(rt, provider, store, tasks):
    job_id = running_job(rt)
    tasks.pending.clear()
    store.edit(job_id, **{"timestamps.running": utcnow() - timedelta(seconds=STALE_CHECK_S + 200)})
    provider.checks.set(running(40))

    poll_job(rt, job_id, PollCall(7, 10.0, 0))  # its previous check was 40 min ago

    assert provider.calls == [] and tasks.pending == []


def test_checks_of_the_current_chain_write_nothing_to_stay_current(rt, provider, store, tasks):
    job_id = streaming_job(rt)
    rt.providers["fakestream"].streams.set([broken()])
    run_named(rt, f"{job_id}-stream")  # the stream broke: the job is taken over by a chain of checks
    chain_id = store.job(job_id)["poll_chain"]
    rt.providers["fakestream"].checks.set(running())
    # The first check finds the generation again and claims it, once (steps/recover.py).
    run_named(rt, f"{job_id}-c{chain_id}-poll-1")
    writes = len(store.writes)

    for n in (2, 3):
        run_named(rt, f"{job_id}-c{chain_id}-poll-{n}")

    assert len(store.writes) == writes and tasks.pending_names() == [f"{job_id}-c{chain_id}-poll-4"]


def test_the_sweep_restarts_a_taken_over_chain_under_a_new_generation(rt, store, tasks):
    job_id = streaming_job(rt)
    rt.providers["fakestream"].streams.set([broken()])
    run_named(rt, f"{job_id}-stream")
    chain_id = store.job(job_id)["poll_chain"]
    old = tasks.take(f"{job_id}-c{chain_id}-poll-1")

    sweep(rt, now=utcnow() + timedelta(seconds=stall_after_s(rt.settings, JobStatus.RUNNING) + 1))

    (restart,) = tasks.pending
    assert restart.name == f"{job_id}-g1-c{chain_id}-poll-1" and restart.payload["gen"] == 1
    rt.providers["fakestream"].checks.set(running())
    poll_job(rt, job_id, chain.decode_poll(old.payload))  # the lost chain, only slow: ends
    assert rt.providers["fakestream"].count("check") == 0


# ------------------------------------------------------------------------------ what providers add


def test_a_providers_progress_is_kept_short_and_in_range(rt, provider, store, streamer):
    job_id = running_job(rt)
    provider.checks.set(running(250))
    run_named(rt, f"{job_id}-poll-1")
    assert store.job(job_id)["progress"] == {"percent": 100, "stage": "running"}

    streamed = streaming_job(rt)
    streamer.streams.set(FakeStream([status("x" * 10_000, -5), broken()]))
    run_named(rt, f"{streamed}-stream")
    progress = store.job(streamed)["progress"]
    assert len(progress["stage"]) == MAX_STAGE_CHARS and progress["percent"] == 0


def test_more_videos_than_any_request_asks_for_are_not_kept(rt, provider, store):
    job_id = running_job(rt)
    provider.checks.set(succeeded(*(f"https://videos.fake/{job_id}/{i}.mp4" for i in range(50))))
    run_named(rt, f"{job_id}-poll-1")
    assert len(store.job(job_id)["pending_outputs"]) == MAX_OUTPUTS


def test_a_video_reference_too_long_to_keep_fails_the_job(rt, provider, store):
    job_id = running_job(rt)
    provider.checks.set(Progress("succeeded", percent=100, outputs=(OutputRef(0, url="https://videos.fake/" + "a" * 20_000),)))
    run_named(rt, f"{job_id}-poll-1")
    job = store.job(job_id)
    assert job["status"] == JobStatus.FAILED and job["error"]["code"] == ErrorCode.PROVIDER_ERROR
    assert "pending_outputs" not in job


def test_a_late_result_keeps_no_more_videos_than_a_job_may_have(rt, provider, store):
    job_id = running_job(rt)
    urls = [f"https://videos.fake/{job_id}/{i}.mp4" for i in range(50)]

    def finished_while_cancelled(handle):
        cancel_job(rt, job_id)
        return succeeded(*urls)

    provider.checks.set(finished_while_cancelled)
    run_named(rt, f"{job_id}-poll-1")

    job = store.job(job_id)
    assert job["status"] == JobStatus.CANCELLED and len(job["late_result"]["outputs"]) == MAX_OUTPUTS
