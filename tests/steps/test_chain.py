"""A job's whole chain, task after task, as the queues would run it."""
from __future__ import annotations

from datetime import timedelta

import pytest
from google.api_core import exceptions as gexc

from veorelay.core.clock import utcnow
from veorelay.core.errors import ErrorCode, TransientError
from veorelay.core.job import JobStatus
from veorelay.steps import chain
from veorelay.steps.sweep import stall_after_s, sweep

from .driver import drain, errors
from .fake_providers import Video, broken, mp4, rai_filtered, running, status, succeeded, unavailable
from .helpers import WEBHOOK_URL, accepted_job, job_json_name, poster_name, video_name


def test_a_job_goes_from_accepted_to_succeeded_with_its_video_and_events(rt, provider, store, tasks, bucket, receiver):
    job_id = accepted_job(rt, webhook_url=WEBHOOK_URL)
    url = f"https://videos.fake/{job_id}/0.mp4"
    video = mp4(300_000)
    provider.serve(url, video)
    provider.checks.set(running(10), running(60), succeeded(url))

    log = drain(rt)

    assert errors(log) == []
    job = store.job(job_id)
    assert job["status"] == JobStatus.SUCCEEDED
    assert bucket.data(video_name(rt, job_id, 0)) == video
    assert bucket.names(f"videos/{job_id}/") == [poster_name(rt, job_id, 0), video_name(rt, job_id, 0), job_json_name(rt, job_id)]
    assert tasks.names() == [
        f"{job_id}-submit", f"{job_id}-wh-job_running-1", f"{job_id}-poll-1",
        f"{job_id}-poll-2", f"{job_id}-poll-3", f"{job_id}-finalize", f"{job_id}-wh-job_succeeded-1",
    ]
    assert [(d["event"], d["outcome"]) for d in job["deliveries"]] == [("job.running", "delivered"), ("job.succeeded", "delivered")]
    assert [c.method for c in provider.calls] == ["submit", "check", "check", "check", "open_output"]
    assert len(receiver.sent) == 2


def test_a_job_the_provider_fails_ends_failed_with_its_event_and_no_video(rt, provider, store, bucket, receiver):
    job_id = accepted_job(rt, webhook_url=WEBHOOK_URL)
    provider.checks.set(running(20), rai_filtered())

    log = drain(rt)

    assert errors(log) == [] and store.job(job_id)["error"]["code"] == ErrorCode.RAI_FILTERED
    assert [d["event"] for d in store.job(job_id)["deliveries"]] == ["job.running", "job.failed"]
    assert bucket.names() == [] and provider.count("open_output") == 0


def test_a_streamed_job_goes_from_accepted_to_succeeded(rt, streamer, store, bucket):
    job_id = accepted_job(rt, provider="fakestream")
    url = "https://files.fake/stream.mp4"
    streamer.streams.set([status("starting"), status("processing"), broken()])  # the stream breaks...
    streamer.checks.set(running(), succeeded(url))  # ...and polling finds the job
    streamer.serve(url, mp4(5000))

    log = drain(rt)

    assert errors(log) == [] and store.job(job_id)["status"] == JobStatus.SUCCEEDED
    # Found again by search (candidates) once, claimed, then followed by its pinned handle.
    assert [c.method for c in streamer.calls] == ["open_stream", "candidates", "check", "check", "open_output"]
    assert bucket.names(f"videos/{job_id}/") == [poster_name(rt, job_id, 0), video_name(rt, job_id, 0), job_json_name(rt, job_id)]


def test_crashes_and_outages_along_the_chain_are_retried_to_one_video_and_one_payment(rt, provider, store, tasks, bucket):
    job_id = accepted_job(rt)
    url = f"https://videos.fake/{job_id}/0.mp4"
    video = mp4(3 * 256 * 1024)
    provider.submits.set(unavailable(), {"operation": "op-1"})
    provider.checks.set(unavailable(), succeeded(url))
    provider.serve(url, Video(video, cut_after=1000), video)
    bucket.faults.add("upload_chunk", gexc.ServiceUnavailable("upload failed"))

    log = drain(rt, max_attempts=5)

    assert [type(e).__name__ for e in errors(log)] == ["TransientError"] * 4
    assert store.job(job_id)["status"] == JobStatus.SUCCEEDED and bucket.data(video_name(rt, job_id, 0)) == video
    assert provider.count("submit") == 2 and store.job(job_id)["handle"] == {"operation": "op-1"}


