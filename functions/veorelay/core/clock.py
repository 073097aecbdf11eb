"""The one clock every step reads (UTC, timezone-aware, as Firestore returns timestamps)."""
from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)
