"""The submit step: the provider is called once per job, under a claim, and the job moves to
`running` with the provider's handle; a throttled submission waits on a named task of its own."""
from __future__ import annotations

from veorelay.core.accepted import accepted_request
from veorelay.core.clock import utcnow
from veorelay.core.errors import ErrorCode, PermanentError, TransientError
from veorelay.core.failover import may_fail_over
from veorelay.core.job import Job, JobStatus, TransitionRefused
from veorelay.core.redaction import redact_error
from veorelay.gcp import logs
from veorelay.runtime import Runtime
from veorelay.steps import chain
from veorelay.steps.failover import fail_over
from veorelay.steps.lifecycle import fail, move
from veorelay.steps.poll import first_check_delay

# A submission claimed longer ago than this is presumed dead (crashed mid-call) and may be
# retried. It exceeds the provider call's own timeout, so a live attempt is never doubled.
SUBMIT_LEASE_S = 120
# The longest Retry-After we wait out in one step; the sweep's stall time must exceed it.
MAX_RETRY_AFTER_S = 300


def submit_job(rt: Runtime, job_id: str) -> None:
    job = rt.store.get(job_id)
    if job is None or job["status"] != JobStatus.ACCEPTED:
        logs.info("submit skipped", job_id=job_id, status=job and job["status"])
        return
    if utcnow() > job["deadline_at"]:
        late = PermanentError(ErrorCode.DEADLINE_EXCEEDED, "the job could not be submitted before its deadline" + last_provider_answer(job))
        fail(rt, job_id, late.job_error())
        return
    provider = rt.providers[job["provider"]]
    if provider.capabilities.streaming:
        rt.scheduler.enqueue(chain.stream_task(rt.settings, job))  # the POST is the stream: the step that sends it holds it
        return
    if not _claim_submission(rt, job_id):
        return
    req = accepted_request(job["request"], job["model"])
    try:
        handle = provider.submit(job_id, req)
    except PermanentError as exc:
        if not (may_fail_over(exc.code) and fail_over(rt, job, exc)):
            fail(rt, job_id, exc.job_error(), from_states={JobStatus.ACCEPTED})
        return
    except TransientError as exc:
        if not _transient_refusal(rt, job, exc):
            raise  # the queue's backoff decides when to try again
        return
    except Exception:
        _release_claim(rt, job_id, {})
        raise
    running = move(rt, job_id, JobStatus.RUNNING, {
        "handle": handle, "submit_claim": None, "progress": {"percent": 0, "stage": "running"},
    }, from_states={JobStatus.ACCEPTED})
    if running is not None:
        schedule_first_check(rt, running)


def schedule_first_check(rt: Runtime, job: Job) -> None:
    rt.scheduler.enqueue(chain.poll_task(rt.settings, job, 1, delay_s=first_check_delay(rt, job)))


def _transient_refusal(rt: Runtime, job: Job, exc: TransientError) -> bool:
    """A refusal worth trying again: True when it is handled here (a wait of our own, or the next
    provider); False: the claim is released and the caller raises for the queue to retry."""
    if exc.retry_after_s is not None:  # throttled
        if not (may_fail_over(exc.code) and _waited_enough(rt, job) and fail_over(rt, job, exc)):
            retry_submission_later(rt, job, exc)
        return True
    failures = int(job.get("submit_failures") or 0) + 1
    unreachable = exc.code == ErrorCode.PROVIDER_UNAVAILABLE  # never a timeout: the provider may have taken the job
    if unreachable and failures >= rt.settings.failover.unavailable_attempts and fail_over(rt, job, exc):
        return True
    _release_claim(rt, job["id"], {"submit_failures": failures if unreachable else 0})
    return False


def _release_claim(rt: Runtime, job_id: str, updates: dict[str, object]) -> None:
    try:
        rt.store.update(job_id, {JobStatus.ACCEPTED}, {"submit_claim": None, **updates})
    except TransitionRefused:
        pass  # cancelled meanwhile: no claim to release, and the provider's error stays the one raised


def _waited_enough(rt: Runtime, job: Job) -> bool:
    """A throttled job with a provider to move to waits only so long for this one (VEO_FAILOVER_THROTTLED_SECONDS)."""
    since = job.get("throttled_since")
    return bool(job.get("fallback_providers")) and since is not None and \
        (utcnow() - since).total_seconds() >= rt.settings.failover.throttled_s


def retry_submission_later(rt: Runtime, job: Job, exc: TransientError) -> None:
    """The provider throttled us (429, or 503 with Retry-After). Cloud Tasks ignores a
    target's Retry-After, so the wait is our own named task; the job stays `accepted`.
    One write (claim released + attempt counted) and only on this path: the happy path
    pays nothing for it."""
    attempt = int(job.get("submit_attempts") or 0) + 1
    left_s = (job["deadline_at"] - utcnow()).total_seconds()
    # Never wait past the deadline: the retry then fails the job at once (deadline_exceeded).
    delay_s = min(max(float(exc.retry_after_s or 0), 1.0), MAX_RETRY_AFTER_S, max(left_s, 0.0) + 1.0)
    try:
        rt.store.update(job["id"], {JobStatus.ACCEPTED}, {
            "submit_claim": None,
            "submit_attempts": attempt,
            "submit_error": redact_error(exc.job_error()).to_dict(),
            "progress": {"percent": 0, "stage": "throttled"},
            "throttled_since": job.get("throttled_since") or utcnow(),
        })
    except TransitionRefused:
        return  # cancelled meanwhile
    logs.warning("provider throttled the submission; retrying later", provider=job["provider"], code=exc.code,
                 retry_in_s=round(delay_s, 1), attempt=attempt)
    rt.scheduler.enqueue(chain.submit_task(rt.settings, job, retry=attempt, delay_s=delay_s))


def last_provider_answer(job: Job) -> str:
    """Why a job that never got submitted waited: the provider's last refusal, for its error."""
    error = job.get("submit_error") or {}
    return f" (the provider's last answer: {error['message']})" if error.get("message") else ""


def _claim_submission(rt: Runtime, job_id: str) -> bool:
    """Take the right to call the provider for this job, so a duplicate task cannot pay twice."""
    if rt.store.claim(job_id, "submit_claim", JobStatus.ACCEPTED, SUBMIT_LEASE_S):
        return True
    logs.info("submission already in flight", job_id=job_id)
    return False
