"""Moving a job between states, and telling the caller when it ends."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from veorelay.core.clock import utcnow
from veorelay.core.errors import ErrorCode, JobError, TransientError
from veorelay.core.events import EVENT_FOR_STATUS
from veorelay.core.job import MAX_OUTPUT_REF_CHARS, Job, JobStatus, TransitionRefused, outputs_to_keep
from veorelay.core.redaction import redact, redact_error
from veorelay.gcp import logs
from veorelay.runtime import Runtime
from veorelay.steps import chain, spend
from veorelay.steps.deliver import enqueue_event


def move(rt: Runtime, job_id: str, to: JobStatus, updates: dict[str, Any] | None = None,
         from_states: Iterable[JobStatus] | None = None,
         before_event: Callable[[Job], None] | None = None) -> Job | None:
    """Transition the job; None when it was already elsewhere (a duplicate or late task).
    `before_event` runs on the moved job before its event is queued: what the event's receiver
    may look for (job.json) is then in place when it arrives."""
    try:
        job = rt.store.transition(job_id, to, updates, from_states)
    except TransitionRefused as refused:
        logs.info("transition skipped", job_id=job_id, current=refused.current, target=str(to))
        return None
    logs.info(f"job {to}", job_id=job_id, status=str(to))
    if before_event is not None:
        before_event(job)
    if to.terminal:
        log_ended(job)
        # Before the event, not after: settling writes the job, and so does the webhook's step
        # (its attempt record), which would then race it (a lost race is one more write).
        spend.settle(rt, job)
    if to in (JobStatus.FAILED, JobStatus.CANCELLED) and job.get("pending_outputs"):
        discard_leftovers(rt, job)
    event = EVENT_FOR_STATUS.get(to)  # job.running and the terminal events
    if event:
        enqueue_event(rt, job, event)
    return job


def log_ended(job: Job) -> None:
    """The one line a job's end is counted by (infra/monitoring.tf: veo_jobs_ended and the alerts on it)."""
    error = job.get("error") or {}
    created = job.get("created_at")
    logs.info("job ended", job_id=job["id"], provider=job.get("provider"), model=job.get("model"), client_id=job.get("client_id"),
              status=job.get("status"), error_code=error.get("code") or "none",
              run_s=round((utcnow() - created).total_seconds(), 3) if created else None)


def discard_leftovers(rt: Runtime, job: Job) -> None:
    """The job ended while downloading: only a succeeded job has videos, so a task removes
    whatever a finalize attempt stored (or is storing: that attempt removes it itself when it
    finds the job ended). Best effort: if the task cannot be queued now, the sweep has it done
    at the job's discard_due_at (gcp/store.py)."""
    try:
        rt.scheduler.enqueue(chain.discard_task(rt.settings, job))
    except TransientError as exc:
        logs.warning("removing the job's videos is left to the sweep", job_id=job["id"], error_message=exc.message)


def fail(rt: Runtime, job_id: str, error: JobError, from_states: Iterable[JobStatus] | None = None) -> Job | None:
    # A provider's error text is shown to the client and sent in webhooks: never a credential.
    error = redact_error(error)
    logs.warning("job failed", job_id=job_id, error_code=error.code, error_message=error.message)
    return move(rt, job_id, JobStatus.FAILED, {"error": error.to_dict()}, from_states)


def kept_outputs_or_fail(rt: Runtime, job_id: str, outputs: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """The finished videos' references as a running job keeps them (core/job.py outputs_to_keep);
    None, the job failed, when one is too long to keep (poll and stream, alike)."""
    kept = outputs_to_keep(outputs)
    if kept is None:
        fail(rt, job_id, JobError(ErrorCode.PROVIDER_ERROR, "the provider named a video by a reference "
                                  f"longer than {MAX_OUTPUT_REF_CHARS} characters"), {JobStatus.RUNNING})
    return kept


def record_late_result(rt: Runtime, job_id: str, outputs: list[dict[str, Any]]) -> None:
    """The provider finished after the job ended (cancelled, or failed by its deadline): keep
    what it said on the job for the record, but deliver nothing and store no video."""
    try:
        rt.store.update(job_id, {JobStatus.CANCELLED, JobStatus.FAILED}, {
            "late_result": {"state": "succeeded", "outputs": redact(outputs_to_keep(outputs) or []), "at": utcnow()},
        })
    except TransitionRefused:
        return
    logs.info("late provider success recorded, not delivered", job_id=job_id, outputs=len(outputs))
