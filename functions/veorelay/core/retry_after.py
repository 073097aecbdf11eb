"""Retry-After (RFC 9110, section 10.2.3): delay-seconds or an HTTP-date. Pure.

Read the same way from a provider's answer (providers/http.py) and a webhook receiver's
(net/webhooks.py).
"""
from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

# delay-seconds is 1*DIGIT; a fraction ("1.5"), which some gateways send, is read as meant.
_DELAY_SECONDS = re.compile(r"\d+(?:\.\d+)?")


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """How long to wait from `now`; None when absent or unreadable (a negative number, a word).
    An HTTP-date already past means no wait (0)."""
    if not value:
        return None
    value = value.strip()
    if _DELAY_SECONDS.fullmatch(value):
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())
