"""The job as clients see it: GET /jobs/{id}, webhook event data, job.json in the bucket."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from veorelay.core.cost import view as cost_view
from veorelay.core.events import DEFAULT_EVENTS
from veorelay.core.job import Job, webhook_of

PUBLIC_FIELDS = ("id", "status", "provider", "model", "request", "metadata", "progress", "outputs", "error")


def job_view(job: Job) -> dict[str, Any]:
    view = {key: _jsonable(job.get(key)) for key in PUBLIC_FIELDS}
    view["created_at"] = _jsonable(job.get("created_at"))
    view["updated_at"] = _jsonable(job.get("updated_at"))
    view["deadline_at"] = _jsonable(job.get("deadline_at"))
    view["timestamps"] = _jsonable(job.get("timestamps") or {})
    view["outputs"] = view["outputs"] or []
    view["cost"] = cost_view(job)  # estimated list price, and whether it was billed once ended
    view["attempts"] = _jsonable(job.get("attempts") or [])  # providers that refused it before one accepted it
    view["fallback_providers"] = list(job.get("fallback_providers") or [])
    view["extends"] = _jsonable(job.get("extends"))  # core/extension.py: the video this job extends (None: a new one)
    view["warnings"] = _jsonable(job.get("warnings") or [])  # core/media.py: succeeded, but not as asked
    webhook = webhook_of(job)
    view["webhook"] = {
        "url": webhook.get("url"),
        "events": list(webhook.get("events") or DEFAULT_EVENTS) if webhook.get("url") else [],
        "deliveries": _jsonable(job.get("deliveries") or []),
    }
    view["links"] = {"self": f"/jobs/{job['id']}", "cancel": f"/jobs/{job['id']}:cancel"}
    return view


def iso_z(moment: datetime) -> str:
    """A UTC time as clients see it: ISO 8601 with a Z (2026-12-02T00:36:00Z)."""
    return moment.isoformat().replace("+00:00", "Z")


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso_z(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value
