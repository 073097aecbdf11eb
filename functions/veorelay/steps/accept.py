"""POST /jobs and the submission step: a job is recorded first, then handed to the
provider by a task on that provider's submission queue (rate-limited to its quota)."""
from __future__ import annotations

import hashlib
import json
import uuid
from datetime import timedelta
from typing import Any, Mapping

from google.api_core import exceptions as gexc

from veorelay.gcp import logs
from veorelay.runtime import Runtime
from veorelay.core.errors import ApiError, ErrorCode, PermanentError, TransientError
from veorelay.core.job import JobStatus, TransitionRefused
from veorelay.core.redaction import redact_error
from veorelay.steps.lifecycle import fail, move
from veorelay.steps.poll import first_check_delay, poll_payload, poll_task_name, sweep_generation
from veorelay.core.capabilities import check_request
from veorelay.steps.images import ingest_images, uploads_fingerprint
from veorelay.core.request import GenerationRequest, parse_request
from veorelay.gcp.tasks import TaskRequest
from veorelay.gcp.store import utcnow
from veorelay.steps.stream import hand_to_stream
from veorelay.net.url_rules import check_webhook_url

# A submission claimed longer ago than this is presumed dead (crashed mid-call) and may be
# retried. It exceeds the provider call's own timeout, so a live attempt is never doubled.
SUBMIT_LEASE_S = 120
# The longest Retry-After we wait out in one step; the sweep's stall time must exceed it.
MAX_RETRY_AFTER_S = 300


def job_id_for(client_id: str, idempotency_key: str | None) -> str:
    """A fresh id, or, for an idempotency key, the same id every time that client sends it:
    the job document itself is the idempotency record (no second collection to keep in step)."""
    if idempotency_key is None:
        return uuid.uuid4().hex
    return hashlib.sha256(f"{client_id}\x00{idempotency_key}".encode()).hexdigest()[:32]


