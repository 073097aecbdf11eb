"""The one clock every step reads (UTC, timezone-aware, as Firestore returns timestamps)."""
from __future__ import annotations

from datetime import datetime, timezone


def utcnow() -> datetime:
    return datetime.now(timezone.utc)
