"""The poll step (steps/poll.py): one check of the provider, then the next check, the
download, or the failure; a late or superseded check calls no provider."""
from __future__ import annotations

import pytest

from veorelay.core.errors import ErrorCode
from veorelay.core.job import JobStatus
from veorelay.providers.base import Progress
from veorelay.steps.cancel import cancel_job
from veorelay.steps.chain import PollCall
from veorelay.steps.poll import poll_job

from .driver import run_named
from .fake_providers import failed, rai_filtered, refused, running, succeeded, throttled, unavailable
from .helpers import WEBHOOK_URL, past, running_job


def test_a_job_still_running_gets_its_progress_and_its_next_check(rt, provider, store, tasks):
    job_id = running_job(rt)
    provider.checks.set(running(40))

    run_named(rt, f"{job_id}-poll-1")

    job = store.job(job_id)
    assert job["status"] == JobStatus.RUNNING and job["progress"] == {"percent": 40, "stage": "running"}
    assert provider.count("check") == 1 and provider.calls[0].args == ({"operation": f"operations/{job_id}"},)
    (poll,) = tasks.pending
    assert poll.name == f"{job_id}-poll-2" and poll.payload["poll"] == 2 and poll.payload["checked_s"] >= 0
    assert rt.settings.poll.min_delay_s <= poll.delay_s <= rt.settings.poll.max_delay_s


@pytest.mark.parametrize("percent", [None, 0])
def test_no_new_percent_is_no_write(rt, provider, store, tasks, percent):
    job_id = running_job(rt)
    provider.checks.set(running(percent))
    writes = len(store.writes)

    run_named(rt, f"{job_id}-poll-1")

    assert len(store.writes) == writes and tasks.pending_names() == [f"{job_id}-poll-2"]


def test_progress_events_go_out_only_when_asked_for(rt, provider, tasks):
    quiet = running_job(rt, webhook_url=WEBHOOK_URL)
    chatty = running_job(rt, webhook_url=WEBHOOK_URL, webhook_events=["job.progress", "job.succeeded"])
    tasks.pending = [t for t in tasks.pending if t.target == "poll_job"]
    provider.checks.set(running(25))

    run_named(rt, f"{quiet}-poll-1")
    run_named(rt, f"{chatty}-poll-1")

    progress = [t for t in tasks.pending if t.target == "deliver_webhook"]
    assert [t.job_id for t in progress] == [chatty] and progress[0].payload["event"] == "job.progress"
    assert progress[0].name.startswith(f"{chatty}-wh-job_progress-")


def test_a_finished_job_moves_to_downloading_and_its_finalize_is_queued(rt, provider, store, tasks):
    job_id = running_job(rt)
    urls = ("https://videos.fake/a.mp4", "https://videos.fake/b.mp4")
    provider.checks.set(succeeded(*urls))

    run_named(rt, f"{job_id}-poll-1")

    job = store.job(job_id)
    assert job["status"] == JobStatus.DOWNLOADING and job["progress"] == {"percent": 100, "stage": "downloading"}
    assert [(o["index"], o["url"]) for o in job["pending_outputs"]] == [(0, urls[0]), (1, urls[1])]
    (finalize,) = tasks.pending
    assert (finalize.name, finalize.queue, finalize.request.dispatch_deadline_s) == (f"{job_id}-finalize", "veo-finalize", 1800)
    assert [r[2] for r in rt.durations.recorded] == [job_id]  # one generation time learned


def test_a_repeated_check_of_a_finished_job_calls_no_provider_and_learns_nothing_twice(rt, provider, store, tasks):
    job_id = running_job(rt)
    provider.checks.set(succeeded("https://videos.fake/a.mp4"))
    run_named(rt, f"{job_id}-poll-1")
    before = store.job(job_id)

    poll_job(rt, job_id, PollCall(1, None, 0))  # the same task redelivered

    assert provider.count("check") == 1 and store.job(job_id) == before
    assert len(rt.durations.recorded) == 1 and tasks.refused == []


