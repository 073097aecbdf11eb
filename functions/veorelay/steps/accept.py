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
from veorelay.core.catalog import ModelSpec
from veorelay.core.clock import utcnow
from veorelay.core.errors import ApiError, ErrorCode
from veorelay.core.extension import Extension, check_extension
from veorelay.core.failover import fallback_chain, model_family
from veorelay.core.images import uploads_fingerprint
from veorelay.core.job import Job, JobStatus
from veorelay.core.request import GenerationRequest, parse_request, stored_request
from veorelay.gcp import logs
from veorelay.net.url_rules import check_webhook_url
from veorelay.runtime import Runtime
from veorelay.steps import chain, spend
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
    extension = None
    if req.extend is not None:  # the source job read and checked; the request then names its video
        extension = _extension(rt, req, req.extend.job_id, client_id, provider_name, provider.capabilities.spec_for(model))
        req = req.model_copy(update={"extend": req.extend.model_copy(update={"video": extension.source})})
    fallbacks = _fallbacks(rt, req, provider_name, model) if extension is None else []
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
        "request": stored_request(req),
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
    if fallbacks:
        job["fallback_providers"] = fallbacks
    if extension is not None:
        job["extends"] = extension.extends
    job["cost"] = spend.estimate_cost(rt, job)
    if inputs is not None:
        spend.check_budget(rt, job)  # a refusal before any image is written (admit checks again, atomically)
        # Content-addressed names (steps/images.py): what is already there holds these bytes.
        # Residual: losing a race to a concurrent request with the same key (the Conflict
        # below), or a failure creating the job, leaves these objects unreferenced until the
        # bucket's lifecycle rule removes inputs/; no job ever points at bytes it was not sent.
        store_images(rt.bucket, inputs)
    try:
        spend.admit(rt, job)  # with its client's budget reserved, when it has caps (429 budget_exceeded)
        logs.info("job accepted", provider=provider_name, model=job["model"])
    except gexc.Conflict:  # a concurrent request with this key recorded it first
        return _replay(rt, rt.store.get(job_id), client_id, fingerprint)
    _queue_submission(rt, job)
    return job, True


def _extension(rt: Runtime, req: GenerationRequest, job_id: str, client_id: str, provider_name: str, spec: ModelSpec) -> Extension:
    """The source job of an extension, read and checked (core/extension.py) before anything is
    stored or paid for. An extension stays on its provider: the source video is that provider's."""
    if req.fallback_providers:
        raise ApiError(400, ErrorCode.UNSUPPORTED_OPTION, "an extension cannot move to another provider: its source video "
                       "is named the way its own provider takes it", "fallback_providers")
    source = rt.store.get(job_id)
    return check_extension(req, source, client_id=client_id, provider=provider_name, spec=spec, now=utcnow())


def _fallbacks(rt: Runtime, req: GenerationRequest, provider_name: str, model: str) -> list[str]:
    """The providers the job may move to if its own refuses it before accepting it: the client's
    list (each must be enabled), else the deployment's chain for the model's family (core/failover.py)."""
    for i, name in enumerate(req.fallback_providers or []):
        if name not in rt.providers:
            raise ApiError(400, ErrorCode.UNSUPPORTED_OPTION, f"provider {name!r} is not enabled here", f"fallback_providers.{i}")
        if name == provider_name:
            raise ApiError(400, ErrorCode.INVALID_REQUEST, f"{name!r} is the job's own provider", f"fallback_providers.{i}")
    return fallback_chain(provider_name, req.fallback_providers, req.provider is not None, model_family(model),
                          rt.settings.failover.chains)


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
