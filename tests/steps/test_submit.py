"""The submit step (steps/submit.py): the provider is paid once per job, under a claim; a
throttled submission waits on a task of its own; a refusal fails the job."""
from __future__ import annotations

from datetime import timedelta

import pytest

from veorelay.core.clock import utcnow
from veorelay.core.errors import ErrorCode, TransientError
from veorelay.core.job import JobStatus
from veorelay.steps.cancel import cancel_job
from veorelay.steps.submit import MAX_RETRY_AFTER_S, SUBMIT_LEASE_S, submit_job

from .driver import run_named
from .fake_providers import refused, throttled, unavailable
from .helpers import WEBHOOK_URL, accepted_job, past


def test_a_submitted_job_is_running_with_the_providers_handle_and_its_first_check_queued(rt, provider, store, tasks):
    job_id = accepted_job(rt, model="veo-fake-2")

    run_named(rt, f"{job_id}-submit")

    job = store.job(job_id)
    assert job["status"] == JobStatus.RUNNING and job["handle"] == {"operation": f"operations/{job_id}"}
    assert job["submit_claim"] is None and job["progress"] == {"percent": 0, "stage": "running"}
    assert [r.model for r in provider.requests()] == ["veo-fake-2"]
    (poll,) = tasks.pending
    assert (poll.name, poll.queue, poll.payload) == (f"{job_id}-poll-1", "veo-poll", {"job_id": job_id, "poll": 1})
    assert rt.settings.poll.min_delay_s <= poll.delay_s <= rt.settings.poll.initial_delay_s


def test_a_job_with_a_webhook_gets_its_running_event(rt, tasks):
    job_id = accepted_job(rt, webhook_url=WEBHOOK_URL)
    run_named(rt, f"{job_id}-submit")
    assert sorted(tasks.pending_names()) == sorted([f"{job_id}-poll-1", f"{job_id}-wh-job_running-1"])


def test_a_second_submit_task_after_the_submission_pays_nothing_and_changes_nothing(rt, provider, store, tasks):
    job_id = accepted_job(rt)
    run_named(rt, f"{job_id}-submit")
    before, writes = store.job(job_id), len(store.writes)

    submit_job(rt, job_id)

    assert provider.count("submit") == 1 and store.job(job_id) == before and len(store.writes) == writes
    assert tasks.pending_names() == [f"{job_id}-poll-1"]


def test_a_duplicate_submit_while_the_first_is_at_the_provider_pays_nothing(rt, provider, store):
    job_id = accepted_job(rt)
    duplicate_calls = []

    def provider_working(jid, req):
        before = provider.count("submit")
        submit_job(rt, jid)  # the duplicate task, delivered while this call is in flight
        duplicate_calls.append(provider.count("submit") - before)
        return {"operation": "op-1"}

    provider.submits.set(provider_working)
    run_named(rt, f"{job_id}-submit")

    assert duplicate_calls == [0] and provider.count("submit") == 1
    assert store.job(job_id)["status"] == JobStatus.RUNNING


def test_a_claim_left_by_a_crashed_attempt_lapses(rt, provider, store):
    job_id = accepted_job(rt)
    store.edit(job_id, submit_claim={"at": utcnow() - timedelta(seconds=SUBMIT_LEASE_S - 5)})
    submit_job(rt, job_id)
    assert provider.count("submit") == 0  # still held: that attempt may yet answer

    store.edit(job_id, submit_claim={"at": utcnow() - timedelta(seconds=SUBMIT_LEASE_S + 1)})
    submit_job(rt, job_id)
    assert provider.count("submit") == 1 and store.job(job_id)["status"] == JobStatus.RUNNING


@pytest.mark.parametrize("error, code", [
    (refused(), ErrorCode.INVALID_REQUEST),
    (refused(ErrorCode.ACCESS_DENIED, "fake refused our credentials (401)"), ErrorCode.ACCESS_DENIED),
    (refused(ErrorCode.RAI_FILTERED, "the prompt was blocked"), ErrorCode.RAI_FILTERED),
])
def test_a_refused_submission_fails_the_job_with_the_providers_reason(rt, provider, store, tasks, error, code):
    job_id = accepted_job(rt, webhook_url=WEBHOOK_URL)
    provider.submits.set(error)

    run_named(rt, f"{job_id}-submit")

    job = store.job(job_id)
    assert job["status"] == JobStatus.FAILED and job["error"]["code"] == code and job["error"]["retryable"] is False
    assert job["error"]["message"] == error.message and "expire_at" in job
    assert tasks.pending_names() == [f"{job_id}-wh-job_failed-1"]


def test_a_transient_error_lets_the_queue_retry_and_the_retry_may_pay(rt, provider, store, tasks):
    job_id = accepted_job(rt)
    provider.submits.set(unavailable(), {"operation": "op-2"})

    with pytest.raises(TransientError) as raised:
        run_named(rt, f"{job_id}-submit")

    assert raised.value.code == ErrorCode.PROVIDER_UNAVAILABLE
    job = store.job(job_id)
    assert job["status"] == JobStatus.ACCEPTED and job["submit_claim"] is None and tasks.pending == []
    submit_job(rt, job_id)  # the queue's retry
    assert provider.count("submit") == 2 and store.job(job_id)["handle"] == {"operation": "op-2"}


