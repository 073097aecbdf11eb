"""Firestore persistence of jobs. Every status change is one checked write: the job is read,
the state it moves from checked, and the change written only if the document is still the one
read (an update-time precondition), so a duplicate or late task changes nothing.

Every call has a deadline (gcp/deadlines.py). A Firestore that does not answer, or contention
that outlasts CONTENTION_ROUNDS attempts, is a TransientError(unavailable): a request answers
503 with Retry-After, a task is retried by its queue.

Generation claims (`generation_claims/<provider>:<history id>`): a generation found again by
search (genaipro's histories) belongs to the one job that claimed it, create-only.
"""
from __future__ import annotations

import hashlib
import random
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar, cast

from google.api_core import exceptions as gexc
from google.cloud import firestore

from veorelay.core.clock import utcnow
from veorelay.core.errors import ApiError, ErrorCode, TransientError
from veorelay.core.events import pending_events, watched_event
from veorelay.core.job import Job, JobStatus, TransitionRefused, allowed
from veorelay.gcp.deadlines import FIRESTORE_CALL_S, FIRESTORE_QUERY_S, FIRESTORE_RETRY

JOBS = "jobs"
CLAIMS = "generation_claims"
# A finished job is kept this long (Firestore TTL on expire_at), which also bounds how long an
# Idempotency-Key is remembered: at least the 24 h promised, in practice 30 days. Claims as long.
FINISHED_JOB_RETENTION = timedelta(days=30)
# A job that ends failed or cancelled while downloading may still get a video from a finalize
# attempt that was running then (it removes it itself, unless it dies first). Once no attempt
# can be running (finalize's timeout, 1800 s = steps/chain.py FINALIZE_DEADLINE_S, and a margin)
# the sweep has the job's videos removed once more: `discard_due_at`.
DISCARD_AFTER = timedelta(seconds=1800 + 300)
# An ended job is settled (its budget and usage: gcp/budgets.py) at once; one that is not by then
# (the settling write failed) is settled by the sweep.
SETTLE_AFTER = timedelta(minutes=5)
# A job moved to running or to its end, whose webhook wants that move's event (job.running, the
# terminal one), has it queued at once by the step that moved it; one whose first attempt is not
# recorded by then (Cloud Tasks was down at the move) has it queued by the sweep: `notify_due_at`
# and `notify_events`, written with the move; each event's first attempt's record takes it off.
NOTIFY_AFTER = timedelta(minutes=10)
# A checked write that finds the job changed since it was read reads it again, this many times.
CONTENTION_ROUNDS = 6
CONTENTION_RETRY_AFTER_S = 1.0
MAX_LIST_LIMIT = 100  # jobs in one page of list_jobs (GET /jobs, /v1/videos)
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,200}$")
_T = TypeVar("_T")


@contextmanager
def backend_errors(what: str) -> Iterator[None]:
    """Firestore's failures as the steps see them: TransientError(unavailable), whatever the
    RPC error (a deadline, UNAVAILABLE, retries used up). A create that found its document
    (Conflict), a missing document (NotFound) and a bad argument pass through: they are answers."""
    try:
        yield
    except (gexc.Conflict, gexc.NotFound, gexc.InvalidArgument):
        raise
    except gexc.GoogleAPIError as exc:
        raise TransientError(ErrorCode.UNAVAILABLE, f"{what}: the job store did not answer ({type(exc).__name__}); try again") from exc


def retry_contention(attempt: Callable[[], _T], what: str) -> _T:
    """`attempt` again while it loses to a concurrent write (FailedPrecondition: the document
    changed since it was read; Aborted: Firestore's own contention), at most CONTENTION_ROUNDS
    times with a short jittered pause; then TransientError(unavailable) with a Retry-After."""
    for round_ in range(CONTENTION_ROUNDS):
        try:
            return attempt()
        except (gexc.FailedPrecondition, gexc.Aborted):
            time.sleep(min(0.02 * 2 ** round_, 0.4) * random.uniform(0.5, 1.0))  # noqa: S311 (jitter, not crypto)
    raise TransientError(ErrorCode.UNAVAILABLE, f"{what}: the job is being changed by other requests; try again",
                         retry_after_s=CONTENTION_RETRY_AFTER_S)


