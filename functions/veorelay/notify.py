"""Job events out: enqueue one webhook task per event, and deliver it."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from . import logs
from .clients import Runtime
from .errors import ErrorCode, TransientError
from .schedule import TaskRequest
from .views import job_view
from .webhooks import post_event, webhook_id, event_body


def enqueue_event(rt: Runtime, job: dict[str, Any], event_type: str) -> None:
    if not (job.get("webhook") or {}).get("url"):
        return
    rt.scheduler.enqueue(TaskRequest(
        queue=rt.settings.queues.webhooks,
        target="deliver_webhook",
        name=f"{job['id']}-wh-{event_type.replace('.', '_')}",
        payload={"job_id": job["id"], "event": event_type},
    ))


def deliver_webhook(rt: Runtime, job_id: str, event_type: str) -> None:
    job = rt.store.get(job_id)
    if job is None:
        logs.warning("webhook for a job that does not exist", job_id=job_id)
        return
    url = (job.get("webhook") or {}).get("url")
    if not url:
        return
    secret = rt.settings.webhook_secret
    if not secret:
        logs.error("VEO_WEBHOOK_SECRET is not set; webhooks cannot be signed", event=event_type)
        raise TransientError(ErrorCode.INTERNAL, "webhook secret missing")
    msg_id = webhook_id(job_id, event_type)
    body = event_body(event_type, job_view(job), datetime.now(timezone.utc))
    attempt = post_event(rt.http, url, event_type, msg_id, body, secret, rt.settings.webhook_timeout_s)
    rt.store.append(job_id, "deliveries", attempt.record())
    logs.info("webhook attempt", event=event_type, webhook_id=msg_id, status_code=attempt.status_code, latency_ms=attempt.latency_ms, error=attempt.error)
    if attempt.delivered or attempt.gone:
        return
    raise TransientError(ErrorCode.PROVIDER_UNAVAILABLE, f"webhook not delivered: {attempt.error}", retry_after_s=attempt.retry_after_s)