def test_a_throttled_submission_waits_the_providers_retry_after_on_a_task_of_its_own(rt, provider, store, tasks):
    job_id = accepted_job(rt)
    provider.submits.set(throttled(42), throttled(7), {"operation": "op-3"})

    run_named(rt, f"{job_id}-submit")  # answers normally: the wait is our own task

    job = store.job(job_id)
    assert job["status"] == JobStatus.ACCEPTED and job["progress"]["stage"] == "throttled"
    assert job["submit_attempts"] == 1 and job["submit_error"]["code"] == ErrorCode.QUOTA_EXCEEDED
    assert job["submit_claim"] is None
    assert [(t.name, t.delay_s) for t in tasks.pending] == [(f"{job_id}-submit-1", 42.0)]

    run_named(rt, f"{job_id}-submit-1")
    assert [(t.name, t.delay_s) for t in tasks.pending] == [(f"{job_id}-submit-2", 7.0)]
    run_named(rt, f"{job_id}-submit-2")
    assert store.job(job_id)["status"] == JobStatus.RUNNING and provider.count("submit") == 3


@pytest.mark.parametrize("retry_after, expected", [(0, 1.0), (None, 1.0), (86400, float(MAX_RETRY_AFTER_S))])
def test_a_throttled_submissions_wait_is_bounded(rt, provider, tasks, retry_after, expected):
    job_id = accepted_job(rt)
    provider.submits.set(TransientError(ErrorCode.QUOTA_EXCEEDED, "throttled", None, retry_after) if retry_after is None
                         else throttled(retry_after))
    if retry_after is None:  # no Retry-After at all is the queue's ordinary backoff
        with pytest.raises(TransientError):
            run_named(rt, f"{job_id}-submit")
        assert tasks.pending == []
        return
    run_named(rt, f"{job_id}-submit")
    assert [t.delay_s for t in tasks.pending] == [expected]


def test_a_throttled_submission_never_waits_past_the_deadline_and_then_fails_with_the_providers_answer(rt, provider, store, tasks):
    job_id = accepted_job(rt, deadline_seconds=30)
    provider.submits.set(throttled(250))

    run_named(rt, f"{job_id}-submit")
    (retry,) = tasks.pending
    assert retry.delay_s <= 31

    store.edit(job_id, deadline_at=past())
    run_named(rt, retry.name)
    job = store.job(job_id)
    assert job["status"] == JobStatus.FAILED and job["error"]["code"] == ErrorCode.DEADLINE_EXCEEDED
    assert "fake is throttling (429)" in job["error"]["message"] and provider.count("submit") == 1


def test_a_job_past_its_deadline_is_failed_without_calling_the_provider(rt, provider, store):
    job_id = accepted_job(rt)
    store.edit(job_id, deadline_at=past())
    run_named(rt, f"{job_id}-submit")
    assert store.job(job_id)["error"]["code"] == ErrorCode.DEADLINE_EXCEEDED and provider.calls == []


def test_a_submit_task_for_a_cancelled_or_missing_job_does_nothing(rt, provider, store, tasks):
    job_id = accepted_job(rt)
    cancel_job(rt, job_id)
    tasks.pending.clear()

    submit_job(rt, job_id)
    submit_job(rt, "f" * 32)

    assert provider.calls == [] and tasks.pending == []
    assert store.job(job_id)["status"] == JobStatus.CANCELLED


def test_a_job_cancelled_while_the_provider_is_called_stays_cancelled_and_is_not_polled(rt, provider, store, tasks):
    job_id = accepted_job(rt)
    provider.submits.set(lambda jid, req: cancel_job(rt, jid) and {"operation": "op-4"})
    tasks.take(f"{job_id}-submit")

    submit_job(rt, job_id)

    assert store.job(job_id)["status"] == JobStatus.CANCELLED
    assert [t for t in tasks.pending if t.target == "poll_job"] == []


def test_a_transient_error_for_a_job_cancelled_meanwhile_is_still_the_providers_error(rt, provider, store):
    job_id = accepted_job(rt)

    def cancelled_then_unavailable(jid, req):
        cancel_job(rt, jid)
        raise unavailable()

    provider.submits.set(cancelled_then_unavailable)
    with pytest.raises(TransientError) as raised:  # not the store's refusal to release the claim
        run_named(rt, f"{job_id}-submit")
    assert raised.value.code == ErrorCode.PROVIDER_UNAVAILABLE
    assert store.job(job_id)["status"] == JobStatus.CANCELLED


def test_a_throttled_job_cancelled_meanwhile_queues_no_retry(rt, provider, store, tasks):
    job_id = accepted_job(rt)
    tasks.take(f"{job_id}-submit")

    def cancelled_then_throttled(jid, req):
        cancel_job(rt, jid)
        raise throttled(10)

    provider.submits.set(cancelled_then_throttled)
    submit_job(rt, job_id)
    assert [t.target for t in tasks.pending] == [] and store.job(job_id)["status"] == JobStatus.CANCELLED


def test_a_streaming_providers_job_is_handed_to_the_stream_step_unsubmitted(rt, streamer, tasks):
    job_id = accepted_job(rt, provider="fakestream")
    run_named(rt, f"{job_id}-submit")
    (task,) = tasks.pending
    assert (task.name, task.queue, task.target, task.request.dispatch_deadline_s) == (
        f"{job_id}-stream", "veo-stream", "stream_job", 1800)
    assert streamer.calls == []
