"""A provider's completion event, verified (edges/provider_events.py): find its job and queue an
immediate check of it, a named task (steps/chain.py push_check_task), so duplicates collapse.

Nothing here writes to Firestore, and nothing the event says is taken as the result: the check
asks the provider (steps/poll.py pushed_check). An event for no job we know, for a job of
another provider, for a job that is no longer running (late, or a duplicate after the job moved
on) or that says nothing ended is a logged no-op; the edge answers 2xx so the sender stops.
"""
from __future__ import annotations

import time

from veorelay.core.job import JobStatus, seconds_running
from veorelay.core.push_events import SOURCE_PROVIDERS, ProviderEvent, expects_push
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
    if job["status"] != JobStatus.RUNNING:
        logs.info("provider event for a job no longer running", source=event.source, job_id=job["id"], status=job["status"])
        return LATE
    received_at = time.time() if now is None else now
    queued = rt.scheduler.enqueue(chain.push_check_task(rt.settings, job, received_at, seconds_running(job)))
    logs.info("provider event: check queued" if queued else "provider event: check already queued",
              source=event.source, event_id=event.event_id, job_id=job["id"])
    return QUEUED if queued else DUPLICATE