def request_fingerprint(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def create_job(rt: Runtime, body: Any, client_id: str = "default", idempotency_key: str | None = None,
               uploads: Mapping[str, bytes] | None = None) -> tuple[dict[str, Any], bool]:
    """Record a job and queue its submission. Returns (job, created): created is False when
    the idempotency key was seen before with the same body (the first job is returned).
    `uploads`: the image parts of a multipart/form-data job, by part name."""
    req = parse_request(body)
    provider_name = req.provider or rt.settings.default_provider
    provider = rt.providers.get(provider_name)
    if provider is None:
        raise ApiError(400, ErrorCode.UNSUPPORTED_OPTION, f"provider {provider_name!r} is not enabled here", "provider")
    model = check_request(provider.capabilities, req)
    if req.webhook_url:
        check_webhook_url(req.webhook_url, allow_loopback=rt.settings.allow_loopback_urls)

    now = utcnow()
    job_id = job_id_for(client_id, idempotency_key)
    fingerprint = request_fingerprint({**body, "_uploads": uploads_fingerprint(uploads)} if uploads else body)
    if req.images() or uploads:
        # Image bytes go to the bucket (inputs/<job id>/); the job keeps their gs:// URIs.
        req = ingest_images(req, job_id, rt.bucket, rt.user_http, rt.settings.allow_loopback_urls, uploads)
    job = {
        "id": job_id,
        "request_fingerprint": fingerprint,
        "status": str(JobStatus.ACCEPTED),
        "client_id": client_id,
        "provider": provider_name,
        "model": model,
        "request": req.model_dump(exclude_none=True, exclude={"webhook_url", "webhook_events", "metadata", "provider", "deadline_seconds"}),
        "metadata": req.metadata,
        "webhook": {"url": req.webhook_url, "events": req.webhook_events},
        "progress": {"percent": 0, "stage": "accepted"},
        "outputs": [],
        "error": None,
        "created_at": now,
        "updated_at": now,
        "deadline_at": now + timedelta(seconds=req.deadline_seconds or rt.settings.job_deadline_s),
        "timestamps": {"accepted": now},
    }
    logs.set_job(job_id)
    try:
        rt.store.create(job)
        created = True
        logs.info("job accepted", provider=provider_name, model=job["model"])
    except gexc.Conflict:
        job = rt.store.get(job_id)
        if job is None or job.get("client_id") != client_id or job.get("request_fingerprint") != fingerprint:
            raise ApiError(409, ErrorCode.CONFLICT, "this Idempotency-Key was already used with a different request", "Idempotency-Key") from None
        created = False
        logs.info("idempotent replay", provider=job["provider"])
    if job["status"] == JobStatus.ACCEPTED:
        # Also on a replay: the first request may have died between recording and queueing.
        rt.scheduler.enqueue(TaskRequest(
            queue=rt.settings.queues.submit(job["provider"]), target="submit_job",
            name=f"{job_id}-submit", payload={"job_id": job_id},
        ))
    return job, created


def submit_job(rt: Runtime, job_id: str) -> None:
    job = rt.store.get(job_id)
    if job is None or job["status"] != JobStatus.ACCEPTED:
        logs.info("submit skipped", job_id=job_id, status=job and job["status"])
        return
    if utcnow() > job["deadline_at"]:
        fail(rt, job_id, PermanentError(ErrorCode.DEADLINE_EXCEEDED, "the job could not be submitted before its deadline" + last_provider_answer(job)).job_error())
        return
    provider = rt.providers[job["provider"]]
    if provider.capabilities.streaming:
        hand_to_stream(rt, job)  # the POST is the stream: the step that sends it must hold it
        return
    if not _claim_submission(rt, job_id):
        return
    req = GenerationRequest.model_validate({**job["request"], "model": job["model"]})
    try:
        handle = provider.submit(job_id, req)
    except PermanentError as exc:
        fail(rt, job_id, exc.job_error(), from_states={JobStatus.ACCEPTED})
        return
    except Exception as exc:
        if isinstance(exc, TransientError) and exc.retry_after_s is not None:
            retry_submission_later(rt, job, exc)
            return
        rt.store.update(job_id, {JobStatus.ACCEPTED}, {"submit_claim": None})
        raise  # the queue's backoff decides when to try again
    running = move(rt, job_id, JobStatus.RUNNING, {
        "handle": handle, "submit_claim": None, "progress": {"percent": 0, "stage": "running"},
    }, from_states={JobStatus.ACCEPTED})
    if running is not None:
        schedule_first_check(rt, running)


def schedule_first_check(rt: Runtime, job: dict[str, Any]) -> None:
    gen = sweep_generation(job)
    rt.scheduler.enqueue(TaskRequest(
        queue=rt.settings.queues.poll, target="poll_job", name=poll_task_name(job["id"], 1, gen),
        payload=poll_payload(job["id"], 1, gen), delay_s=first_check_delay(rt, job),
    ))


def retry_submission_later(rt: Runtime, job: dict[str, Any], exc: TransientError) -> None:
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
        })
    except TransitionRefused:
        return  # cancelled meanwhile
    logs.warning("provider throttled the submission; retrying later", code=exc.code, retry_in_s=round(delay_s, 1), attempt=attempt)
    rt.scheduler.enqueue(TaskRequest(
        queue=rt.settings.queues.submit(job["provider"]), target="submit_job",
        name=f"{job['id']}-submit-{attempt}", payload={"job_id": job["id"]}, delay_s=delay_s,
    ))


def last_provider_answer(job: dict[str, Any]) -> str:
    """Why a job that never got submitted waited: the provider's last refusal, for its error."""
    error = job.get("submit_error") or {}
    return f" (the provider's last answer: {error['message']})" if error.get("message") else ""


def _claim_submission(rt: Runtime, job_id: str) -> bool:
    """Take the right to call the provider for this job, so a duplicate task cannot pay twice."""
    if rt.store.claim(job_id, "submit_claim", JobStatus.ACCEPTED, SUBMIT_LEASE_S):
        return True
    logs.info("submission already in flight", job_id=job_id)
    return False
