"""GET /jobs/{id}/events: the job's changes as Server-Sent Events, from a Firestore listener.

Each message: `id: <the job's updated_at in microseconds since the epoch>`, `event: job.<status>`
(or `job.progress` when only the progress changed), `data: <job_view JSON>`. The first message
is the job as it is now, unless the client's Last-Event-ID is that version or later; then every
change the listener reports (steps/watch.py); the stream ends after the terminal message. A
write that changes neither status nor progress (a webhook delivery recorded) is no message.

Silence is broken by a `: keep-alive` comment every KEEP_ALIVE_S. A stream is held at most
`settings.events_max_s` (below the api function's request timeout, infra/main.tf): then it ends
cleanly with a `retry:` hint, and EventSource reconnects with Last-Event-ID, missing nothing. A
reconnect after the terminal message is answered 204 No Content, which tells EventSource to stop.

Each open stream holds one request thread of the instance (and one Firestore listener) for its
whole length: README "GET /jobs/{id}/events" says how that bounds concurrent streams.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import flask

from veorelay.core.job import Job
from veorelay.core.views import job_view
from veorelay.gcp import logs
from veorelay.steps.watch import JobWatch, ended

KEEP_ALIVE_S = 15.0
RECONNECT_MS = 1000  # the retry: hint sent first and when a held stream ends before the job
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_EVENT_ID_DIGITS = 20


def event_id(job: Job) -> int:
    """The job's version as an SSE id: updated_at in microseconds (every write moves it)."""
    return (job["updated_at"] - _EPOCH) // timedelta(microseconds=1)


def last_event_id(header: str | None) -> int | None:
    """The client's Last-Event-ID; one that is not an id this API sends counts as none."""
    value = (header or "").strip()
    return int(value) if value.isascii() and value.isdigit() and len(value) <= _MAX_EVENT_ID_DIGITS else None


def event_type(job: Job, told: Job | None) -> str | None:
    """`job.<status>` when the status is new to the client, `job.progress` when only the
    progress changed, None when neither did."""
    if told is None or job["status"] != told["status"]:
        return f"job.{job['status']}"
    if job.get("progress") != told.get("progress"):
        return "job.progress"
    return None


def message(job: Job, kind: str) -> str:
    return f"id: {event_id(job)}\nevent: {kind}\ndata: {json.dumps(job_view(job), separators=(',', ':'))}\n\n"


def respond(watch_for: Callable[[], JobWatch], job: Job, last_seen: int | None, max_s: float) -> flask.Response:
    """The answer to GET /jobs/{id}/events for `job` (already checked to be the caller's)."""
    if ended(job) and last_seen is not None and last_seen >= event_id(job):
        return flask.Response(status=204)  # the client has the end: EventSource stops on a 204
    watch = watch_for()  # opened here: a store that cannot listen is a 503 before any byte is sent
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return flask.Response(stream(watch, job, last_seen, max_s), status=200, mimetype="text/event-stream", headers=headers)


def stream(watch: JobWatch, job: Job, last_seen: int | None, max_s: float,
           keep_alive_s: float = KEEP_ALIVE_S, clock: Callable[[], float] = time.monotonic) -> Iterator[str]:
    """The event stream's chunks; closing the generator (the client left) stops the listener."""
    try:
        yield f"retry: {RECONNECT_MS}\n\n"
        now = clock()
        deadline, quiet_until = now + max_s, now + keep_alive_s
        sent = last_seen if last_seen is not None else -1
        told: Job | None = None
        version: Job | None = job
        while True:
            if version is not None and version.get("deleted_at") is not None:
                return  # deleted meanwhile: from now on a 404, nothing more to tell
            if version is not None and event_id(version) > sent:
                kind = event_type(version, told)
                if kind is not None:
                    yield message(version, kind)
                    sent = event_id(version)
                    quiet_until = clock() + keep_alive_s
                told = version
                if ended(version):
                    return
            elif version is not None and told is None:
                told = version  # the client has this version already (Last-Event-ID)
                if ended(version):
                    return
            now = clock()
            if now >= deadline:
                yield f"retry: {RECONNECT_MS}\n: the stream is renewed; reconnect with Last-Event-ID\n\n"
                return
            if now >= quiet_until:
                yield ": keep-alive\n\n"
                quiet_until = now + keep_alive_s
            version = watch.next(min(deadline, quiet_until) - now)
    except Exception:
        logs.error("event stream failed", exc_info=True)
    finally:
        watch.close()
