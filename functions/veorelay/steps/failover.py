"""Failover: a job whose submission was refused before any provider accepted it moves to the
next provider of its chain that can honour the request (core/failover.py says when). The move is
one checked write on the `accepted` job that still names the provider that refused it, so a
duplicate task cannot move it twice; the submission is then queued on the new provider's queue
under names of its own (steps/chain.py)."""
from __future__ import annotations

from typing import Any

from veorelay.core.capabilities import Capabilities, check_request
from veorelay.core.clock import utcnow
from veorelay.core.cost import estimate
from veorelay.core.errors import ApiError, StepError
from veorelay.core.failover import model_family
from veorelay.core.job import Job, JobStatus, ProviderAttempt, TransitionRefused
from veorelay.core.redaction import redact_text
from veorelay.gcp import logs
from veorelay.runtime import Runtime
from veorelay.steps import chain

MAX_MESSAGE_CHARS = 300


def model_on(caps: Capabilities, request: dict[str, Any], current_model: str) -> str:
    """The model the next provider runs the job on: the client's own model if it offers it, else
    its model of the same family (gemini's veo-3.1-generate-preview is vertex's veo-3.1-generate-001),
    else, when the client named no model, its default. ApiError: it cannot honour the request."""
    # Imported here: the request schema (pydantic) is a third of submit_job's cold start, and
    # only a job that moves to another provider is checked against it again.
    from veorelay.core.request import GenerationRequest

    asked = request.get("model")
    if asked and asked in caps.models:
        return check_request(caps, GenerationRequest.model_validate(request))
    family = model_family(asked or current_model)
    first_refusal: ApiError | None = None
    for model in (m for m in caps.models if family is not None and model_family(m) == family):
        try:
            return check_request(caps, GenerationRequest.model_validate({**request, "model": model}))
        except ApiError as refusal:
            first_refusal = first_refusal or refusal
    if asked:
        raise first_refusal or ApiError(400, "unsupported_option", f"no model of the family of {asked} is offered", "model")
    return check_request(caps, GenerationRequest.model_validate({k: v for k, v in request.items() if k != "model"}))


def fail_over(rt: Runtime, job: Job, refusal: StepError) -> bool:
    """Move the job to its next provider that can honour it; True when it moved (or was moved or
    ended meanwhile by another task). False: none is left, the caller fails the job."""
    remaining = list(job.get("fallback_providers") or [])
    attempts: list[ProviderAttempt] = [*(job.get("attempts") or []), _attempt(job["provider"], job["model"], refusal.code, refusal.message)]
    while remaining:
        name = remaining.pop(0)
        provider = rt.providers.get(name)
        if provider is None:
            attempts.append(_attempt(name, None, "unsupported_option", "the provider is not enabled here"))
            continue
        try:
            model = model_on(provider.capabilities, job["request"], job["model"])
        except ApiError as cannot:
            attempts.append(_attempt(name, None, cannot.code, cannot.message))
            continue
        hop = int(job.get("provider_hop") or 0) + 1
        try:
            moved = rt.store.update(job["id"], {JobStatus.ACCEPTED}, {
                "provider": name, "model": model, "fallback_providers": remaining, "attempts": attempts,
                # the new provider's list price; a reservation made at admission is squared with it when the job settles
                "cost": estimate(provider.capabilities.spec_for(model), job["request"]),
                "provider_hop": hop, "submit_claim": None, "submit_attempts": 0, "submit_failures": 0,
                "throttled_since": None, "submit_error": None, "progress": {"percent": 0, "stage": "failover"},
            }, unchanged={"provider": job["provider"], "provider_hop": job.get("provider_hop")})
        except TransitionRefused:
            logs.info("failover skipped: the job moved or ended meanwhile", job_id=job["id"])
            return True
        logs.warning("submission moved to the next provider", job_id=job["id"], from_provider=job["provider"],
                     to_provider=name, model=model, code=refusal.code, hop=hop)
        rt.scheduler.enqueue(chain.submit_task(rt.settings, moved))
        return True
    if len(attempts) > 1:
        try:  # the record of who was tried stays on the failed job
            rt.store.update(job["id"], {JobStatus.ACCEPTED}, {"attempts": attempts, "fallback_providers": []})
        except TransitionRefused:
            return True
    return False


def _attempt(provider: str, model: str | None, code: str, message: str) -> ProviderAttempt:
    return ProviderAttempt(provider=provider, model=model, error_code=str(code),
                           message=redact_text(message)[:MAX_MESSAGE_CHARS], at=utcnow())
