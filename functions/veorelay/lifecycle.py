"""Moving a job between states, and telling the caller when it ends."""
from __future__ import annotations

from typing import Any, Iterable

from . import logs
from .clients import Runtime
from .errors import JobError
from .jobs import JobStatus, TransitionRefused
from .notify import enqueue_event
from .webhooks import EVENT_FOR_STATUS


def move(rt: Runtime, job_id: str, to: JobStatus, updates: dict[str, Any] | None = None,
         from_states: Iterable[JobStatus] | None = None) -> dict[str, Any] | None:
    """Transition the job; None when it was already elsewhere (a duplicate or late task)."""
    try:
        job = rt.store.transition(job_id, to, updates, from_states)
    except TransitionRefused as refused:
        logs.info("transition skipped", job_id=job_id, current=refused.current, target=str(to))
        return None
    logs.info(f"job {to}", job_id=job_id, status=str(to))
    event = EVENT_FOR_STATUS.get(to)
    if event and to.terminal:
        enqueue_event(rt, job, event)
    return job


def fail(rt: Runtime, job_id: str, error: JobError, from_states: Iterable[JobStatus] | None = None) -> dict[str, Any] | None:
    logs.warning("job failed", job_id=job_id, error_code=error.code, error_message=error.message)
    return move(rt, job_id, JobStatus.FAILED, {"error": error.to_dict()}, from_states)
