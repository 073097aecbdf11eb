"""The `Prefer: wait=N` request header (RFC 7240) on POST /jobs and GET /jobs/{id}.

RFC 7240 section 2: a server ignores a preference it does not support or cannot read, so a
malformed `wait` (not a whole number of seconds, or 0) is ignored, never a 400; a wait longer
than MAX_WAIT_S is honoured as MAX_WAIT_S (section 4.3 lets the server shorten it). The answer
carries `Preference-Applied: wait=<seconds waited at most>` when it waited.
"""
from __future__ import annotations

import re
from collections.abc import Iterable

from veorelay.steps.watch import MAX_WAIT_S

_WAIT = re.compile(r'^\s*wait\s*=\s*(?:"(\d{1,9})"|(\d{1,9}))\s*$', re.IGNORECASE)


def wait_seconds(headers: Iterable[str]) -> int | None:
    """The seconds a request asks to wait (1..MAX_WAIT_S), or None: no wait asked, or none that
    can be read. Each header may list several preferences (`respond-async, wait=10`); the first
    `wait` counts (RFC 7240 2: a repeated preference after the first is ignored)."""
    for header in headers:
        for preference in header.split(","):
            name = preference.split("=", 1)[0].split(";", 1)[0].strip().lower()
            if name != "wait":
                continue
            match = _WAIT.match(preference.split(";", 1)[0])
            if not match:
                return None
            seconds = int(match.group(1) or match.group(2))
            return min(seconds, MAX_WAIT_S) if seconds >= 1 else None
    return None
