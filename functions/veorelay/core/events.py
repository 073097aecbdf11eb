"""The events a job sends to its webhook, and their stable ids. Pure, no I/O."""
from __future__ import annotations

import hashlib

from veorelay.core.job import Job, JobStatus, webhook_of

EVENT_FOR_STATUS = {
    JobStatus.RUNNING: "job.running",
    JobStatus.SUCCEEDED: "job.succeeded",
    JobStatus.FAILED: "job.failed",
    JobStatus.CANCELLED: "job.cancelled",
}
PROGRESS_EVENT = "job.progress"
EVENT_TYPES = ("job.running", PROGRESS_EVENT, "job.succeeded", "job.failed", "job.cancelled")
# Without `webhook_events` a job gets every event but job.progress, which is asked for by name.
DEFAULT_EVENTS = tuple(e for e in EVENT_TYPES if e != PROGRESS_EVENT)


def subscribed_events(job: Job) -> tuple[str, ...]:
    events = webhook_of(job).get("events")
    return tuple(events) if events else DEFAULT_EVENTS


def wants_event(job: Job, event_type: str) -> bool:
    """The job has a webhook, and it asks for `event_type`."""
    return bool(webhook_of(job).get("url")) and event_type in subscribed_events(job)


def notifies_ending(job: Job, status: JobStatus) -> bool:
    """The job has a webhook that wants the event of its ending in `status`."""
    return status.terminal and wants_event(job, EVENT_FOR_STATUS[status])


def webhook_id(job_id: str, event_type: str, seq: int | None = None) -> str:
    """One id per event: job.progress events are numbered (`seq`), the others happen once, so
    every retry and redelivery of one event carries the same id and receivers can deduplicate."""
    key = f"{job_id}:{event_type}" if seq is None else f"{job_id}:{event_type}:{seq}"
    return "msg_" + hashlib.sha256(key.encode()).hexdigest()[:32]
