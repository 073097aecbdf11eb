"""Job events out: one webhook task per event, its delivery, and its retry schedule.

The schedule is ours, not the queue's: an attempt that fails is recorded on the job and the
next attempt is a new named task (`<job>-wh-<event>-<n>`), delayed by the schedule or by the
receiver's Retry-After, whichever is longer. The task itself then answers 200; the queue's
own retries are only a safety net for crashes. So the schedule can span three days, each
attempt is visible on the job, and a 410 or an exhausted schedule simply enqueues nothing.

A task says which event to send; the job says whether that event happened, and wins: a terminal
event only for a job in that very state, job.running only for a job that ran, job.progress only
while the job runs (or again, once recorded); any other task is a logged no-op. The job's record
of attempts is capped (MAX_DELIVERY_RECORDS, enforced by the store's append; job.progress stops
earlier, at MAX_PROGRESS_RECORDS), and once it is full nothing more is sent.
"""
from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from veorelay.core.clock import utcnow
from veorelay.core.errors import ApiError, ErrorCode, TransientError
from veorelay.core.events import EVENT_FOR_STATUS, EVENT_TYPES, PROGRESS_EVENT, subscribed_events, wants_event, webhook_id
from veorelay.core.job import Job, JobStatus, webhook_of
from veorelay.core.views import job_view
from veorelay.gcp import logs
from veorelay.gcp.signed_urls import with_signed_urls
from veorelay.net.webhooks import DeliveryAttempt, event_body, post_event
from veorelay.runtime import Runtime
from veorelay.steps import chain
from veorelay.steps.chain import WebhookCall

MAX_RETRY_AFTER_S = 24 * 3600  # a receiver asking for longer is asked again after a day
MAX_DELIVERY_RECORDS = 500  # keeps the job document far below Firestore's 1 MiB (~300 bytes a record)
# job.progress stops here: the rest of the record is kept for job.running, the terminal event,
# their retries and redeliveries, so progress noise can never crowd out how the job ended.
MAX_PROGRESS_RECORDS = 400
MAX_RECORDED_ERROR_CHARS = 200
TERMINAL_EVENTS = frozenset(EVENT_FOR_STATUS[s] for s in EVENT_FOR_STATUS if s.terminal)


def enqueue_event(rt: Runtime, job: Job, event_type: str) -> bool:
    """Queue the first attempt of a lifecycle event, if the job has a webhook that wants it.
    True if this created its task (a named task: False when it was queued before)."""
    if wants_event(job, event_type):
        return _enqueue(rt, job["id"], event_type, attempt=1, delay_s=rt.settings.webhooks.retry_schedule_s[0])
    return False


def enqueue_progress(rt: Runtime, job: Job) -> bool:
    """Queue a job.progress event, at most one per job per progress window (the task name is
    the window's number, so a second one in the same window is the same task). True if queued."""
    if not wants_event(job, PROGRESS_EVENT):
        return False
    if len(job.get("deliveries") or []) >= MAX_PROGRESS_RECORDS:
        return False
    return _enqueue(rt, job["id"], PROGRESS_EVENT, attempt=1, seq=progress_window(rt, time.time()))


