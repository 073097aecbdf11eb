"""Budgets and usage in Firestore: `budgets/<client>` (core/budget.py BudgetState) and
`usage/<client>:<day>` (what GET /usage reads).

Admission is one transaction that reads the client's budget, checks its caps and writes both the
reservation and the new job: two concurrent requests cannot both take the last dollar, and a job
is never admitted without its reservation (or reserved without its job). Settling is another,
on the ended job: it gives back or keeps the reservation, takes the job out of the flight, adds
it to the day's usage and marks the job settled, so it happens once whatever runs it twice."""
from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import firestore

from veorelay.core import budget, cost
from veorelay.core.clock import utcnow
from veorelay.core.job import TERMINAL, Job
from veorelay.gcp.deadlines import FIRESTORE_CALL_S
from veorelay.gcp.store import JOBS, backend_errors, retry_contention

BUDGETS = "budgets"
TRANSACTION_ATTEMPTS = 10  # the client library's own retries of a transaction that lost a race
USAGE = "usage"


def usage_id(client_id: str, day: str) -> str:
    return f"{client_id}:{day}"


def usage_increments(job: Job, day: str) -> dict[str, Any]:
    """What one ended job adds to its client's usage of `day` (pure): the numbers are deltas, applied
    as Firestore increments (and by the step tests' fake the same way)."""
    usd, was_billed = cost.billed_usd(job), int(bool(cost.billed(job)))
    counts = {"jobs": 1, "billed_jobs": was_billed, "usd": usd}
    return {
        **counts,
        "by_model": {job.get("model") or "unknown": dict(counts)},
        "by_provider": {job.get("provider") or "unknown": dict(counts)},
        "by_status": {str(job.get("status")): 1},
    }


def apply_increments(doc: dict[str, Any], deltas: dict[str, Any]) -> dict[str, Any]:
    """`doc` with `deltas` added, key by key (what Firestore's merge of increments does)."""
    merged = dict(doc)
    for key, delta in deltas.items():
        if isinstance(delta, dict):
            merged[key] = apply_increments(dict(merged.get(key) or {}), delta)
        else:
            merged[key] = round((merged.get(key) or 0) + delta, 6) if isinstance(delta, float) else (merged.get(key) or 0) + delta
    return merged


def _as_increments(deltas: dict[str, Any]) -> dict[str, Any]:
    return {k: _as_increments(v) if isinstance(v, dict) else firestore.Increment(v) for k, v in deltas.items()}


class BudgetLedger:
    def __init__(self, db: firestore.Client, jobs: str = JOBS, clock: Callable[[], datetime] = utcnow):
        self._db = db
        self._jobs = db.collection(jobs)
        self._budgets = db.collection(BUDGETS)
        self._usage = db.collection(USAGE)
        self._clock = clock
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def admit(self, job: Job, limits: budget.BudgetLimits) -> float:
        """Create `job` with its reservation (job["budget"] is set here), if the client's caps
        allow it; the highest fraction of a cap used after it. BudgetExceeded: nothing written.
        google.api_core.exceptions.Conflict: the job exists (an idempotent replay raced this)."""
        client_ref = self._budgets.document(job["client_id"])
        job_ref = self._jobs.document(job["id"])
        usd = float((job.get("cost") or {}).get("estimated_usd") or 0.0)

        @firestore.transactional
        def run(transaction: firestore.Transaction) -> float:
            snap = client_ref.get(transaction=transaction, timeout=FIRESTORE_CALL_S)
            now = self._clock()
            state, used = budget.admit(snap.to_dict() if snap.exists else None, now, usd, limits)
            day, month = budget.periods(now)
            transaction.set(client_ref, {**state, "client_id": job["client_id"], "updated_at": now})
            transaction.create(job_ref, {**job, "budget": budget.Reservation(usd=usd, day=day, month=month)})
            return used

        # One admission per client at a time in this instance: transactions on one document queue
        # behind each other's locks anyway, and losing them in a crowd costs more than waiting here.
        with self._client_lock(job["client_id"]):
            used: float = self._transact(run, "reserving the job's budget")
        return used

    def settle(self, job_id: str, client_id: str | None = None) -> bool:
        """Settle an ended job once: its reservation (if any) released or kept and the flight count
        lowered, in one transaction with the job's `settled_at`; then the day's usage counted with
        increments, outside it (no transaction on a document every job of the client touches). A
        crash between the two leaves the job uncounted in usage, never counted twice. False when
        there was nothing to do (not ended, or settled already). `client_id`: the job's client,
        when known, so this instance's settling and admissions of that client take turns."""
        job_ref = self._jobs.document(job_id)

        @firestore.transactional
        def run(transaction: firestore.Transaction) -> Job | None:
            snap = job_ref.get(transaction=transaction, timeout=FIRESTORE_CALL_S)
            job: Job | None = snap.to_dict() if snap.exists else None  # type: ignore[assignment]
            if job is None or job.get("status") not in TERMINAL or job.get("settled_at"):
                return None
            now = self._clock()
            reservation = job.get("budget")
            if reservation:
                client_ref = self._budgets.document(job["client_id"])
                state = client_ref.get(transaction=transaction, timeout=FIRESTORE_CALL_S)
                held = budget.Reservation(usd=float(reservation.get("usd") or 0.0), day=str(reservation.get("day")),
                                          month=str(reservation.get("month")))
                settled = budget.settle(state.to_dict() if state.exists else None, now, held, cost.billed_usd(job))
                transaction.set(client_ref, {**settled, "client_id": job["client_id"], "updated_at": now})
            transaction.update(job_ref, {"settled_at": now, "settle_due_at": None})
            return job

        if client_id is not None:
            with self._client_lock(client_id):
                ended: Job | None = self._transact(run, "settling the job's budget")
        else:
            ended = self._transact(run, "settling the job's budget")
        if ended is None:
            return False
        day = budget.periods(self._clock())[0]
        with backend_errors("counting the job's usage"):
            self._usage.document(usage_id(ended["client_id"], day)).set(
                {"client_id": ended["client_id"], "day": day, **_as_increments(usage_increments(ended, day))},
                merge=True, timeout=FIRESTORE_CALL_S)
        return True

    def _client_lock(self, client_id: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(client_id, threading.Lock())

    def _transact(self, run: Callable[[firestore.Transaction], Any], what: str) -> Any:
        """`run` in a transaction; one that keeps losing to concurrent ones (the client library
        gives up with a ValueError after its attempts) is tried again after a jittered pause,
        then answered 503 (retry_contention)."""
        def attempt() -> Any:
            try:
                return run(self._db.transaction(max_attempts=TRANSACTION_ATTEMPTS))
            except ValueError as exc:
                if isinstance(exc.__cause__, gexc.GoogleAPICallError):
                    raise gexc.Aborted(str(exc)) from exc
                raise

        with backend_errors(what):
            return retry_contention(attempt, what)

    def state(self, client_id: str) -> budget.BudgetState:
        with backend_errors("reading the budget"):
            snap = self._budgets.document(client_id).get(timeout=FIRESTORE_CALL_S)
        return budget.current(snap.to_dict() if snap.exists else None, self._clock())

    def usage(self, client_id: str, days: Sequence[str]) -> list[dict[str, Any]]:
        """The usage documents of these days that exist, in the days' order (one batched read)."""
        refs = [self._usage.document(usage_id(client_id, day)) for day in days]
        with backend_errors("reading usage"):
            found = {snap.id: snap.to_dict() or {} for snap in self._db.get_all(refs, timeout=FIRESTORE_CALL_S) if snap.exists}
        return [found[ref.id] for ref in refs if ref.id in found]
