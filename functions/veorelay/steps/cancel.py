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
    return move(rt, job_id, JobStatus.CANCELLED, {"error": error.to_dict()}) or rt.store.get(job_id) or job
