"""Cancelling a job at the client's request (POST /jobs/{id}:cancel)."""
from __future__ import annotations

from veorelay.core.errors import ApiError, ErrorCode, JobError
from veorelay.core.job import Job, JobStatus
from veorelay.runtime import Runtime
from veorelay.steps.lifecycle import move


def cancel_job(rt: Runtime, job_id: str) -> Job:
    """The job as cancelled; 409 when it already ended. A provider still working on it may
    finish later: that result is recorded on the job (late_result), never delivered."""
    job = rt.store.get(job_id)
    if job is None:
        raise ApiError(404, ErrorCode.NOT_FOUND, "no such job", "id")
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
