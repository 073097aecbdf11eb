"""Only a succeeded job has videos, on every path (steps/lifecycle.py discard_leftovers,
steps/finalize.py, steps/sweep.py): a job that ends failed or cancelled while downloading gets a
discard task at once and, once no finalize attempt can still be running, the sweep's final one;
both remove, by name, whatever an attempt stored, also after a crash between storing a video
and recording it, and also when no attempt is left to notice; a succeeded job keeps its videos."""
from __future__ import annotations

from datetime import timedelta

import pytest
from google.api_core import exceptions as gexc

from veorelay.core.clock import utcnow
from veorelay.core.errors import ErrorCode, TransientError
from veorelay.core.job import JobStatus
from veorelay.gcp.store import DISCARD_AFTER
from veorelay.steps.cancel import cancel_job
from veorelay.steps.chain import FINALIZE_DEADLINE_S
from veorelay.steps.finalize import finalize_job
from veorelay.steps.sweep import sweep

from .driver import drain, run_named
from .fake_providers import Video, mp4
from .helpers import WEBHOOK_URL, downloading_job, job_json_name, past, poster_name, video_name

pytestmark = pytest.mark.faults

CHUNK = 256 * 1024


def videos(bucket, job_id: str) -> list[str]:
    return bucket.names(f"videos/{job_id}/")


def test_the_last_removal_waits_until_no_finalize_attempt_can_run():
    assert DISCARD_AFTER.total_seconds() > FINALIZE_DEADLINE_S


def half_stored(rt, provider, bucket, store) -> str:
    """A downloading job whose finalize attempt stored video 0, then died on video 1 (and the
    queue never ran it again: no attempt is left to notice what comes next)."""
    job_id = downloading_job(rt, mp4(5000, seed=1), Video(mp4(3 * CHUNK, seed=2), cut_after=10), webhook_url=WEBHOOK_URL)
    with pytest.raises(TransientError):
        finalize_job(rt, job_id, 1)
    assert videos(bucket, job_id) == [poster_name(rt, job_id, 0), video_name(rt, job_id, 0)]
    return job_id


@pytest.mark.parametrize("end", ["cancel", "deadline"])
def test_a_job_that_ends_while_downloading_has_what_a_dead_attempt_stored_removed(rt, provider, store, tasks, bucket, end):
    """Cancelled, or failed by the sweep at its deadline, while a dead finalize attempt had stored a video: the discard task removes it; no retry needed."""
    job_id = half_stored(rt, provider, bucket, store)
    tasks.pending = [t for t in tasks.pending if t.name != f"{job_id}-finalize"]  # its retries are used up
    if end == "cancel":
        cancel_job(rt, job_id)
    else:
        store.edit(job_id, deadline_at=past())
        assert sweep(rt).deadline_exceeded == [job_id]
    job = store.job(job_id)
    assert job["status"] in (JobStatus.CANCELLED, JobStatus.FAILED) and job["discard_due_at"] > utcnow()
    assert f"{job_id}-discard" in tasks.pending_names()

    drain(rt)

    assert videos(bucket, job_id) == [] and provider.count("open_output") == 2  # nothing downloaded again
    assert store.job(job_id)["discard_due_at"] is not None  # the final removal is still to come


def test_a_video_stored_after_the_job_ended_by_an_attempt_that_then_died_is_removed_by_the_sweep(rt, provider, store, tasks, bucket):
    """An attempt that read the job downloading stores its video after the cancel and dies before it can notice: the sweep's final discard removes it, once."""
    job_id = downloading_job(rt, mp4(5000), webhook_url=WEBHOOK_URL)
    tasks.take(f"{job_id}-finalize")
    cancel_job(rt, job_id)
    drain(rt)  # the discard task: nothing to remove yet
    bucket.put(video_name(rt, job_id, 0), mp4(5000), content_type="video/mp4")  # what the dying attempt left
    assert sweep(rt).discarded == []  # not due yet: an attempt might still be running
    store.edit(job_id, discard_due_at=past())  # DISCARD_AFTER later
    report = sweep(rt)

    assert report.discarded == [job_id] and report.to_dict()["job_ids"]["discarded"] == [job_id]
    assert tasks.pending_names() == [f"{job_id}-discard-final"]
    drain(rt)
    assert videos(bucket, job_id) == [] and store.job(job_id)["discard_due_at"] is None
    assert sweep(rt, now=utcnow() + timedelta(days=1)).discarded == []  # done: never asked again


