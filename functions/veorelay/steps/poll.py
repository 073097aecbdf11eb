"""The poll step: ask the provider once, then schedule the next check, the download or the
failure (when to check: core/poll_plan.py, from what gcp/poll_stats.py learned).

A provider that pushes completion events (steps/events_in.py) gets the same step as an
immediate check (PollCall.push): it asks the provider and moves the job on if it is done, but
queues nothing (the job's chain of checks goes on as the backstop, sparse while that
provider+model's events arrive: gcp/poll_stats.py learns how reliably they do)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from veorelay.config import Settings
from veorelay.core import poll_plan as poll_schedule
from veorelay.core.clock import utcnow
from veorelay.core.errors import ErrorCode, JobError, PermanentError
from veorelay.core.job import Job, JobStatus, TransitionRefused, progress_of, seconds_running
from veorelay.core.push_events import DETECTED_BY_CHECK, DETECTED_BY_EVENT, expects_push
from veorelay.gcp import logs
from veorelay.gcp.poll_stats import DurationStats
from veorelay.providers.base import Progress
from veorelay.steps import chain, events_in, recover
from veorelay.steps.chain import PollCall, chain_fields, current_chain, sweep_generation
from veorelay.steps.deliver import enqueue_progress
from veorelay.steps.lifecycle import fail, kept_outputs_or_fail, move, record_late_result

if TYPE_CHECKING:
    from veorelay.runtime import Runtime

# A check whose previous one is older than this (plus the longest gap between two checks) has
# been retried by its queue for half an hour: its chain has moved on, or died and been (or will
# be) restarted by the sweep. It ends, rather than queue a next check whose name Cloud Tasks
# stopped reserving after an hour: that would be a second chain beside the live one.
STALE_CHECK_S = 1800.0


def duration_stats(rt: Runtime) -> DurationStats:
    """The runtime's learned durations; a Runtime built without them plans from the prior."""
    stats = getattr(rt, "durations", None)
    return stats if stats is not None else _prior_only(rt.settings)


_PRIOR_ONLY: dict[int, DurationStats] = {}


def _prior_only(settings: Settings) -> DurationStats:
    return _PRIOR_ONLY.setdefault(id(settings), DurationStats(None, settings.poll, settings.job_deadline_s))


def first_check_delay(rt: Runtime, job: Job) -> float:
    poll = rt.settings.poll
    push = expects_push(job)
    times = duration_stats(rt).plan(job["provider"], job["model"], push=push).times_for(job["id"])
    # A job that pushes its end waits for the backstop's first check where the plan puts it (the
    # tail of the spread while events arrive), not within the poll-only first-check bound.
    first_max = max(poll.initial_delay_s, times[0]) if push and times else poll.initial_delay_s
    return poll_schedule.next_delay(times, 0.0, poll.min_delay_s, poll.max_delay_s, first=True, first_max_s=first_max)


def next_check_delay(rt: Runtime, job: Job, elapsed_s: float) -> float:
    poll = rt.settings.poll
    times = duration_stats(rt).plan(job["provider"], job["model"], push=expects_push(job)).times_for(job["id"])
    return poll_schedule.next_delay(times, elapsed_s, poll.min_delay_s, poll.max_delay_s)


def learn_duration(rt: Runtime, job: Job, after_s: float, at_s: float, pushed: bool | None = None) -> None:
    """Best effort: a lost data point only makes the schedule learn a little slower. `pushed`:
    for a job that asked for push, whether its event came before a check found it done."""
    try:
        duration_stats(rt).record(job["provider"], job["model"], job["id"], after_s, at_s, pushed=pushed)
    except Exception as exc:
        logs.warning("generation time not recorded", error=type(exc).__name__)


def poll_job(rt: Runtime, job_id: str, call: PollCall = PollCall(1, None, 0)) -> None:
    """Ask the provider once; then schedule the next check, the download, or the failure.

    call.checked_s: seconds since submission at the previous check (carried by the poll task),
    so a finished job tells the schedule it ended between that check and this one."""
    poll_number, checked_s, gen = call.poll_number, call.checked_s, call.gen
    job = rt.store.get(job_id)
    if job is None or job["status"] != JobStatus.RUNNING:
        logs.info("poll skipped", job_id=job_id, status=job and job["status"], poll=poll_number)
        if call.push and job is not None:  # its event came while a check was moving the job on
            events_in.event_came_late(rt, job)
        return
    if call.push:
        pushed_check(rt, job, call)
        return
    superseded = not_current(rt, job, call)
    if superseded is not None:
        logs.info("poll skipped: not the job's current check", job_id=job_id, poll=poll_number, gen=gen,
                  chain=call.chain, reason=superseded)
        return
    if utcnow() > job["deadline_at"]:
        late = JobError(ErrorCode.DEADLINE_EXCEEDED, "the provider did not finish before the job's deadline")
        fail(rt, job_id, late, {JobStatus.RUNNING})
        return
    provider = rt.providers[job["provider"]]
    elapsed = seconds_running(job)
    try:
        progress = recover.check(rt, job, provider)  # provider.check; a searched-for generation claimed first
    except PermanentError as exc:
        fail(rt, job_id, exc.job_error(), {JobStatus.RUNNING})
        return
    logs.info("provider checked", poll=poll_number, state=progress.state, percent=progress.percent)

    if progress.state == "failed":
        fail(rt, job_id, progress.error or JobError(ErrorCode.PROVIDER_ERROR, "the provider reported a failure"), {JobStatus.RUNNING})
        return
    if progress.state == "succeeded":
        _finished(rt, job, progress, checked_s or 0.0, elapsed)
        return
    known = job.get("progress")
    now = progress_of(progress.percent, "running")
    if now["percent"] is not None and now["percent"] != (known.get("percent") if known else None):
        try:
            # Only while this chain is the job's: a takeover meanwhile makes this check the last.
            updated = rt.store.update(job_id, {JobStatus.RUNNING}, {"progress": now}, unchanged=chain_fields(job))
        except TransitionRefused:
            return
        enqueue_progress(rt, updated)  # a job.progress webhook, if asked for (throttled)
    rt.scheduler.enqueue(chain.poll_task(rt.settings, job, poll_number + 1, delay_s=next_check_delay(rt, job, elapsed), checked_s=elapsed))


