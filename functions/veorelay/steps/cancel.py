"""Cancelling a job at the client's request (POST /jobs/{id}:cancel).

Cancel and finalize race on one Firestore document, and one checked write decides: a job is
cancelled if the cancel's write lands while the job has not ended, even while finalize is
copying its videos (the copy is then thrown away: finalize's own move to `succeeded` is refused
and it removes what it stored, and a discard task removes it too); once finalize's move to
`succeeded` landed, the cancel is a 409. So `200` always comes with a job that is cancelled and
keeps no video, `409` with one that ended otherwise, and never both for one job.
"""
from __future__ import annotations

from veorelay.core.errors import ApiError, ErrorCode, JobError
from veorelay.core.events import EVENT_FOR_STATUS
from veorelay.core.job import Job, JobStatus
from veorelay.runtime import Runtime
from veorelay.steps.deliver import enqueue_event
from veorelay.steps.lifecycle import move


def cancel_job(rt: Runtime, job_id: str) -> Job:
    """The job as cancelled (also when it already was: a cancel sent again gets the same answer);
    409 when it ended otherwise. A provider still working on it may finish later: that result is
    recorded on the job (late_result), never delivered. Firestore unavailable or contended
    beyond its retries: TransientError (503 with Retry-After), never a 500."""
    job = rt.store.get(job_id)
    if job is None:
        raise ApiError(404, ErrorCode.NOT_FOUND, "no such job", "id")
    if job["status"] == JobStatus.CANCELLED:
        return _cancelled_again(rt, job)
    if JobStatus(job["status"]).terminal:
        raise ApiError(409, ErrorCode.CONFLICT, f"the job already ended ({job['status']})")
    error = JobError(ErrorCode.CANCELLED, "cancelled by the client")
    cancelled = move(rt, job_id, JobStatus.CANCELLED, {"error": error.to_dict()})
    if cancelled is not None:
        return cancelled
    # Refused: the job ended since it was read. A concurrent cancel is this one; anything else
    # (it succeeded, or failed) is the same conflict as above, not a cancellation.
    now = rt.store.get(job_id) or job
    if now["status"] != JobStatus.CANCELLED:
        raise ApiError(409, ErrorCode.CONFLICT, f"the job already ended ({now['status']})")
    return now


def _cancelled_again(rt: Runtime, job: Job) -> Job:
    """A cancel sent again, e.g. after a 503 that came once the job was cancelled but before its
    event was queued: unless an attempt of it is on record, the event is queued again under its
    name (Cloud Tasks keeps one task of a name)."""
    event = EVENT_FOR_STATUS[JobStatus.CANCELLED]
    if not any(d.get("event") == event for d in job.get("deliveries") or []):
        enqueue_event(rt, job, event)
    return job