def progress_window(rt: Runtime, at_s: float) -> int:
    """The number of the progress window `at_s` (unix seconds) falls in: a job.progress event's `seq`."""
    return int(at_s // max(rt.settings.webhooks.progress_interval_s, 1))


def contradiction(rt: Runtime, job: Job, call: WebhookCall) -> str | None:
    """Why the job's record says this event did not happen (None: it did, or may have)."""
    event, status = call.event_type, JobStatus(job["status"])
    if event not in EVENT_TYPES:
        return "not an event type"
    if event not in subscribed_events(job):
        return "the job's webhook does not ask for this event"
    if event in TERMINAL_EVENTS and EVENT_FOR_STATUS.get(status) != event:
        return f"the job is {status}"
    if event == "job.running" and "running" not in (job.get("timestamps") or {}):
        return "the job has not run"
    if event != PROGRESS_EVENT:
        return None if call.seq is None else "only job.progress events are numbered"
    if call.seq is None:
        return "a job.progress event without its number"
    recorded = any(d.get("event") == PROGRESS_EVENT and d.get("seq") == call.seq for d in job.get("deliveries") or [])
    if recorded:
        return None  # a retry or redelivery of one that was sent
    if status != JobStatus.RUNNING:
        return f"the job is {status} and never sent this job.progress event"
    started = (job.get("timestamps") or {}).get("running")
    first = progress_window(rt, started.timestamp()) if started is not None else 0
    if not first <= call.seq <= progress_window(rt, time.time()) + 1:
        return "the job.progress number is outside the time the job has been running"
    return None


def redeliver(rt: Runtime, job: Job) -> dict[str, Any]:
    """POST /jobs/{id}/webhooks:redeliver: the job's last event again, with its webhook-id,
    on a fresh retry schedule."""
    if not webhook_of(job).get("url"):
        raise ApiError(409, ErrorCode.CONFLICT, "this job has no webhook_url")
    last = last_event(job)
    if last is None:
        raise ApiError(409, ErrorCode.CONFLICT, "this job has no event to redeliver yet")
    if len(job.get("deliveries") or []) >= MAX_DELIVERY_RECORDS:
        raise ApiError(429, ErrorCode.QUOTA_EXCEEDED, f"this job already recorded {MAX_DELIVERY_RECORDS} webhook attempts")
    event_type, seq = last
    # One redelivery per second per job: a double click does not send twice.
    queued = _enqueue(rt, job["id"], event_type, attempt=1, seq=seq, chain_id=f"r{int(time.time())}")
    logs.info("webhook redelivery queued", event=event_type, queued=queued)
    return {"event": event_type, "webhook_id": webhook_id(job["id"], event_type, seq), "queued": queued}


def last_event(job: Job) -> tuple[str, int | None] | None:
    """The latest event the job has had that its webhook wants: (type, progress number)."""
    wanted = subscribed_events(job)
    status = JobStatus(job["status"])
    if status.terminal and EVENT_FOR_STATUS[status] in wanted:
        return EVENT_FOR_STATUS[status], None
    seqs = [d["seq"] for d in job.get("deliveries") or [] if d.get("event") == PROGRESS_EVENT and isinstance(d.get("seq"), int)]
    if seqs and PROGRESS_EVENT in wanted:
        return PROGRESS_EVENT, max(seqs)
    if "running" in (job.get("timestamps") or {}) and "job.running" in wanted:
        return "job.running", None
    return None


def deliver_webhook(rt: Runtime, job_id: str, call: WebhookCall | None) -> None:
    """One attempt of one event (the deliver_webhook task; None: a payload we never wrote)."""
    if call is None:
        logs.error("malformed webhook task dropped", job_id=job_id)
        return
    event_type, attempt, seq, redelivery = call.event_type, call.attempt, call.seq, call.chain
    job = rt.store.get(job_id)
    if job is None:
        logs.warning("webhook for a job that does not exist", job_id=job_id)
        return
    url = webhook_of(job).get("url")
    if not url:
        return
    refused = contradiction(rt, job, call)
    if refused is not None:
        logs.warning("webhook task dropped: the job contradicts it", event=event_type, seq=seq, attempt=attempt,
                     status=job["status"], reason=refused)
        return
    room = MAX_PROGRESS_RECORDS if event_type == PROGRESS_EVENT else MAX_DELIVERY_RECORDS
    if len(job.get("deliveries") or []) >= room:
        logs.warning("webhook task dropped: the job's record of attempts is full", event=event_type, records=room)
        return
    secrets = rt.settings.webhooks.secrets_for(job.get("client_id") or "default")
    if not secrets:
        logs.error("no webhook secret for this client (VEO_WEBHOOK_SECRETS / VEO_WEBHOOK_SECRET); webhooks cannot be signed",
                   client_id=job.get("client_id"), event=event_type)
        raise TransientError(ErrorCode.INTERNAL, "webhook secret missing")

    msg_id = webhook_id(job_id, event_type, seq)
    data = with_signed_urls(job_view(job), rt.bucket, rt.settings)
    result = post_event(rt.user_http, url, event_type, msg_id, event_body(event_type, data, datetime.now(UTC)),
                        secrets, rt.settings.webhook_timeout_s, attempt)
    delay, outcome = _next_step(rt, event_type, attempt, result)
    record = result.record() | {"outcome": outcome, "next_attempt_at": _at(delay)}
    if record.get("error"):
        record["error"] = str(record["error"])[:MAX_RECORDED_ERROR_CHARS]
    if seq is not None:
        record["seq"] = seq
    if redelivery:
        record["redelivery"] = True
    # The record ends the sweep's watch for this event, if it has one (gcp/store.py NOTIFY_AFTER), in the same write.
    if not rt.store.append(job_id, "deliveries", record, limit=MAX_DELIVERY_RECORDS, attempt_of=event_type):
        logs.warning("webhook attempt not recorded: the job's record of attempts is full; no further attempt",
                     event=event_type, attempt=attempt)
        delay = None
    logs.event("INFO" if result.delivered else "WARNING", "webhook attempt", event=event_type, webhook_id=msg_id,
               attempt=attempt, status_code=result.status_code, latency_ms=result.latency_ms, error=result.error, outcome=outcome)
    if delay is not None:
        _enqueue(rt, job_id, event_type, attempt + 1, delay_s=delay, seq=seq, chain_id=redelivery)


def next_delay_s(schedule: tuple[float, ...], attempts_done: int, retry_after_s: float | None) -> float | None:
    """Seconds before attempt attempts_done + 1, or None when the schedule is used up."""
    if attempts_done >= len(schedule):
        return None
    return max(schedule[attempts_done], min(retry_after_s or 0.0, MAX_RETRY_AFTER_S))


def _next_step(rt: Runtime, event_type: str, attempt: int, result: DeliveryAttempt) -> tuple[float | None, str]:
    if result.delivered:
        return None, "delivered"
    if result.gone:
        return None, "gone"  # 410: the receiver asked us to stop
    if result.blocked:
        return None, "blocked"  # the SSRF guard refused the address; it will not change its mind
    if event_type == PROGRESS_EVENT:
        return None, "not_retried"  # stale by the time a retry would land; the next one follows
    delay = next_delay_s(rt.settings.webhooks.retry_schedule_s, attempt, result.retry_after_s)
    return delay, "retrying" if delay is not None else "gave_up"


def _at(delay_s: float | None) -> datetime | None:
    return None if delay_s is None else utcnow() + timedelta(seconds=delay_s)


def _enqueue(rt: Runtime, job_id: str, event_type: str, attempt: int, delay_s: float = 0.0,
             seq: int | None = None, chain_id: str = "") -> bool:
    return rt.scheduler.enqueue(chain.webhook_task(rt.settings, job_id, event_type, attempt, delay_s, seq, chain_id))
