"""Credentials never leave in logs, job errors or webhook bodies, even when something we do
not control quotes one back (a provider error echoing a key, a URL with ?key= in a
requests exception, a traceback). Two defences: known secret values are replaced wherever
they appear, and query parameters that conventionally carry credentials are masked.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from veorelay.core.errors import JobError

REDACTED = "[redacted]"
MIN_SECRET_CHARS = 8  # shorter "secrets" (test placeholders, "1") would mangle ordinary text

_CREDENTIAL_PARAM = re.compile(r"(?i)([?&](?:key|api_key|apikey|access_token|token)=)[^&\s\"']+")

_known: tuple[str, ...] = ()


def register(secrets: Iterable[str | None]) -> None:
    """The values to scrub from now on (Settings.secret_values(), at runtime start)."""
    global _known
    values = {s for s in secrets if s and len(s) >= MIN_SECRET_CHARS}
    _known = tuple(sorted(values | set(_known), key=len, reverse=True))


def redact_text(text: str) -> str:
    for secret in _known:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return _CREDENTIAL_PARAM.sub(lambda m: m.group(1) + REDACTED, text)


def redact(value: Any) -> Any:
    """The same structure with every string scrubbed (dict keys are left alone)."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact(v) for v in value)
    return value


def redact_error(error: JobError) -> JobError:
    """A job's error as clients see it (GET, webhooks, job.json): message and provider detail scrubbed."""
    return replace(error, message=redact_text(error.message), provider_detail=redact(error.provider_detail))
