"""Verify a webhook veo-relay sent, as the Standard Webhooks specification defines it
(https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md):

- headers `webhook-id`, `webhook-timestamp` (Unix seconds), `webhook-signature`: space-separated
  `v1,<base64 HMAC-SHA256>` signatures (several while a secret is being rotated);
- the signed content is `<webhook-id>.<webhook-timestamp>.<body>`, the exact bytes received;
- the secret is `whsec_<base64 key>` (the key is the base64-decoded part);
- a timestamp more than `tolerance` seconds (default 5 minutes) from now is refused (replays).

The same checks as the `standardwebhooks` package (tests verify against it both ways)."""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from veorelay_client.errors import WebhookVerificationError

DEFAULT_TOLERANCE_S = 5 * 60


def verify_webhook(body: bytes | str, headers: Mapping[str, str], secret: str | Sequence[str], *,
                   tolerance_s: float = DEFAULT_TOLERANCE_S, now: float | None = None) -> dict[str, Any]:
    """The event (the parsed JSON body) if a signature in `headers` matches one of `secret`
    (several: during a rotation); else WebhookVerificationError saying what is wrong."""
    lower = {k.lower(): v for k, v in headers.items()}
    msg_id, stamp, signatures = lower.get("webhook-id"), lower.get("webhook-timestamp"), lower.get("webhook-signature")
    if not msg_id or not stamp or not signatures:
        missing = [name for name in ("webhook-id", "webhook-timestamp", "webhook-signature") if not lower.get(name)]
        raise WebhookVerificationError(f"missing header(s): {', '.join(missing)}")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise WebhookVerificationError("webhook-timestamp is not an integer") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        raise WebhookVerificationError(f"webhook-timestamp is {int(current - timestamp)} s from now (tolerance {int(tolerance_s)} s)")
    raw = body.encode() if isinstance(body, str) else bytes(body)
    content = f"{msg_id}.{timestamp}.".encode() + raw
    secrets = [secret] if isinstance(secret, str) else list(secret)
    expected = [base64.b64encode(hmac.new(_key(s), content, hashlib.sha256).digest()) for s in secrets]
    for given in signatures.split():
        version, _, value = given.partition(",")
        if version == "v1" and any(hmac.compare_digest(value.encode(), e) for e in expected):
            break
    else:
        raise WebhookVerificationError("no signature matches (wrong secret, or the body was changed)")
    try:
        event = json.loads(raw)
    except ValueError:
        raise WebhookVerificationError("the body is not JSON") from None
    if not isinstance(event, dict):
        raise WebhookVerificationError("the body is not a JSON object")
    return event


def _key(secret: str) -> bytes:
    try:
        return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        raise WebhookVerificationError("the secret is not whsec_<base64>") from None
