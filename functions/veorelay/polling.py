"""When to ask a provider again."""
from __future__ import annotations

from typing import TYPE_CHECKING

from . import logs
from .config import PollSettings
from .errors import ErrorCode, JobError, PermanentError
from .jobs import JobStatus, TransitionRefused
from .lifecycle import fail, move
from .schedule import TaskRequest
from .store import utcnow

FINALIZE_DEADLINE_S = 1800

if TYPE_CHECKING:
    from .clients import Runtime


def next_poll_delay(poll: PollSettings, polls_done: int) -> float:
    """Seconds until poll number polls_done + 1.

    The first check waits `initial_delay_s` (a Veo job is never done sooner), then checks
    come every min_delay_s growing ×1.2 up to max_delay_s.
    """
    if polls_done == 0:
        return poll.initial_delay_s
    return min(poll.max_delay_s, poll.min_delay_s * 1.2 ** (polls_done - 1))


def poll_job(rt: "Runtime", job_id: str, poll_number: int) -> None:
    """Ask the provider once; then schedule the next check, the download, or the failure."""
    job = rt.store.get(job_id)
    if job is None or job["status"] != JobStatus.RUNNING:
        logs.info("poll skipped", job_id=job_id, status=job and job["status"], poll=poll_number)
        return
    if utcnow() > job["deadline_at"]:
        fail(rt, job_id, JobError(ErrorCode.DEADLINE_EXCEEDED, "the provider did not finish before the job's deadline"), {JobStatus.RUNNING})
        return
    provider = rt.providers[job["provider"]]
    try:
        progress = provider.check(job["handle"])
    except PermanentError as exc:
        fail(rt, job_id, exc.job_error(), {JobStatus.RUNNING})
        return
    logs.info("provider checked", poll=poll_number, state=progress.state, percent=progress.percent)

    if progress.state == "failed":
        fail(rt, job_id, progress.error or JobError(ErrorCode.PROVIDER_ERROR, "the provider reported a failure"), {JobStatus.RUNNING})
        return
    if progress.state == "succeeded":
        downloading = move(rt, job_id, JobStatus.DOWNLOADING, {
            "pending_outputs": [ref.to_dict() for ref in progress.outputs],
            "progress": {"percent": 100, "stage": "downloading"},
        }, from_states={JobStatus.RUNNING})
        if downloading is not None or job_status(rt, job_id) == JobStatus.DOWNLOADING:
            schedule_finalize(rt, job_id)
        return
    if progress.percent is not None and progress.percent != (job.get("progress") or {}).get("percent"):
        try:
            rt.store.update(job_id, {JobStatus.RUNNING}, {"progress": {"percent": progress.percent, "stage": "running"}})
        except TransitionRefused:
            return
    rt.scheduler.enqueue(TaskRequest(
        queue=rt.settings.queues.poll, target="poll_job", name=f"{job_id}-poll-{poll_number + 1}",
        payload={"job_id": job_id, "poll": poll_number + 1}, delay_s=next_poll_delay(rt.settings.poll, poll_number),
    ))


def schedule_finalize(rt: "Runtime", job_id: str) -> None:
    rt.scheduler.enqueue(TaskRequest(
        queue=rt.settings.queues.finalize, target="finalize_job", name=f"{job_id}-finalize", payload={"job_id": job_id},
        # Cloud Tasks' maximum: a long download must not be redelivered while still running.
        dispatch_deadline_s=FINALIZE_DEADLINE_S,
    ))


def job_status(rt: "Runtime", job_id: str) -> str | None:
    job = rt.store.get(job_id)
    return job and job["status"]
