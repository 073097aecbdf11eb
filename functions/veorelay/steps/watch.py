"""A job followed while it changes, for GET /jobs/{id}/events and `Prefer: wait=N`.

`JobWatch` holds a store watch (gcp/store.py `watch`: a Firestore on_snapshot listener on the job
document, never a polling loop): the listener's thread queues each version of the job, and the
request's thread takes them with a timeout. `wait_until_ended` answers as soon as the job is
terminal, or after its time with the job as it is then.

Threads: a watch holds one Firestore Listen stream and the client library's consumer thread
while it is open; the request thread that reads it is held too (README, "GET /jobs/{id}/events").
"""
from __future__ import annotations

import queue
import time
from collections.abc import Callable
from types import TracebackType

from veorelay.core.errors import TransientError
from veorelay.core.job import Job, JobStatus
from veorelay.gcp import logs
from veorelay.runtime import Runtime

MAX_WAIT_S = 60  # Prefer: wait=N is capped at this (README "Prefer: wait")


def ended(job: Job) -> bool:
    """Nothing more will happen to the job a client can see: terminal, or deleted (steps/delete.py)."""
    return JobStatus(job["status"]).terminal or job.get("deleted_at") is not None


class JobWatch:
    """The versions of one job as Firestore reports them, in order. Use as a context manager;
    leaving it stops the listener."""

    def __init__(self, rt: Runtime, job_id: str):
        self._versions: queue.Queue[Job] = queue.Queue()
        self._stop: Callable[[], None] | None = rt.store.watch(job_id, self._changed)

    def _changed(self, job: Job | None) -> None:
        if job is not None:  # None: no such document (a job removed by the TTL): nothing to tell
            self._versions.put(job)

    def next(self, timeout_s: float) -> Job | None:
        """The next version of the job, or None when none came within `timeout_s`."""
        try:
            return self._versions.get(timeout=max(timeout_s, 0.0))
        except queue.Empty:
            return None

    def close(self) -> None:
        stop, self._stop = self._stop, None
        if stop is not None:
            try:
                stop()
            except Exception:  # the listener is going away either way
                logs.warning("stopping a job watch failed", exc_info=True)

    def __enter__(self) -> JobWatch:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def newer(job: Job, than: Job) -> bool:
    """Whether `job` is a later version than `than` (every write sets updated_at)."""
    return job["updated_at"] > than["updated_at"]


def wait_until_ended(rt: Runtime, job: Job, wait_s: float, clock: Callable[[], float] = time.monotonic) -> tuple[Job, bool]:
    """(the job, waited): the job as soon as it is terminal, or after `wait_s` seconds as it is
    then. `waited` is False when no listener could be opened (the job is answered as it was read:
    the preference was not applied)."""
    if ended(job):
        return job, True
    deadline = clock() + wait_s
    try:
        watch = JobWatch(rt, job["id"])
    except TransientError as exc:
        logs.warning("could not watch the job; answering without waiting", error_message=exc.message)
        return job, False
    latest = job
    with watch:
        while not ended(latest):
            version = watch.next(deadline - clock())
            if version is None:
                break  # the time is up
            if newer(version, latest):
                latest = version
    return latest, True
