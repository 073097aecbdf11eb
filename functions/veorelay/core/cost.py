"""What a job costs, pure: estimated at acceptance from the catalog's list price, and whether it
was billed once it ended.

Billed or not, by how the job ended (the rule GET /usage, budgets and webhooks share):
- never accepted by a provider (refused, throttled past its deadline, cancelled before): not billed;
- filtered by a safety filter (`rai_filtered`), or reported failed by the provider (`provider_error`,
  `quota_exceeded`, `access_denied`, `invalid_request`): not billed, the provider made nothing;
- succeeded: billed;
- accepted, then cancelled, past its deadline, or its video lost on the way (`download_expired`,
  `download_invalid`, ...): billed. Veo has no cancel: the generation goes on and is charged.
The estimate is the list price; the provider's invoice is the truth (docs/COSTS.md)."""
from __future__ import annotations

from typing import Any, TypedDict

from veorelay.core.catalog import ModelSpec, list_price_usd
from veorelay.core.job import Job, JobStatus

CURRENCY = "USD"
# Failures in which the provider says it made nothing.
NOT_BILLED_ERRORS = frozenset({"rai_filtered", "provider_error", "quota_exceeded", "access_denied", "invalid_request",
                               "unsupported_option"})


class CostBasis(TypedDict):
    model: str
    resolution: str
    seconds: int
    samples: int
    audio: bool
    price_per_second: float | None  # USD per second of video at that resolution; None: the catalog lists none


class Cost(TypedDict):
    estimated_usd: float | None  # None: no list price (a gateway billing on its own terms)
    currency: str
    basis: CostBasis


def estimate(spec: ModelSpec, request: dict[str, Any]) -> Cost:
    """The list price of the job as accepted (`request`: the job's stored request)."""
    resolution = request.get("resolution") or spec.default_resolution
    seconds = int(request.get("duration_seconds") or spec.default_duration)
    if request.get("extend") and spec.extension is not None:
        seconds = spec.extension.added_seconds  # an extension is billed for the seconds it adds
    samples = int(request.get("sample_count") or 1)
    audio = spec.audio == "always" or (spec.audio == "optional" and request.get("generate_audio") is not False)
    total = list_price_usd(spec, resolution, seconds, samples, audio)
    per_second = None if total is None else round(total / (seconds * samples), 6)
    return Cost(estimated_usd=total, currency=CURRENCY,
                basis=CostBasis(model=spec.id, resolution=resolution, seconds=seconds, samples=samples, audio=audio,
                                price_per_second=per_second))


def billed(job: Job) -> bool | None:
    """Whether the job's generation was charged; None while it has not ended."""
    status = job.get("status")
    if status not in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED):
        return None
    if status == JobStatus.SUCCEEDED:
        return True
    if not job.get("handle") and "running" not in (job.get("timestamps") or {}):
        return False  # no provider ever took it
    code = (job.get("error") or {}).get("code")
    return code not in NOT_BILLED_ERRORS


def billed_usd(job: Job) -> float:
    """What the job adds to its client's spend once it ended: its estimate if billed, else 0."""
    cost = job.get("cost") or {}
    return float(cost.get("estimated_usd") or 0.0) if billed(job) else 0.0


def view(job: Job) -> dict[str, Any] | None:
    """The job's cost as clients see it (GET /jobs/{id}, webhooks, job.json)."""
    cost = job.get("cost")
    if not cost:
        return None
    return {**cost, "billed": billed(job)}
