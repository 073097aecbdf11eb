"""Firestore persistence of jobs. Every status change is one transaction that checks the
state it moves from, so a duplicate or late task changes nothing."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any, cast

from google.cloud import firestore

from veorelay.core.clock import utcnow
from veorelay.core.job import Job, JobStatus, TransitionRefused, allowed

JOBS = "jobs"
# A finished job is kept this long (Firestore TTL on expire_at), which also bounds how long an
# Idempotency-Key is remembered: at least the 24 h promised, in practice 30 days.
FINISHED_JOB_RETENTION = timedelta(days=30)


class JobStore:
    def __init__(self, db: firestore.Client, collection: str = JOBS):
        self._db = db
        self._jobs = db.collection(collection)

    def create(self, job: Job) -> None:
        """Write a new job; fails (google.api_core.exceptions.Conflict) if the id exists."""
        self._jobs.document(job["id"]).create(dict(job))

    def get(self, job_id: str) -> Job | None:
        snap = self._jobs.document(job_id).get()
        return _job(snap.to_dict()) if snap.exists else None

    def transition(
        self,
        job_id: str,
        to: JobStatus,
        updates: dict[str, Any] | None = None,
        from_states: Iterable[JobStatus] | None = None,
    ) -> Job:
        """Move a job to `to` if the state machine (and `from_states`, when given) allows it.

        Returns the job as written. Raises TransitionRefused when the job is elsewhere, which
        callers treat as "someone already did this": a no-op, not a failure.
        """
        expected = frozenset(from_states) if from_states is not None else None

        def apply(job: Job) -> dict[str, Any]:
            current = job["status"]
            if (expected is not None and current not in expected) or not allowed(current, to):
                raise TransitionRefused(job_id, current, to)
            now = utcnow()
            changes = dict(updates or {})
            changes.update({"status": str(to), "updated_at": now, f"timestamps.{to}": now})
            if to.terminal:
                changes["expire_at"] = now + FINISHED_JOB_RETENTION
            return changes

        return self._update_in_transaction(job_id, apply)

    def update(self, job_id: str, in_states: Iterable[JobStatus], updates: dict[str, Any]) -> Job:
        """Write fields on a job that is still in one of `in_states` (e.g. progress while running)."""
        expected = frozenset(in_states)

        def apply(job: Job) -> dict[str, Any]:
            if job["status"] not in expected:
                raise TransitionRefused(job_id, job["status"], "(update)")
            return {**updates, "updated_at": utcnow()}

        return self._update_in_transaction(job_id, apply)

    def claim(self, job_id: str, field: str, in_state: JobStatus, lease_s: float) -> bool:
        """Set `field` to a fresh lease if the job is in `in_state` and nobody holds a live one."""
        ref = self._jobs.document(job_id)

        @firestore.transactional
        def run(tx: firestore.Transaction) -> bool:
            snap = ref.get(transaction=tx)
            job = _job(snap.to_dict()) if snap.exists else None
            if job is None or job["status"] != in_state:
                return False
            now = utcnow()
            held: Any = job.get(field)
            if held and (now - held["at"]).total_seconds() < lease_s:
                return False
            tx.update(ref, {field: {"at": now}})
            return True

        return bool(run(self._db.transaction()))

    def append(self, job_id: str, field: str, item: dict[str, Any]) -> None:
        """Add a record to an array field whatever the status (webhook deliveries)."""
        self._jobs.document(job_id).update({field: firestore.ArrayUnion([item]), "updated_at": utcnow()})

    def older_than(self, status: JobStatus, field: str, before: datetime, limit: int) -> list[Job]:
        """Jobs in `status` whose timestamp `field` is before `before`, oldest first (the
        sweep's queries; each needs the composite index (status, field) in production)."""
        query = (self._jobs.where(filter=firestore.FieldFilter("status", "==", str(status)))
                 .where(filter=firestore.FieldFilter(field, "<", before))
                 .order_by(field).limit(limit))
        return [_job(snap.to_dict()) for snap in query.stream()]

    def restart_chain(self, job_id: str, status: JobStatus, untouched_since: datetime) -> Job:
        """sweep_gen + 1, if the job is still in `status` and nothing wrote it since
        `untouched_since`; TransitionRefused when it moved meanwhile (then it is not stuck)."""

        def apply(job: Job) -> dict[str, Any]:
            if job["status"] != status or job["updated_at"] >= untouched_since:
                raise TransitionRefused(job_id, job["status"], "(restart)")
            return {"sweep_gen": int(job.get("sweep_gen") or 0) + 1, "updated_at": utcnow()}

        return self._update_in_transaction(job_id, apply)

    def _update_in_transaction(self, job_id: str, apply: Callable[[Job], dict[str, Any]]) -> Job:
        ref = self._jobs.document(job_id)

        @firestore.transactional
        def run(tx: firestore.Transaction) -> Job:
            snap = ref.get(transaction=tx)
            if not snap.exists:
                raise KeyError(job_id)
            job = _job(snap.to_dict())
            changes = apply(job)
            tx.update(ref, changes)
            return _merge(job, changes)

        return cast(Job, run(self._db.transaction()))


def _job(document: dict[str, Any] | None) -> Job:
    """A stored document as the Job record (Firestore gives an untyped dict; this module
    is the only writer, so the shape is the one core/job.py describes)."""
    if document is None:  # to_dict() of a snapshot that exists is never None
        raise KeyError("job document has no data")
    return cast(Job, document)


def _merge(job: Job, changes: dict[str, Any]) -> Job:
    """The job as Firestore will hold it after `changes` (dotted keys are nested paths)."""
    merged: dict[str, Any] = dict(job)
    for key, value in changes.items():
        target = merged
        *parents, leaf = key.split(".")
        for part in parents:
            target[part] = dict(target.get(part) or {})
            target = target[part]
        target[leaf] = value
    return cast(Job, merged)