def test_a_chain_lost_between_two_steps_is_picked_up_by_the_sweep(rt, provider, store, tasks):
    job_id = accepted_job(rt, deadline_seconds=3 * 3600)
    url = f"https://videos.fake/{job_id}/0.mp4"
    provider.checks.set(succeeded(url))
    provider.serve(url, mp4(5000))
    tasks.faults.add("enqueue", TransientError("internal", "queue unavailable"), name=f"{job_id}-finalize")

    drain(rt)  # poll-1 moved the job to downloading, then could not queue its finalize

    assert store.job(job_id)["status"] == JobStatus.DOWNLOADING and tasks.pending == []
    sweep(rt, now=utcnow() + timedelta(seconds=stall_after_s(rt.settings, JobStatus.DOWNLOADING) + 1))
    drain(rt)
    assert store.job(job_id)["status"] == JobStatus.SUCCEEDED and f"{job_id}-g1-finalize" in tasks.names()


# ---------------------------------------------------------------------------- names and payloads (chain.py)

JOB = "0123456789abcdef0123456789abcdef"


def job(**fields) -> dict:
    return {"id": JOB, "provider": "fake", "status": "accepted", **fields}


def test_every_task_of_a_chain_has_its_own_name_and_queue(rt):
    s = rt.settings
    assert [(t.name, t.queue, t.target) for t in (
        chain.submit_task(s, job()), chain.submit_task(s, job(), retry=2), chain.submit_task(s, job(sweep_gen=3)),
        chain.stream_task(s, job()), chain.stream_task(s, job(sweep_gen=1)),
        chain.poll_task(s, job(), 4), chain.poll_task(s, job(sweep_gen=2), 1),
        chain.finalize_task(s, job()), chain.finalize_task(s, job(sweep_gen=1)),
    )] == [
        (f"{JOB}-submit", "veo-submit-fake", "submit_job"), (f"{JOB}-submit-2", "veo-submit-fake", "submit_job"),
        (f"{JOB}-g3-submit", "veo-submit-fake", "submit_job"),
        (f"{JOB}-stream", "veo-stream", "stream_job"), (f"{JOB}-stream-g1", "veo-stream", "stream_job"),
        (f"{JOB}-poll-4", "veo-poll", "poll_job"), (f"{JOB}-g2-poll-1", "veo-poll", "poll_job"),
        (f"{JOB}-finalize", "veo-finalize", "finalize_job"), (f"{JOB}-g1-finalize", "veo-finalize", "finalize_job"),
    ]
    assert [chain.webhook_task(s, JOB, "job.progress", 1, seq=17, chain="r1700000000").name,
            chain.webhook_task(s, JOB, "job.failed", 3).name] == [
        f"{JOB}-wh-job_progress-17-r1700000000-1", f"{JOB}-wh-job_failed-3"]


@pytest.mark.parametrize("status, name", [("accepted", "g1-submit"), ("running", "g1-poll-1"), ("downloading", "g1-finalize")])
def test_the_sweep_restarts_the_step_of_the_jobs_state(rt, status, name):
    assert chain.restart_task(rt.settings, job(status=status, sweep_gen=1)).name == f"{JOB}-{name}"


@pytest.mark.parametrize("payload, call", [
    ({"poll": 3, "checked_s": 12.5, "gen": 2}, chain.PollCall(3, 12.5, 2)),
    ({}, chain.PollCall(1, None, 0)),
    ({"poll": "3", "checked_s": -1, "gen": True}, chain.PollCall(1, None, 0)),
    ({"poll": 0, "checked_s": "soon", "gen": -1}, chain.PollCall(1, None, 0)),
])
def test_a_poll_payload_is_read_with_safe_defaults(payload, call):
    assert chain.decode_poll(payload) == call


@pytest.mark.parametrize("payload, call", [
    ({"event": "job.succeeded", "attempt": 2}, chain.WebhookCall("job.succeeded", 2, None, "")),
    ({"event": "job.progress", "seq": 5, "chain": "r123"}, chain.WebhookCall("job.progress", 1, 5, "r123")),
    ({"event": "job.exploded"}, None),
    ({"event": "job.failed", "attempt": 0}, None),
    ({"event": "job.failed", "seq": "5"}, None),
    ({"event": "job.failed", "chain": "x/../y"}, None),
])
def test_a_webhook_payload_we_never_wrote_is_refused(payload, call):
    assert chain.decode_webhook(payload) == call
