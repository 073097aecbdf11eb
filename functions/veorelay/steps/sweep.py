"""sweep_jobs: the net under the task chains, run by Cloud Scheduler (every 5 minutes).

Every job moves by a chain of named tasks. A chain can break: a queue gives up after its
max_attempts, a task is deleted or purged, a function dies between recording a state and
enqueueing the next step. The sweep finds such jobs in Firestore and

* fails every non-terminal job past its deadline with `deadline_exceeded` (so no job stays
  non-terminal longer than its deadline plus one sweep period);
* restarts the chain of a job nothing has written for `sweep_stall_s`: the job's
  `sweep_gen` goes up by one and the step for its state is enqueued under names carrying
  that generation (Cloud Tasks refuses a name used in the last hour). A poll chain of an
  older generation that was only slow, not lost, ends at its next check (steps/poll.py), so a
  false alarm costs one write and one early check, never a second provider submission
  (the submit claim) nor a second object (create-only upload);
* settles every ended job its own end did not (its client's budget and usage: gcp/budgets.py),
  once its `settle_due_at` comes;
* queues job.running or the terminal event of every job whose webhook has no attempt of it
  recorded by its `notify_due_at` (Cloud Tasks was down when the job moved, so its step could
  not): the event's own named task, so one that was queued after all is not queued twice;
* has the videos of every job that ended failed or cancelled while downloading removed once
  more when its `discard_due_at` comes (once no finalize attempt can still be running, so
  none can store a video after it): the task `<job>-discard-final`. Only a succeeded job has
  videos, even when a finalize attempt died between storing one and finding the job ended.
"""
from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from veorelay.config import Settings
from veorelay.core.clock import utcnow
from veorelay.core.errors import ErrorCode, JobError
from veorelay.core.events import pending_events
from veorelay.core.job import Job, JobStatus, TransitionRefused
from veorelay.gcp import logs
from veorelay.runtime import Runtime
from veorelay.steps import chain
from veorelay.steps.chain import sweep_generation
from veorelay.steps.deliver import enqueue_event
from veorelay.steps.lifecycle import fail

NON_TERMINAL = (JobStatus.ACCEPTED, JobStatus.RUNNING, JobStatus.DOWNLOADING)
BATCH = 200
TIME_BUDGET_S = 240.0  # the function's timeout is 300 s; what is left waits for the next run
REPORTED_IDS = 1000  # job ids listed in the answer per outcome (the counts are complete)

DEADLINE_MESSAGES = {
    JobStatus.ACCEPTED: "the job could not be submitted before its deadline",
    JobStatus.RUNNING: "the provider did not finish before the job's deadline",
    JobStatus.DOWNLOADING: "the video could not be stored before the job's deadline",
}


@dataclass
class SweepReport:
    deadline_exceeded: list[str] = field(default_factory=list)
    restarted: list[str] = field(default_factory=list)
    discarded: list[str] = field(default_factory=list)  # ended jobs whose videos a task removes once more
    settled: list[str] = field(default_factory=list)  # ended jobs whose budget and usage the sweep counted
    notified: list[str] = field(default_factory=list)  # ended jobs whose terminal event the sweep queued
    errors: int = 0
    complete: bool = True  # False: the time budget ran out; the next run goes on

    def to_dict(self) -> dict[str, Any]:
        return {
            "deadline_exceeded": len(self.deadline_exceeded),
            "restarted": len(self.restarted),
            "discarded": len(self.discarded),
            "settled": len(self.settled),
            "notified": len(self.notified),
            "errors": self.errors,
            "complete": self.complete,
            "job_ids": {"deadline_exceeded": self.deadline_exceeded[:REPORTED_IDS], "restarted": self.restarted[:REPORTED_IDS],
                        "discarded": self.discarded[:REPORTED_IDS], "notified": self.notified[:REPORTED_IDS]},
        }


def stall_after_s(settings: Settings, status: JobStatus) -> float:
    """How long a job in `status` may go unwritten before its chain counts as lost. Polls do
    not write, so a running job's stall time must exceed a generation's length (Veo: up to
    ~6 min); a finalize may stream for its whole 30-min dispatch deadline."""
    return settings.sweep_stall_s * (3 if status == JobStatus.DOWNLOADING else 1)


