"""Moving a job and telling its caller (steps/lifecycle.py), and cancelling it (steps/cancel.py):
a cancelled job calls no provider again, delivers nothing late, and keeps no video."""
from __future__ import annotations

import pytest

from veorelay.core.errors import ApiError, ErrorCode, JobError
from veorelay.core.job import JobStatus
from veorelay.steps.cancel import cancel_job
from veorelay.steps.chain import PollCall
from veorelay.steps.finalize import finalize_job
from veorelay.steps.lifecycle import fail, move, record_late_result
from veorelay.steps.poll import poll_job
from veorelay.steps.submit import submit_job

from .fake_providers import mp4
from .helpers import WEBHOOK_URL, accepted_job, downloading_job, running_job


@pytest.mark.parametrize("arrange", ["accepted", "running", "downloading"])
def test_a_cancelled_job_is_told_to_its_webhook_and_no_later_task_reaches_the_provider(rt, provider, store, tasks, bucket, arrange):
    job_id = {"accepted": lambda: accepted_job(rt, webhook_url=WEBHOOK_URL),
              "running": lambda: running_job(rt, webhook_url=WEBHOOK_URL),
              "downloading": lambda: downloading_job(rt, mp4(5000), webhook_url=WEBHOOK_URL)}[arrange]()
    provider.calls.clear()

    job = cancel_job(rt, job_id)

    assert job["status"] == JobStatus.CANCELLED and store.job(job_id)["status"] == JobStatus.CANCELLED
    assert job["error"] == {"code": "cancelled", "message": "cancelled by the client", "retryable": False, "provider_detail": None}
    assert tasks.names()[-1] == f"{job_id}-wh-job_cancelled-1"
    submit_job(rt, job_id)
    poll_job(rt, job_id, PollCall(1, None, 0))
    finalize_job(rt, job_id, 1)
    assert provider.calls == [] and bucket.names("videos/") == []


def test_cancelling_a_job_that_ended_otherwise_or_an_unknown_one_is_refused(rt, store):
    job_id = accepted_job(rt)
    cancel_job(rt, job_id)
    assert cancel_job(rt, job_id)["status"] == JobStatus.CANCELLED  # cancelled already: the same answer again
    for status in (JobStatus.SUCCEEDED, JobStatus.FAILED):
        other = accepted_job(rt)
        store.edit(other, status=str(status))
        with pytest.raises(ApiError) as refused:
            cancel_job(rt, other)
        assert (refused.value.status, refused.value.code) == (409, "conflict") and status in refused.value.message
    with pytest.raises(ApiError) as refused:
        cancel_job(rt, "f" * 32)
    assert refused.value.status == 404


def test_a_job_that_succeeds_while_being_cancelled_is_a_conflict_not_a_cancellation(rt, store, monkeypatch):
    job_id = downloading_job(rt, mp4(5000))
    read = store.get

    def read_then_finalize_wins(jid):
        job = read(jid)
        monkeypatch.setattr(store, "get", read)
        finalize_job(rt, jid, 1)  # finalize finishes between the cancel's read and its write
        return job

    monkeypatch.setattr(store, "get", read_then_finalize_wins)
    with pytest.raises(ApiError) as refused:
        cancel_job(rt, job_id)
    assert refused.value.status == 409 and store.job(job_id)["status"] == JobStatus.SUCCEEDED


def test_events_go_only_to_a_webhook_that_asked_for_them(rt, tasks):
    quiet = accepted_job(rt)
    picky = accepted_job(rt, webhook_url=WEBHOOK_URL, webhook_events=["job.succeeded"])
    tasks.pending.clear()

    cancel_job(rt, quiet)
    cancel_job(rt, picky)

    assert tasks.pending == []


def test_a_refused_move_is_none_and_writes_nothing(rt, store):
    job_id = accepted_job(rt)
    writes = len(store.writes)
    assert move(rt, job_id, JobStatus.DOWNLOADING) is None
    assert move(rt, job_id, JobStatus.RUNNING, from_states={JobStatus.DOWNLOADING}) is None
    assert len(store.writes) == writes


def test_a_failure_never_shows_a_credential_the_provider_quoted(rt, store):
    job_id = accepted_job(rt)
    error = JobError(ErrorCode.PROVIDER_ERROR, "GET https://fake.example/v1/op?key=AIzaSyVerySecret123 failed",
                     provider_detail={"url": "https://fake.example/v1/op?access_token=ya29.secret-token"})

    fail(rt, job_id, error)

    stored = store.job(job_id)["error"]
    assert "AIzaSyVerySecret123" not in stored["message"] and "[redacted]" in stored["message"]
    assert "ya29.secret-token" not in stored["provider_detail"]["url"]


def test_a_late_result_is_kept_only_on_a_job_that_ended_without_success(rt, store):
    running = running_job(rt)
    record_late_result(rt, running, [{"index": 0, "url": "https://videos.fake/x.mp4"}])
    assert "late_result" not in store.job(running)

    cancel_job(rt, running)
    record_late_result(rt, running, [{"index": 0, "url": "https://videos.fake/x.mp4?key=secret-value-1"}])
    late = store.job(running)["late_result"]
    assert late["state"] == "succeeded" and "secret-value-1" not in late["outputs"][0]["url"]