@pytest.mark.parametrize("answer, code", [
    (failed(), ErrorCode.PROVIDER_ERROR),
    (rai_filtered(), ErrorCode.RAI_FILTERED),
    (failed(ErrorCode.DOWNLOAD_EXPIRED, "the video expired"), ErrorCode.DOWNLOAD_EXPIRED),
])
def test_a_failure_the_provider_reports_fails_the_job_with_its_code(rt, provider, store, tasks, answer, code):
    job_id = running_job(rt, webhook_url=WEBHOOK_URL)
    tasks.pending.clear()
    provider.checks.set(answer)

    poll_job(rt, job_id, PollCall(1, None, 0))

    job = store.job(job_id)
    assert job["status"] == JobStatus.FAILED and job["error"]["code"] == code and job["error"]["message"] == answer.error.message
    assert tasks.pending_names() == [f"{job_id}-wh-job_failed-1"]


def test_a_failure_without_a_reason_is_a_provider_error(rt, provider, store):
    job_id = running_job(rt)
    provider.checks.set(Progress("failed"))
    run_named(rt, f"{job_id}-poll-1")
    assert store.job(job_id)["error"]["code"] == ErrorCode.PROVIDER_ERROR


def test_a_permanent_error_from_the_check_fails_the_job(rt, provider, store, tasks):
    job_id = running_job(rt)
    provider.checks.set(refused(ErrorCode.ACCESS_DENIED, "fake refused our credentials (403)"))
    run_named(rt, f"{job_id}-poll-1")
    assert store.job(job_id)["error"]["code"] == ErrorCode.ACCESS_DENIED and tasks.pending == []


@pytest.mark.parametrize("error", [unavailable(), throttled(20)])
def test_a_transient_error_from_the_check_is_retried_by_the_queue_and_changes_nothing(rt, provider, store, tasks, error):
    job_id = running_job(rt)
    provider.checks.set(error)
    tasks.take(f"{job_id}-poll-1")
    before = store.job(job_id)

    with pytest.raises(type(error)):
        poll_job(rt, job_id, PollCall(1, None, 0))

    assert store.job(job_id) == before and tasks.pending == []


def test_a_job_past_its_deadline_is_failed_without_asking_the_provider(rt, provider, store, tasks):
    job_id = running_job(rt)
    store.edit(job_id, deadline_at=past())
    run_named(rt, f"{job_id}-poll-1")
    job = store.job(job_id)
    assert job["error"]["code"] == ErrorCode.DEADLINE_EXCEEDED and provider.calls == [] and tasks.pending == []


@pytest.mark.parametrize("status", ["accepted", "downloading", "succeeded", "failed", "cancelled"])
def test_a_late_check_calls_no_provider_and_queues_nothing(rt, provider, store, tasks, status):
    job_id = running_job(rt)
    tasks.pending.clear()
    store.edit(job_id, status=status)
    before = store.job(job_id)

    poll_job(rt, job_id, PollCall(3, 12.0, 0))
    poll_job(rt, "f" * 32, PollCall(1, None, 0))

    assert provider.calls == [] and tasks.pending == [] and store.job(job_id) == before


def test_a_check_of_a_chain_the_sweep_replaced_calls_no_provider(rt, provider, store, tasks):
    job_id = running_job(rt)
    store.edit(job_id, sweep_gen=1)
    tasks.pending.clear()
    provider.checks.set(running(50))

    poll_job(rt, job_id, PollCall(4, 30.0, 0))
    assert provider.calls == [] and tasks.pending == []

    poll_job(rt, job_id, PollCall(1, None, 1))
    assert provider.count("check") == 1 and tasks.pending_names() == [f"{job_id}-g1-poll-2"]


def test_a_job_cancelled_while_the_provider_finished_it_records_the_late_result_and_stores_nothing(rt, provider, store, tasks, bucket):
    job_id = running_job(rt)
    tasks.pending.clear()

    def finished_but_cancelled_meanwhile(handle):
        cancel_job(rt, job_id)
        return succeeded("https://videos.fake/late.mp4")

    provider.checks.set(finished_but_cancelled_meanwhile)
    poll_job(rt, job_id, PollCall(1, None, 0))

    job = store.job(job_id)
    assert job["status"] == JobStatus.CANCELLED
    assert job["late_result"]["state"] == "succeeded" and job["late_result"]["outputs"][0]["url"] == "https://videos.fake/late.mp4"
    assert [t.target for t in tasks.pending] == [] and bucket.names() == [] and rt.durations.recorded == []
