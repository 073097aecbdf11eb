"""POST /jobs and the submission step: a job is recorded first, then handed to the
provider by a task on that provider's submission queue (rate-limited to its quota)."""
from __future__ import annotations

import hashlib
import json
import uuid
from datetime import timedelta
from typing import Any

from google.api_core import exceptions as gexc

from . import logs
from .clients import Runtime
from .errors import ApiError, ErrorCode, PermanentError
from .jobs import JobStatus
from .lifecycle import fail, move
from .polling import next_poll_delay
from .request import GenerationRequest, parse_request
from .schedule import TaskRequest
from .store import utcnow
from .urls import check_webhook_url

# A submission claimed longer ago than this is presumed dead (crashed mid-call) and may be
# retried. It exceeds the provider call's own timeout, so a live attempt is never doubled.
SUBMIT_LEASE_S = 120


def job_id_for(client_id: str, idempotency_key: str | None) -> str:
    """A fresh id, or, for an idempotency key, the same id every time that client sends it:
    the job document itself is the idempotency record (no second collection to keep in step)."""
    if idempotency_key is None:
        return uuid.uuid4().hex
    return hashlib.sha256(f"{client_id}\x00{idempotency_key}".encode()).hexdigest()[:32]


def request_fingerprint(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def create_job(rt: Runtime, body: Any, client_id: str = "default", idempotency_key: str | None = None) -> tuple[dict[str, Any], bool]:
    """Record a job and queue its submission. Returns (job, created): created is False when
    the idempotency key was seen before with the same body (the first job is returned)."""
    req = parse_request(body)
    provider_name = req.provider or rt.settings.default_provider
    provider = rt.providers.get(provider_name)
    if provider is None:
        raise ApiError(400, ErrorCode.UNSUPPORTED_OPTION, f"provider {provider_name!r} is not enabled here", "provider")
    check_capabilities(provider.capabilities, req)
    if req.webhook_url:
        check_webhook_url(req.webhook_url, allow_loopback=rt.settings.allow_loopback_urls)

    now = utcnow()
    job_id = job_id_for(client_id, idempotency_key)
    job = {
        "id": job_id,
        "request_fingerprint": request_fingerprint(body),
        "status": str(JobStatus.ACCEPTED),
        "client_id": client_id,
        "provider": provider_name,
        "model": req.model or provider.capabilities.default_model,
        "request": req.model_dump(exclude_none=True, exclude={"webhook_url", "metadata", "provider"}),
        "metadata": req.metadata,
        "webhook": {"url": req.webhook_url},
        "progress": {"percent": 0, "stage": "accepted"},
        "outputs": [],
        "error": None,
        "created_at": now,
        "updated_at": now,
        "deadline_at": now + timedelta(seconds=rt.settings.job_deadline_s),
        "timestamps": {"accepted": now},
    }
    logs.set_job(job_id)
    try:
        rt.store.create(job)
        created = True
        logs.info("job accepted", provider=provider_name, model=job["model"])
    except gexc.Conflict:
        job = rt.store.get(job_id)
        if job is None or job.get("client_id") != client_id or job.get("request_fingerprint") != request_fingerprint(body):
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


def check_capabilities(caps, req: GenerationRequest) -> None:
    for option in sorted(req.options() - caps.options):
        raise ApiError(400, ErrorCode.UNSUPPORTED_OPTION, f"this provider does not support {option}", option)
    if req.model is not None and req.model not in caps.models:
        raise ApiError(400, ErrorCode.UNSUPPORTED_OPTION, f"model {req.model!r} is not offered; choose one of {', '.join(caps.models)}", "model")
    if req.aspect_ratio is not None and req.aspect_ratio not in caps.aspect_ratios:
        raise ApiError(400, ErrorCode.UNSUPPORTED_OPTION, f"aspect_ratio must be one of {', '.join(caps.aspect_ratios)}", "aspect_ratio")
    if req.duration_seconds is not None and req.duration_seconds not in caps.durations:
        raise ApiError(400, ErrorCode.UNSUPPORTED_OPTION, f"duration_seconds must be one of {', '.join(map(str, caps.durations))}", "duration_seconds")
    if req.resolution is not None and req.resolution not in caps.resolutions:
        raise ApiError(400, ErrorCode.UNSUPPORTED_OPTION, f"resolution must be one of {', '.join(caps.resolutions)}", "resolution")
    if req.sample_count is not None and req.sample_count > caps.max_samples:
        raise ApiError(400, ErrorCode.UNSUPPORTED_OPTION, f"sample_count must be at most {caps.max_samples}", "sample_count")


def submit_job(rt: Runtime, job_id: str) -> None:
    job = rt.store.get(job_id)
    if job is None or job["status"] != JobStatus.ACCEPTED:
        logs.info("submit skipped", job_id=job_id, status=job and job["status"])
        return
    if utcnow() > job["deadline_at"]:
        fail(rt, job_id, PermanentError(ErrorCode.DEADLINE_EXCEEDED, "the job could not be submitted before its deadline").job_error())
        return
    if not _claim_submission(rt, job_id):
        return
    provider = rt.providers[job["provider"]]
    req = GenerationRequest.model_validate({**job["request"], "model": job["model"]})
    try:
        handle = provider.submit(job_id, req)
    except PermanentError as exc:
        fail(rt, job_id, exc.job_error(), from_states={JobStatus.ACCEPTED})
        return
    except Exception:
        rt.store.update(job_id, {JobStatus.ACCEPTED}, {"submit_claim": None})
        raise
    running = move(rt, job_id, JobStatus.RUNNING, {
        "handle": handle, "submit_claim": None, "progress": {"percent": 0, "stage": "running"},
    }, from_states={JobStatus.ACCEPTED})
    if running is not None:
        schedule_first_check(rt, running)


def schedule_first_check(rt: Runtime, job: dict[str, Any]) -> None:
    rt.scheduler.enqueue(TaskRequest(
        queue=rt.settings.queues.poll, target="poll_job", name=f"{job['id']}-poll-1",
        payload={"job_id": job["id"], "poll": 1}, delay_s=next_poll_delay(rt.settings.poll, 0),
    ))


def _claim_submission(rt: Runtime, job_id: str) -> bool:
    """Take the right to call the provider for this job, so a duplicate task cannot pay twice."""
    if rt.store.claim(job_id, "submit_claim", JobStatus.ACCEPTED, SUBMIT_LEASE_S):
        return True
    logs.info("submission already in flight", job_id=job_id)
    return False
