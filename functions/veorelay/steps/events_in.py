"""A provider's completion event, verified (edges/provider_events.py): find its job and queue an
immediate check of it, a named task (steps/chain.py push_check_task), so duplicates collapse.

Nothing here writes to Firestore, and nothing the event says is taken as the result: the check
asks the provider (steps/poll.py pushed_check). An event for no job we know, for a job of
another provider, for a job that is no longer running (late, or a duplicate after the job moved
on) or that says nothing ended is a logged no-op; the edge answers 2xx so the sender stops.
One exception to "no-op": the event of a job that a check of its chain found done first still
queues its named check task, which finds the job moved on and counts that the event came
(event_came_late, in poll_job: this function's identity only reads Firestore), so the backstop
learns that the events do come even while its checks win the race to them.
"""
from __future__ import annotations

import time

from veorelay.core.clock import utcnow
from veorelay.core.job import Job, JobStatus, TransitionRefused, seconds_running
from veorelay.core.push_events import DETECTED_BY_CHECK, SOURCE_PROVIDERS, ProviderEvent, expects_push
from veorelay.gcp import logs
from veorelay.runtime import Runtime
from veorelay.steps import chain

# What receive() tells the edge (and the logs): only "queued" starts anything.
QUEUED, DUPLICATE, UNKNOWN, LATE, IGNORED = "queued", "duplicate", "unknown", "late", "ignored"


def receive(rt: Runtime, event: ProviderEvent, now: float | None = None) -> str:
    """The outcome of one verified event (QUEUED, DUPLICATE, UNKNOWN, LATE or IGNORED)."""
    if not event.completion:
        logs.info("provider event ignored: it reports no end", source=event.source, event_id=event.event_id)
        return IGNORED
    job = None
    if event.job_id:
        job = rt.store.get(event.job_id)
    elif event.operation:
        job = rt.store.job_for_operation(event.operation)
    if job is None or job["provider"] not in SOURCE_PROVIDERS.get(event.source, frozenset()) or not expects_push(job):
        logs.info("provider event for no job of ours", source=event.source, event_id=event.event_id,
                  job_id=event.job_id, operation=(event.operation or "")[-80:])
        return UNKNOWN
    handle = job.get("handle") or {}
    if event.operation and handle.get("operation") != event.operation:
        logs.warning("provider event names another operation than its job's", source=event.source, job_id=job["id"])
        return UNKNOWN
    received_at = time.time() if now is None else now
    if job["status"] != JobStatus.RUNNING:
        logs.info("provider event for a job no longer running", source=event.source, job_id=job["id"], status=job["status"])
        if uncounted_late_event(job):
            rt.scheduler.enqueue(chain.push_check_task(rt.settings, job, received_at, seconds_running(job)))
        return LATE
    queued = rt.scheduler.enqueue(chain.push_check_task(rt.settings, job, received_at, seconds_running(job)))
    logs.info("provider event: check queued" if queued else "provider event: check already queued",
              source=event.source, event_id=event.event_id, job_id=job["id"])
    return QUEUED if queued else DUPLICATE


def uncounted_late_event(job: Job) -> bool:
    """A check of the job's chain found it done first, and no event of it has been counted since."""
    return job.get("detected_by") == DETECTED_BY_CHECK and not job.get("event_after_check_at")


def event_came_late(rt: Runtime, job: Job) -> None:
    """The event of a job no longer running came (its check found the job moved on, steps/poll.py):
    counted if a check of its chain had found the job done first.

    Best effort, once per job: the job is marked first (a transaction that finds no mark), so a
    duplicate or replayed event counts nothing; a lost count only makes the backstop learn a
    little slower."""
    if not uncounted_late_event(job):
        return
    try:
        rt.store.update(job["id"], tuple(JobStatus), {"event_after_check_at": utcnow()},
                        unchanged={"event_after_check_at": None})
    except TransitionRefused:
        return  # another delivery of the event counted it
    except Exception as exc:
        logs.warning("late completion event not counted", job_id=job["id"], error=type(exc).__name__)
        return
    stats = getattr(rt, "durations", None)
    detected_at = (job.get("timestamps") or {}).get(JobStatus.DOWNLOADING) or utcnow()
    try:
        if stats is not None:
            stats.event_came_after_check(job["provider"], job["model"], job["id"], detected_at)
    except Exception as exc:
        logs.warning("late completion event not counted", job_id=job["id"], error=type(exc).__name__)
