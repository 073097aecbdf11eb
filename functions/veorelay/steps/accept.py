"""Accepting a job (POST /jobs and request objects): validated, recorded, and its submission
queued on the provider's own queue (steps/submit.py). Nothing is paid for here."""
from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from google.api_core import exceptions as gexc

from veorelay.core.capabilities import check_request
from veorelay.core.clock import utcnow
from veorelay.core.errors import ApiError, ErrorCode
from veorelay.core.images import uploads_fingerprint
from veorelay.core.job import Job, JobStatus
from veorelay.core.request import parse_request
from veorelay.gcp import logs
from veorelay.net.url_rules import check_webhook_url
from veorelay.runtime import Runtime
from veorelay.steps import chain
from veorelay.steps.images import prepare_images, store_images


def job_id_for(client_id: str, idempotency_key: str | None) -> str:
    """A fresh id, or, for an idempotency key, the same id every time that client sends it:
    the job document itself is the idempotency record (no second collection to keep in step)."""
    if idempotency_key is None:
        return uuid.uuid4().hex
    return hashlib.sha256(f"{client_id}\x00{idempotency_key}".encode()).hexdigest()[:32]


def request_fingerprint(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def create_job(rt: Runtime, body: Any, client_id: str = "default", idempotency_key: str | None = None,
               uploads: Mapping[str, bytes] | None = None) -> tuple[Job, bool]:
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

    job_id = job_id_for(client_id, idempotency_key)
    fingerprint = request_fingerprint({**body, "_uploads": uploads_fingerprint(uploads)} if uploads else body)
    logs.set_job(job_id)
    if idempotency_key is not None and (first := rt.store.get(job_id)) is not None:
        # A replay (or a reused key) is answered from the first job: no image fetched, nothing written.
        return _replay(rt, first, client_id, fingerprint)
    # Every image fetched, decoded and checked in memory; written only below, once all passed.
    inputs = prepare_images(rt, req, job_id, client_id, uploads) if (req.images() or uploads) else None
    if inputs is not None:
        req = inputs.request  # the job keeps their gs:// URIs, never the bytes
    now = utcnow()
    job: Job = {
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
    if inputs is not None:
        # Content-addressed names (steps/images.py): what is already there holds these bytes.
        # Residual: losing a race to a concurrent request with the same key (the Conflict
        # below), or a failure creating the job, leaves these objects unreferenced until the
        # bucket's lifecycle rule removes inputs/; no job ever points at bytes it was not sent.
        store_images(rt.bucket, inputs)
    try:
        rt.store.create(job)
        logs.info("job accepted", provider=provider_name, model=job["model"])
    except gexc.Conflict:  # a concurrent request with this key recorded it first
        return _replay(rt, rt.store.get(job_id), client_id, fingerprint)
    _queue_submission(rt, job)
    return job, True


def _replay(rt: Runtime, first: Job | None, client_id: str, fingerprint: str) -> tuple[Job, bool]:
    """The first job of this Idempotency-Key, when this is the same request again; 409 otherwise."""
    if first is None or first.get("client_id") != client_id or first.get("request_fingerprint") != fingerprint:
        raise ApiError(409, ErrorCode.CONFLICT, "this Idempotency-Key was already used with a different request", "Idempotency-Key")
    logs.info("idempotent replay", provider=first["provider"])
    _queue_submission(rt, first)  # the first request may have died between recording and queueing
    return first, False


def _queue_submission(rt: Runtime, job: Job) -> None:
    if job["status"] == JobStatus.ACCEPTED:
        rt.scheduler.enqueue(chain.submit_task(rt.settings, job))
