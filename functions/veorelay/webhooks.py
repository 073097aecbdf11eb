"""Standard Webhooks: event bodies, signatures, and one delivery attempt.

The `webhook-id` is derived from the job and event type, so every retry and every
redelivery of one event carries the same id and receivers can deduplicate on it.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

import requests
from standardwebhooks import Webhook

from .jobs import JobStatus

EVENT_FOR_STATUS = {
    JobStatus.RUNNING: "job.running",
    JobStatus.SUCCEEDED: "job.succeeded",
    JobStatus.FAILED: "job.failed",
    JobStatus.CANCELLED: "job.cancelled",
}


def webhook_id(job_id: str, event_type: str) -> str:
    return "msg_" + hashlib.sha256(f"{job_id}:{event_type}".encode()).hexdigest()[:32]


def event_body(event_type: str, data: dict[str, Any], now: datetime) -> str:
    return json.dumps(
        {"type": event_type, "timestamp": now.isoformat().replace("+00:00", "Z"), "data": data},
        separators=(",", ":"),
        sort_keys=True,
    )


def signed_headers(secret: str, msg_id: str, body: str, now: datetime) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": "veo-relay-webhooks/1",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, now, body),
    }


@dataclass(frozen=True)
class DeliveryAttempt:
    event: str
    webhook_id: str
    at: datetime
    status_code: int | None
    latency_ms: int
    error: str | None = None
    retry_after_s: float | None = None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def gone(self) -> bool:
        """410 Gone: the receiver asks us to stop."""
        return self.status_code == 410

    def record(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "retry_after_s"}


def post_event(session: requests.Session, url: str, event_type: str, msg_id: str, body: str, secret: str, timeout_s: float) -> DeliveryAttempt:
    now = datetime.now(timezone.utc)
    headers = signed_headers(secret, msg_id, body, now)
    started = time.monotonic()
    try:
        resp = session.post(url, data=body.encode(), headers=headers, timeout=timeout_s, allow_redirects=False)
    except requests.RequestException as exc:
        return DeliveryAttempt(event_type, msg_id, now, None, _ms(started), type(exc).__name__)
    retry_after = resp.headers.get("Retry-After")
    resp.close()
    error = None if 200 <= resp.status_code < 300 else f"receiver answered {resp.status_code}"
    return DeliveryAttempt(
        event_type, msg_id, now, resp.status_code, _ms(started), error,
        float(retry_after) if retry_after and retry_after.isdigit() else None,
    )


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