def claim_id(provider: str, history_id: str) -> str:
    """The claim document of one history entry: `<provider>:<id>`, or a hash of an id that
    is no safe document id."""
    safe = history_id if _SAFE_ID.match(history_id) else "h" + hashlib.sha256(history_id.encode()).hexdigest()[:40]
    return f"{provider}:{safe}"



def moved(job: Job, to: JobStatus, updates: Mapping[str, Any] | None, now: datetime) -> dict[str, Any]:
    """The fields a move of `job` to `to` writes (the state machine already checked), with
    the sweep's marks the new state starts."""
    changes = dict(updates or {})
    changes.update({"status": str(to), "updated_at": now, f"timestamps.{to}": now})
    if to.terminal:
        changes["expire_at"] = now + FINISHED_JOB_RETENTION
        changes["settle_due_at"] = now + SETTLE_AFTER  # the sweep settles its budget then, if nothing did
    event = watched_event(job, to)
    if event is not None:  # the sweep queues its event then, if nothing did; in the same write as the move
        watched = pending_events(job)  # job.running's, if none of its attempts is recorded yet: kept, and its time
        changes["notify_events"] = [*watched, event]
        changes["notify_due_at"] = job["notify_due_at"] if watched else now + NOTIFY_AFTER
    if to in (JobStatus.FAILED, JobStatus.CANCELLED) and job.get("pending_outputs"):
        changes["discard_due_at"] = now + DISCARD_AFTER  # it ended while downloading
    return changes


def watch_ended(job: Job, attempt_of: str | None) -> dict[str, Any]:
    """The fields an attempt of `attempt_of` clears: that event from the sweep's watch (read in
    the attempt's own transaction, so a move meanwhile keeps the event it added), and the watch
    with the last event."""
    watched = pending_events(job)
    if attempt_of is None or attempt_of not in watched:
        return {}
    rest = [e for e in watched if e != attempt_of]
    return {"notify_events": rest} if rest else {"notify_due_at": None, "notify_events": None}