def test_a_crash_between_storing_and_recording_success_is_removed_when_the_job_ends_otherwise(rt, provider, store, tasks, bucket):
    """finalize stored every video and died before recording success; the job is cancelled: the retry finds it ended and removes them."""
    job_id = downloading_job(rt, mp4(5000))
    store.faults.add("transition", RuntimeError("instance killed"), times=1)
    with pytest.raises(RuntimeError):
        finalize_job(rt, job_id, 1)
    assert videos(bucket, job_id) == [poster_name(rt, job_id, 0), video_name(rt, job_id, 0)]
    cancel_job(rt, job_id)

    drain(rt)  # the queue's retry of the killed attempt, the discard task

    assert store.job(job_id)["status"] == JobStatus.CANCELLED and videos(bucket, job_id) == []


def test_when_the_discard_task_cannot_be_queued_the_cancel_still_answers_and_the_sweep_removes_the_videos(rt, provider, store, tasks, bucket):
    """Cloud Tasks down for the discard task: the cancel still ends the job (the removal is left to the sweep), which removes the videos later."""
    job_id = half_stored(rt, provider, bucket, store)
    tasks.pending.clear()
    tasks.faults.add("enqueue", TransientError(ErrorCode.UNAVAILABLE, "could not enqueue finalize_job"), name=f"{job_id}-discard")

    assert cancel_job(rt, job_id)["status"] == JobStatus.CANCELLED
    assert videos(bucket, job_id) == [poster_name(rt, job_id, 0), video_name(rt, job_id, 0)] and f"{job_id}-discard" not in tasks.names()

    store.edit(job_id, discard_due_at=past())  # DISCARD_AFTER later
    sweep(rt)
    drain(rt)
    assert videos(bucket, job_id) == [] and store.job(job_id)["discard_due_at"] is None


def test_removing_is_idempotent_and_storage_failing_is_retried(rt, provider, store, tasks, bucket):
    """A discard that finds nothing does nothing; storage failing under it is retried by the queue."""
    job_id = half_stored(rt, provider, bucket, store)
    tasks.pending.clear()
    cancel_job(rt, job_id)
    bucket.faults.add("delete", gexc.ServiceUnavailable("storage down"), times=1)

    log = drain(rt)

    assert [d.attempt for d in log if d.name == f"{job_id}-discard"] == [1, 2] and videos(bucket, job_id) == []
    finalize_job(rt, job_id, 1)  # any later task of the job: nothing to remove, nothing fails
    assert videos(bucket, job_id) == []


def test_a_succeeded_job_keeps_its_videos_whatever_discard_or_sweep_comes(rt, provider, store, tasks, bucket):
    """A stray discard for a succeeded job, and sweeps, leave its videos and job.json alone."""
    job_id = downloading_job(rt, mp4(5000))
    run_named(rt, f"{job_id}-finalize")
    kept = [poster_name(rt, job_id, 0), video_name(rt, job_id, 0), job_json_name(rt, job_id)]
    assert videos(bucket, job_id) == kept and "discard_due_at" not in store.job(job_id)

    finalize_job(rt, job_id, 1)  # as a discard task would run
    sweep(rt, now=utcnow() + timedelta(days=2))

    assert videos(bucket, job_id) == kept and not [n for n in tasks.names() if "discard" in n]