def pushed_check(rt: Runtime, job: Job, call: PollCall) -> None:
    """The check a completion event asked for: the provider is asked (never the event), the job
    moves on only if it says so; nothing else is queued or written. A forged, early or replayed
    event thus costs this one call (and its window's name: steps/chain.py push_check_task)."""
    if call.gen != sweep_generation(job):
        logs.info("event check skipped: the sweep started a new chain", job_id=job["id"])
        return
    if utcnow() > job["deadline_at"]:
        return  # the chain's next check fails it with deadline_exceeded
    elapsed = seconds_running(job)
    try:
        progress = recover.check(rt, job, rt.providers[job["provider"]])
    except PermanentError as exc:
        fail(rt, job["id"], exc.job_error(), {JobStatus.RUNNING})
        return
    logs.info("provider checked after a completion event", state=progress.state, percent=progress.percent)
    if progress.state == "failed":
        fail(rt, job["id"], progress.error or JobError(ErrorCode.PROVIDER_ERROR, "the provider reported a failure"), {JobStatus.RUNNING})
    elif progress.state == "succeeded":
        received = call.checked_s if call.checked_s is not None else elapsed
        # Done before the event came: between a check's shortest gap before it and then.
        _finished(rt, job, progress, max(0.0, received - rt.settings.poll.min_delay_s), max(received, 0.0), pushed=True)
    else:
        logs.info("completion event for a job still running: nothing changes", job_id=job["id"])


def not_current(rt: Runtime, job: Job, call: PollCall) -> str | None:
    """Why this poll task is not the job's current check (None: it is). The job's record names
    its chain (steps/chain.py); nothing in the payload can outvote it."""
    if call.gen != sweep_generation(job):
        return "the sweep started a new chain of checks"
    if call.chain != current_chain(job):
        return "another chain took the job over"  # steps/stream.py follow_by_polling
    if call.checked_s is not None and seconds_running(job) - call.checked_s > STALE_CHECK_S + rt.settings.poll.max_delay_s:
        return "a check retried for too long"
    return None


def _finished(rt: Runtime, job: Job, progress: Progress, checked_s: float, elapsed: float,
              pushed: bool = False) -> None:
    """The provider says the job is done: on to the download, or the late result of a job that ended meanwhile."""
    job_id = job["id"]
    outputs = kept_outputs_or_fail(rt, job_id, [ref.to_dict() for ref in progress.outputs])
    if outputs is None:
        return
    found: dict[str, str] = {"detected_by": DETECTED_BY_EVENT if pushed else DETECTED_BY_CHECK} if expects_push(job) else {}
    downloading = move(rt, job_id, JobStatus.DOWNLOADING, {
        "pending_outputs": outputs,
        "progress": {"percent": 100, "stage": "downloading"},
        **found,
    }, from_states={JobStatus.RUNNING})
    current = downloading or rt.store.get(job_id)
    status = current["status"] if current is not None else None
    if pushed and downloading is None and current is not None:  # a check of its chain found it done meanwhile
        events_in.event_came_late(rt, current)
    if status == JobStatus.DOWNLOADING:
        rt.scheduler.enqueue(chain.finalize_task(rt.settings, job))
    elif status in (JobStatus.CANCELLED, JobStatus.FAILED):  # ended while we were asking
        record_late_result(rt, job_id, outputs)
    if downloading is not None:  # only the poll that moved the job: one data point per job
        learn_duration(rt, job, checked_s, elapsed, pushed=pushed if expects_push(job) else None)
        # The provider finished between the previous check and this one: the gap bounds the detection delay.
        # A pushing job's line also says what found it done (infra/monitoring.tf: events missing).
        logs.info("provider done detected", provider=job["provider"], model=job["model"], **found,
                  detection_delay_max_s=round(max(elapsed - checked_s, 0.0), 3), generation_s=round(elapsed, 3))