def sweep(rt: Runtime, now: datetime | None = None) -> SweepReport:
    now = now or utcnow()
    started = time.monotonic()
    report = SweepReport()
    seen: set[str] = set()

    def each(fetch: Callable[[], list[Job]], act: Callable[[Job], None]) -> None:
        """Every job `fetch` finds (batch after batch, each job once) handled by `act`, within the time budget."""
        while time.monotonic() - started < TIME_BUDGET_S:
            jobs = [j for j in fetch() if j["id"] not in seen]
            if not jobs:
                return
            seen.update(j["id"] for j in jobs)
            for job in jobs:
                _guarded(report, job, functools.partial(act, job))
        report.complete = False

    for status in NON_TERMINAL:
        each(functools.partial(rt.store.older_than, status, "deadline_at", now, BATCH),
             functools.partial(_expire, rt, status=status, report=report))
    for status in NON_TERMINAL:
        cutoff = now - timedelta(seconds=stall_after_s(rt.settings, status))
        each(functools.partial(rt.store.older_than, status, "updated_at", cutoff, BATCH),
             functools.partial(_restart, rt, status=status, cutoff=cutoff, report=report))
    seen.clear()  # a job failed by this run cannot be due yet; every ended job is looked at once
    each(functools.partial(rt.store.discard_due, now, BATCH), functools.partial(_discard, rt, report=report))
    seen.clear()
    each(functools.partial(rt.store.notify_due, now, BATCH), functools.partial(_notify, rt, report=report))
    if rt.budgets is not None:
        seen.clear()
        each(functools.partial(rt.store.settle_due, now, BATCH), functools.partial(_settle, rt, report=report))
    return report


def _settle(rt: Runtime, job: Job, report: SweepReport) -> None:
    """An ended job whose budget and usage were not counted when it ended (gcp/budgets.py)."""
    if rt.budgets is not None and rt.budgets.settle(job["id"]):
        report.settled.append(job["id"])


def _guarded(report: SweepReport, job: Job, action: Callable[[], None]) -> None:
    """One job's trouble (say, Cloud Tasks briefly unavailable) must not stop the sweep."""
    try:
        with logs.context(job_id=job["id"]):
            action()
    except Exception:
        report.errors += 1
        logs.error("sweep could not handle a job", exc_info=True, job_id=job["id"], status=job.get("status"))


def _expire(rt: Runtime, job: Job, status: JobStatus, report: SweepReport) -> None:
    from veorelay.steps.submit import last_provider_answer  # here: submit's imports (pydantic) cost every sweep's cold start

    message = DEADLINE_MESSAGES[status] + (last_provider_answer(job) if status == JobStatus.ACCEPTED else "")
    if fail(rt, job["id"], JobError(ErrorCode.DEADLINE_EXCEEDED, message), {status}) is not None:
        report.deadline_exceeded.append(job["id"])


def _notify(rt: Runtime, job: Job, report: SweepReport) -> None:
    """Each watched event's first attempt under its own name: created now, or there already
    (queued after all, or run and its record not written): its chain has it from here."""
    status, events = JobStatus(job["status"]), pending_events(job)
    queued = [event for event in events if enqueue_event(rt, job, event)]
    if queued:
        logs.warning("the job's events were never queued; sweep queues them", status=str(status), events=queued)
        report.notified.append(job["id"])
    # Only the watch read: a move since then added its own event (the job's end, after job.running).
    with contextlib.suppress(TransitionRefused):
        rt.store.update(job["id"], {status}, {"notify_due_at": None, "notify_events": None},
                        unchanged={"notify_events": job.get("notify_events")})


def _discard(rt: Runtime, job: Job, report: SweepReport) -> None:
    if rt.scheduler.enqueue(chain.discard_task(rt.settings, job, final=True)):
        report.discarded.append(job["id"])


def _restart(rt: Runtime, job: Job, status: JobStatus, cutoff: datetime, report: SweepReport) -> None:
    try:
        job = rt.store.restart_chain(job["id"], status, cutoff)
    except TransitionRefused:
        return  # it moved since the query: not stuck
    logs.warning("job stopped moving; sweep restarts its step", status=str(status), gen=sweep_generation(job))
    rt.scheduler.enqueue(chain.restart_task(rt.settings, job))
    report.restarted.append(job["id"])
