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


def watched_event(job: Job, to: JobStatus) -> str | None:
    """The lifecycle event the sweep watches for once the job moves to `to` (job.running or
    the terminal event, when the webhook wants it): the move's step queues it, and if no
    attempt of it is recorded by the job's notify_due_at (Cloud Tasks was down at the move),
    the sweep does (gcp/store.py NOTIFY_AFTER). None: the move starts no watch."""
    event = EVENT_FOR_STATUS.get(to)
    return event if event and wants_event(job, event) else None


def pending_events(job: Job) -> tuple[str, ...]:
    """The events the job's notify_due_at watches for, in the order they happened:
    `notify_events`; a mark written before the events were named with it (only terminal events
    were watched then) watches the ending's."""
    if job.get("notify_due_at") is None:
        return ()
    named = job.get("notify_events")
    if isinstance(named, list):
        return tuple(e for e in named if isinstance(e, str))
    status = JobStatus(job["status"])
    return (EVENT_FOR_STATUS[status],) if status.terminal else ()


def webhook_id(job_id: str, event_type: str, seq: int | None = None) -> str:
    """One id per event: job.progress events are numbered (`seq`), the others happen once, so
    every retry and redelivery of one event carries the same id and receivers can deduplicate."""
    key = f"{job_id}:{event_type}" if seq is None else f"{job_id}:{event_type}:{seq}"
    return "msg_" + hashlib.sha256(key.encode()).hexdigest()[:32]