class JobStore:
    def __init__(self, db: firestore.Client, collection: str = JOBS):
        self._db = db
        self._jobs = db.collection(collection)
        self._claims = db.collection(CLAIMS)

    def create(self, job: Job) -> None:
        """Write a new job; fails (google.api_core.exceptions.Conflict) if the id exists."""
        with backend_errors("recording the job"):
            self._jobs.document(job["id"]).create(dict(job), timeout=FIRESTORE_CALL_S, retry=FIRESTORE_RETRY)

    def get(self, job_id: str) -> Job | None:
        with backend_errors("reading the job"):
            snap = self._jobs.document(job_id).get(timeout=FIRESTORE_CALL_S, retry=FIRESTORE_RETRY)
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
            return moved(job, to, updates, utcnow())

        return self._update_checked(job_id, apply, f"moving the job to {to}")

    def update(self, job_id: str, in_states: Iterable[JobStatus], updates: dict[str, Any],
               unchanged: Mapping[str, Any] | None = None) -> Job:
        """Write fields on a job that is still in one of `in_states` (e.g. progress while running)
        and whose `unchanged` fields still hold the values given (None: the field is absent),
        e.g. the chain a stream step took over (steps/chain.py chain_fields)."""
        expected = frozenset(in_states)

        def apply(job: Job) -> dict[str, Any]:
            if job["status"] not in expected:
                raise TransitionRefused(job_id, job["status"], "(update)")
            moved = [name for name, value in (unchanged or {}).items() if dict(job).get(name) != value]
            if moved:
                raise TransitionRefused(job_id, job["status"], f"(update: {', '.join(moved)} changed)")
            return {**updates, "updated_at": utcnow()}

        return self._update_checked(job_id, apply, "updating the job")

    def claim(self, job_id: str, field: str, in_state: JobStatus, lease_s: float) -> bool:
        """Set `field` to a fresh lease if the job is in `in_state` and nobody holds a live one."""

        def apply(job: Job) -> dict[str, Any]:
            now = utcnow()
            held: Any = job.get(field)
            if job["status"] != in_state or (held and (now - held["at"]).total_seconds() < lease_s):
                raise TransitionRefused(job_id, job["status"], f"(claim: {field})")
            return {field: {"at": now}}

        try:
            self._update_checked(job_id, apply, f"taking the job's {field}")
        except (KeyError, TransitionRefused):  # no such job, or not claimable now
            return False
        return True

    def append(self, job_id: str, field: str, item: dict[str, Any], *, limit: int,
               attempt_of: str | None = None) -> bool:
        """Add a record to an array field whatever the status (webhook deliveries), unless it
        already holds `limit` records: False then, and nothing is written. Every array a job
        grows has its cap here, so a job document stays far below Firestore's 1 MiB.
        `attempt_of`: the record is an attempt of this event, which ends the sweep's watch for it."""

        def apply(job: Job) -> dict[str, Any]:
            items: Any = dict(job).get(field) or []
            if len(items) >= limit:
                raise TransitionRefused(job_id, job["status"], f"(append: {field} holds {limit} records)")
            return {**watch_ended(job, attempt_of), field: firestore.ArrayUnion([item]), "updated_at": utcnow()}

        try:
            self._update_checked(job_id, apply, f"adding to the job's {field}")
        except TransitionRefused:
            return False
        return True

    def older_than(self, status: JobStatus, field: str, before: datetime, limit: int) -> list[Job]:
        """Jobs in `status` whose timestamp `field` is before `before`, oldest first (the
        sweep's queries; each needs the composite index (status, field) in production)."""
        query = (self._jobs.where(filter=firestore.FieldFilter("status", "==", str(status)))
                 .where(filter=firestore.FieldFilter(field, "<", before))
                 .order_by(field).limit(limit))
        with backend_errors("listing jobs"):
            return [_job(snap.to_dict()) for snap in query.stream(timeout=FIRESTORE_QUERY_S, retry=FIRESTORE_RETRY)]

    def discard_due(self, before: datetime, limit: int) -> list[Job]:
        """Jobs that ended while downloading whose last removal of videos is due before `before`."""
        return self._due("discard_due_at", before, limit, "listing jobs with videos to remove")

    def settle_due(self, before: datetime, limit: int) -> list[Job]:
        """Ended jobs not yet counted in their client's budget and usage by `before` (cleared when settled)."""
        return self._due("settle_due_at", before, limit, "listing jobs to settle")

    def notify_due(self, before: datetime, limit: int) -> list[Job]:
        """Ended jobs whose terminal event has no recorded attempt by `before` (cleared by the first)."""
        return self._due("notify_due_at", before, limit, "listing jobs whose webhook is due")

    def _due(self, field: str, before: datetime, limit: int, what: str) -> list[Job]:
        """Jobs whose sweep mark `field` falls before `before`, earliest first: a single-field
        index, which Firestore keeps without configuration; a job without the mark is not in it."""
        query = self._jobs.where(filter=firestore.FieldFilter(field, "<", before)).order_by(field).limit(limit)
        with backend_errors(what):
            return [_job(snap.to_dict()) for snap in query.stream(timeout=FIRESTORE_QUERY_S, retry=FIRESTORE_RETRY)]

    def job_for_operation(self, operation: str) -> Job | None:
        """The one job whose provider handle names `operation` (a completion event that names no
        job: the Gemini API's static webhooks, Vertex's Pub/Sub messages); None if none, or not
        exactly one. `handle.operation` has a single-field index: Firestore keeps it unasked."""
        query = self._jobs.where(filter=firestore.FieldFilter("handle.operation", "==", operation)).limit(2)
        with backend_errors("finding the job of an operation"):
            found = [_job(snap.to_dict()) for snap in query.stream(timeout=FIRESTORE_QUERY_S, retry=FIRESTORE_RETRY)]
        return found[0] if len(found) == 1 else None

    def jobs_posting(self, generation_key: str, since: datetime, limit: int) -> list[Job]:
        """Jobs that POSTed a request of this `generation_key` (steps/recover.py) at or after
        `since`: the jobs whose generations look alike in a provider's histories."""
        query = (self._jobs.where(filter=firestore.FieldFilter("generation_key", "==", generation_key))
                 .where(filter=firestore.FieldFilter("stream_submitted_at", ">=", since))
                 .order_by("stream_submitted_at").limit(limit))
        with backend_errors("listing jobs of the same request"):
            return [_job(snap.to_dict()) for snap in query.stream(timeout=FIRESTORE_QUERY_S, retry=FIRESTORE_RETRY)]

    def list_jobs(self, client_id: str, *, status: str | None = None, provider: str | None = None,  # noqa: PLR0913 (the agreed interface)
                  created_after: datetime | None = None, created_before: datetime | None = None,
                  after: str | None = None, limit: int = 20, order: Literal["desc", "asc"] = "desc",
                  after_created_at: datetime | None = None) -> tuple[list[Job], bool]:
        """One page of a client's jobs: (jobs, has_more), ordered by (created_at, id), newest
        first unless `order="asc"`. Only `client_id`'s jobs, never one marked deleted
        (`deleted_at`). Filters: `status`, `provider` (equal), `created_after` < created_at <
        `created_before` (strict).

        `after` is a job id: the page starts just past that job in this order, so pages stay
        stable while jobs are added (a new job sorts before the first page, never inside a later
        one). Its position is read from the job (one read), unless `after_created_at` gives it
        (a cursor that carries it survives the job's own removal by the TTL). An `after` that is
        no job of this client: ApiError 400 (field "after"). `limit`: 1..MAX_LIST_LIMIT.

        Query: client_id == C [and status == S] [and provider == P] [and created_at range]
        order by created_at, __name__ (both `order`): the composite indexes jobs-client-*
        in infra/firestore.tf. Deleted jobs are skipped as read (a soft delete keeps the
        document); a page reads on until it is full or the jobs run out."""
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise ValueError(f"limit must be 1..{MAX_LIST_LIMIT}")
        direction = firestore.Query.DESCENDING if order == "desc" else firestore.Query.ASCENDING
        query = self._jobs.where(filter=firestore.FieldFilter("client_id", "==", client_id))
        for name, op, value in (("status", "==", status), ("provider", "==", provider),
                                ("created_at", ">", created_after), ("created_at", "<", created_before)):
            if value is not None:
                query = query.where(filter=firestore.FieldFilter(name, op, value))
        query = query.order_by("created_at", direction=direction).order_by("__name__", direction=direction)
        start = self._listing_start(client_id, after, after_created_at)
        page: list[Job] = []
        with backend_errors("listing jobs"):
            while True:
                batch_query = query.start_after(start) if start is not None else query
                batch = list(batch_query.limit(limit + 1).stream(timeout=FIRESTORE_QUERY_S, retry=FIRESTORE_RETRY))
                for snap in batch:
                    start = snap
                    document = snap.to_dict() or {}
                    if document.get("deleted_at"):
                        continue
                    if len(page) == limit:
                        return page, True
                    page.append(_job(document))
                if len(batch) <= limit:
                    return page, False

    def _listing_start(self, client_id: str, after: str | None, after_created_at: datetime | None) -> Any:
        """Where a listing page starts: past job `after` (its snapshot, or its position)."""
        if after is None:
            return None
        if after_created_at is not None:
            return {"created_at": after_created_at, "__name__": self._jobs.document(after)}
        with backend_errors("reading the listing's cursor"):
            snap = self._jobs.document(after).get(timeout=FIRESTORE_CALL_S, retry=FIRESTORE_RETRY)
        if not snap.exists or (snap.to_dict() or {}).get("client_id") != client_id:
            raise ApiError(400, ErrorCode.INVALID_REQUEST, "after: no such job", "after")
        return snap

    def watch(self, job_id: str, on_change: Callable[[Job | None], None]) -> Callable[[], None]:
        """Follow a job document with a Firestore listener (on_snapshot): `on_change` gets the
        job as it is at once, then after each write (None while there is no such document), on
        the listener's own thread. Returns the call that stops it. Each watch holds one Listen
        stream and one consumer thread until stopped."""

        def on_snapshot(docs: Sequence[Any], _changes: Any, _read_time: Any) -> None:
            snaps = [snap for snap in docs if snap.exists]
            on_change(_job(snaps[-1].to_dict()) if snaps else None)

        with backend_errors("watching the job"):
            handle = self._jobs.document(job_id).on_snapshot(on_snapshot)
        return cast(Callable[[], None], handle.unsubscribe)

    def generation_owners(self, provider: str, history_ids: Iterable[str]) -> dict[str, str]:
        """{history id: job id} of those of the provider's history entries a job has claimed."""
        ids = sorted(set(history_ids))
        if not ids:
            return {}
        refs = {claim_id(provider, hid): hid for hid in ids}
        with backend_errors("reading generation claims"):
            snaps = list(self._db.get_all([self._claims.document(doc) for doc in refs], timeout=FIRESTORE_CALL_S,
                                          retry=FIRESTORE_RETRY))
        return {refs[snap.id]: str((snap.to_dict() or {}).get("job_id")) for snap in snaps if snap.exists}

    def claim_generation(self, provider: str, history_ids: Sequence[str], job_id: str) -> bool:
        """Claim a generation (its history entries) for `job_id`: all entries or none, create-only,
        in one batch. True when every entry is now the job's (also when it already was), False
        when another job holds one of them."""
        ids = sorted(set(history_ids))
        if not ids:
            return False

        def attempt() -> bool:
            owners = self.generation_owners(provider, ids)
            if set(owners.values()) - {job_id}:
                return False
            missing = [hid for hid in ids if hid not in owners]
            if not missing:
                return True
            now = utcnow()
            batch = self._db.batch()
            for hid in missing:
                batch.create(self._claims.document(claim_id(provider, hid)), {
                    "provider": provider, "history_id": hid, "job_id": job_id, "at": now,
                    "expire_at": now + FINISHED_JOB_RETENTION})
            try:
                batch.commit(timeout=FIRESTORE_CALL_S, retry=None)
            except gexc.Conflict as exc:  # another job claimed one of them meanwhile: look again
                raise gexc.Aborted("generation claimed meanwhile") from exc
            return True

        with backend_errors("claiming a generation"):
            return retry_contention(attempt, "claiming a generation")

    def restart_chain(self, job_id: str, status: JobStatus, untouched_since: datetime) -> Job:
        """sweep_gen + 1, if the job is still in `status` and nothing wrote it since
        `untouched_since`; TransitionRefused when it moved meanwhile (then it is not stuck)."""

        def apply(job: Job) -> dict[str, Any]:
            if job["status"] != status or job["updated_at"] >= untouched_since:
                raise TransitionRefused(job_id, job["status"], "(restart)")
            return {"sweep_gen": int(job.get("sweep_gen") or 0) + 1, "updated_at": utcnow()}

        return self._update_checked(job_id, apply, "restarting the job's chain")

    def _update_checked(self, job_id: str, apply: Callable[[Job], dict[str, Any]], what: str) -> Job:
        """Read the job, compute the change (`apply` may refuse: TransitionRefused), and write it
        only if the document is still the one read: what a transaction guarantees for one
        document, with a deadline on each of the two calls. A concurrent write in between
        makes it read again (retry_contention)."""
        ref = self._jobs.document(job_id)

        def attempt() -> Job:
            snap = ref.get(timeout=FIRESTORE_CALL_S, retry=FIRESTORE_RETRY)
            if not snap.exists:
                raise KeyError(job_id)
            job = _job(snap.to_dict())
            changes = apply(job)
            # Not retried by the client: a write that went through but whose answer was lost
            # must not be applied twice; the step's own retry reads what happened.
            ref.update(changes, option=self._db.write_option(last_update_time=snap.update_time),
                       timeout=FIRESTORE_CALL_S, retry=None)
            return _merge(job, changes)

        with backend_errors(what):
            return retry_contention(attempt, what)


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
