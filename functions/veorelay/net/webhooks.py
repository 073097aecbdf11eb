"""Standard Webhooks: event bodies, signatures, and one delivery attempt (ids: core/events.py)."""
from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import requests
from standardwebhooks import Webhook

from veorelay.core.retry_after import retry_after_seconds
from veorelay.net.guarded import BlockedDestination


def event_body(event_type: str, data: dict[str, Any], now: datetime) -> str:
    return json.dumps(
        {"type": event_type, "timestamp": now.isoformat().replace("+00:00", "Z"), "data": data},
        separators=(",", ":"),
        sort_keys=True,
    )


def signed_headers(secrets: str | Sequence[str], msg_id: str, body: str, now: datetime) -> dict[str, str]:
    """One `v1,<signature>` per secret, space-separated: while a secret is rotated, receivers
    holding the old one or the new one both verify."""
    secrets = [secrets] if isinstance(secrets, str) else list(secrets)
    if not secrets:
        raise ValueError("no webhook secret to sign with")
    return {
        "Content-Type": "application/json",
        "User-Agent": "veo-relay-webhooks/1",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": " ".join(Webhook(secret).sign(msg_id, now, body) for secret in secrets),
    }


@dataclass(frozen=True)
class DeliveryAttempt:
    event: str
    webhook_id: str
    attempt: int
    at: datetime
    status_code: int | None
    latency_ms: int
    error: str | None = None
    retry_after_s: float | None = None
    blocked: bool = False  # refused by the SSRF guard: retrying cannot help

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def gone(self) -> bool:
        """410 Gone: the receiver asks us to stop."""
        return self.status_code == 410

    def record(self) -> dict[str, Any]:
        """What the job keeps and GET /jobs/{id} shows (no headers, no body, no secret)."""
        return {k: v for k, v in asdict(self).items() if k not in ("retry_after_s", "blocked")}


def post_event(session: requests.Session, url: str, event_type: str, msg_id: str, body: str,
               secrets: Sequence[str], timeout_s: float, attempt: int = 1) -> DeliveryAttempt:
    """POST once; never follows a redirect (a 3xx is a failed attempt, like any non-2xx)."""
    now = datetime.now(UTC)
    headers = signed_headers(secrets, msg_id, body, now)
    started = time.monotonic()

    def failed(error: str, blocked: bool = False) -> DeliveryAttempt:
        return DeliveryAttempt(event_type, msg_id, attempt, now, None, _ms(started), error, blocked=blocked)

    try:
        resp = session.post(url, data=body.encode(), headers=headers, timeout=timeout_s, allow_redirects=False)
    except BlockedDestination as exc:
        return failed(f"blocked: {exc}", blocked=True)
    except requests.Timeout:
        return failed(f"no answer within {timeout_s:g}s")
    except requests.RequestException as exc:
        return failed(f"could not connect: {type(exc).__name__}")
    resp.close()
    code = resp.status_code
    if 200 <= code < 300:
        error = None
    elif 300 <= code < 400:
        error = f"receiver answered {code} (redirects are not followed)"
    else:
        error = f"receiver answered {code}"
    retry_after = retry_after_seconds(resp.headers.get("Retry-After"), now)
    return DeliveryAttempt(event_type, msg_id, attempt, now, code, _ms(started), error, retry_after)


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
