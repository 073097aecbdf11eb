"""In-memory stand-ins for the clients a Runtime holds, with the real ones' semantics.

FakeStore is gcp/store.py's JobStore (state checks, TransitionRefused, Conflict, KeyError, the
Firestore types a read gives back); FakeScheduler is gcp/tasks.py's TaskScheduler (named tasks,
a name used once is refused); FakeBucket/FakeBlob (fake_storage.py) are the part of
google.cloud.storage the code uses, down to how an upload reads its stream and when the object
comes into being; FakeHttp is
the `requests.Session` that webhooks are POSTed with. `make_runtime()` puts them, and the fake
providers (fake_providers.py), into a real veorelay.runtime.Runtime.

Each fake has `faults` (faults.py): errors to raise on its next calls of an operation, to play
a crash or an outage at one precise point.
"""
from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from google.api_core import exceptions as gexc
from google.cloud.firestore_v1 import _helpers as firestore_values

from veorelay.config import Settings
from veorelay.core import poll_plan
from veorelay.core.clock import utcnow
from veorelay.core.errors import ApiError, ErrorCode
from veorelay.core.job import JobStatus, TransitionRefused, allowed
from veorelay.gcp.poll_stats import DurationStats
from veorelay.gcp.store import (
    MAX_LIST_LIMIT,
    backend_errors,
    moved,
    retry_contention,
    watch_ended,
)
from veorelay.gcp.tasks import _NAME_OK as TASK_NAME_OK
from veorelay.gcp.tasks import TaskRequest
from veorelay.providers.base import Provider
from veorelay.runtime import Runtime

from .fake_providers import FakeProvider
from .fake_storage import FakeBlob, FakeBucket, FakeStorageClient
from .faults import Faults

# ---------------------------------------------------------------------------- Firestore


def firestore_copy(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The document as Firestore would give it back: refuses what Firestore cannot store (an
    object, a non-string key) and returns its types (tuples as lists, DatetimeWithNanoseconds)."""
    return cast(dict[str, Any], firestore_values.decode_dict(firestore_values.encode_dict(dict(doc)), None))


def apply_changes(doc: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """Firestore's update(): a dotted key is a path into nested maps; a value replaces the field."""
    merged = copy.deepcopy(doc)
    for key, value in changes.items():
        target = merged
        *parents, leaf = key.split(".")
        for part in parents:
            if not isinstance(target.get(part), dict):
                target[part] = {}
            target = target[part]
        target[leaf] = copy.deepcopy(value)
    return merged


class FakeStore:
    """gcp/store.py JobStore, in memory. Reads and writes are copies: a test (or a step) that
    changes a job it holds changes nothing stored, as with Firestore. Each operation is atomic
    (a lock), as a checked write is on one Firestore document, so threads can race on it.

    A fault injected as the Google error Firestore would raise is seen as the real store shows
    it: gexc.Aborted / FailedPrecondition are contention (retried, then TransientError with a
    Retry-After), any other GoogleAPIError is TransientError(unavailable) (store.backend_errors)."""

    def __init__(self, clock: Callable[[], datetime] = utcnow):
        self._jobs: dict[str, dict[str, Any]] = {}
        self._claims: dict[str, str] = {}  # "<provider>:<history id>" -> job id
        self._clock = clock
        self._lock = threading.RLock()
        self.faults = Faults()
        self.writes: list[tuple[str, str]] = []  # (operation, job id), every write in order
        self._watchers: dict[str, list[Callable[[dict[str, Any] | None], None]]] = {}  # job id -> watches

    def _check(self, op: str, name: str | None = None) -> None:
        """An injected fault, as the real store maps it."""
        with backend_errors(op):
            self.faults.check(op, name)

    # --- JobStore's interface

    def create(self, job: dict[str, Any]) -> None:
        self._check("create", job["id"])
        with self._lock:
            if job["id"] in self._jobs:
                raise gexc.Conflict(f"Document already exists: jobs/{job['id']}")
            self._write("create", job["id"], firestore_copy(job))

    def get(self, job_id: str) -> dict[str, Any] | None:
        self._check("get", job_id)
        with self._lock:
            job = self._jobs.get(job_id)
            return copy.deepcopy(job) if job is not None else None

    def transition(self, job_id: str, to: JobStatus, updates: dict[str, Any] | None = None,
                   from_states: Iterable[JobStatus] | None = None) -> dict[str, Any]:
        expected = frozenset(from_states) if from_states is not None else None

        def apply(job: dict[str, Any]) -> dict[str, Any]:
            current = job["status"]
            if (expected is not None and current not in expected) or not allowed(current, to):
                raise TransitionRefused(job_id, current, to)
            return moved(job, to, updates, self._clock())

        return self._update("transition", job_id, apply)

    def update(self, job_id: str, in_states: Iterable[JobStatus], updates: dict[str, Any],
               unchanged: Mapping[str, Any] | None = None) -> dict[str, Any]:
        expected = frozenset(in_states)

        def apply(job: dict[str, Any]) -> dict[str, Any]:
            if job["status"] not in expected:
                raise TransitionRefused(job_id, job["status"], "(update)")
            moved = [name for name, value in (unchanged or {}).items() if job.get(name) != value]
            if moved:
                raise TransitionRefused(job_id, job["status"], f"(update: {', '.join(moved)} changed)")
            return {**updates, "updated_at": self._clock()}

        return self._update("update", job_id, apply)

    def claim(self, job_id: str, field: str, in_state: JobStatus, lease_s: float) -> bool:
        def attempt() -> bool:
            self.faults.check("claim", job_id)
            with self._lock:
                job = self._jobs.get(job_id)
                if job is None or job["status"] != in_state:
                    return False
                now = self._clock()
                held = job.get(field)
                if held and (now - held["at"]).total_seconds() < lease_s:
                    return False
                self._write("claim", job_id, firestore_copy(apply_changes(job, {field: {"at": now}})))
                return True

        with backend_errors("claim"):
            return retry_contention(attempt, "claim")

    def append(self, job_id: str, field: str, item: dict[str, Any], *, limit: int,
               attempt_of: str | None = None) -> bool:
        self._check("append", job_id)
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                raise KeyError(job_id)  # as the real store's checked write
            stored_item = firestore_copy({"item": item})["item"]
            items = list(job.get(field) or [])
            if len(items) >= limit:
                return False  # the array is full: nothing is written
            if stored_item not in items:  # ArrayUnion adds only what is not there yet
                items.append(stored_item)
            changes = {**watch_ended(job, attempt_of), field: items, "updated_at": self._clock()}
            self._write("append", job_id, firestore_copy(apply_changes(job, changes)))
            return True

    def older_than(self, status: JobStatus, field: str, before: datetime, limit: int) -> list[dict[str, Any]]:
        self._check("older_than")
        with self._lock:
            found = [j for j in self._jobs.values()
                     if j["status"] == str(status) and isinstance(j.get(field), datetime) and j[field] < before]
            found.sort(key=lambda j: j[field])
            return [copy.deepcopy(j) for j in found[:limit]]

    def discard_due(self, before: datetime, limit: int) -> list[dict[str, Any]]:
        return self._due("discard_due", "discard_due_at", before, limit)

    def settle_due(self, before: datetime, limit: int) -> list[dict[str, Any]]:
        return self._due("settle_due", "settle_due_at", before, limit)

    def notify_due(self, before: datetime, limit: int) -> list[dict[str, Any]]:
        return self._due("notify_due", "notify_due_at", before, limit)

    def _due(self, method: str, field: str, before: datetime, limit: int) -> list[dict[str, Any]]:
        self._check(method)
        with self._lock:
            due = [j for j in self._jobs.values() if isinstance(j.get(field), datetime) and j[field] < before]
        return [copy.deepcopy(j) for j in sorted(due, key=lambda j: j[field])[:limit]]

    def job_for_operation(self, operation: str) -> dict[str, Any] | None:
        self._check("job_for_operation")
        with self._lock:
            found = [j for j in self._jobs.values() if (j.get("handle") or {}).get("operation") == operation]
            return copy.deepcopy(found[0]) if len(found) == 1 else None

    def jobs_posting(self, generation_key: str, since: datetime, limit: int) -> list[dict[str, Any]]:
        self._check("jobs_posting")
        with self._lock:
            found = [j for j in self._jobs.values() if j.get("generation_key") == generation_key
                     and isinstance(j.get("stream_submitted_at"), datetime) and j["stream_submitted_at"] >= since]
            found.sort(key=lambda j: j["stream_submitted_at"])
            return [copy.deepcopy(j) for j in found[:limit]]

    def list_jobs(self, client_id: str, *, status: str | None = None, provider: str | None = None,
                  created_after: datetime | None = None, created_before: datetime | None = None,
                  after: str | None = None, limit: int = 20, order: str = "desc",
                  after_created_at: datetime | None = None) -> tuple[list[dict[str, Any]], bool]:
        """JobStore.list_jobs: the client's jobs by (created_at, id) in `order`, filtered, past
        `after`, deleted ones left out; (page, has_more)."""
        self._check("list_jobs")
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise ValueError(f"limit must be 1..{MAX_LIST_LIMIT}")
        with self._lock:
            desc = order == "desc"
            start: tuple[datetime, str] | None = None
            if after is not None:
                if after_created_at is not None:
                    start = (after_created_at, after)
                else:
                    cursor_job = self._jobs.get(after)
                    if cursor_job is None or cursor_job.get("client_id") != client_id:
                        raise ApiError(400, ErrorCode.INVALID_REQUEST, "after: no such job", "after")
                    start = (cursor_job["created_at"], after)

            def keep(job: dict[str, Any]) -> bool:
                key = (job["created_at"], job["id"])
                return (job.get("client_id") == client_id and not job.get("deleted_at")
                        and (status is None or job.get("status") == status)
                        and (provider is None or job.get("provider") == provider)
                        and (created_after is None or job["created_at"] > created_after)
                        and (created_before is None or job["created_at"] < created_before)
                        and (start is None or (key < start if desc else key > start)))

            found = sorted((j for j in self._jobs.values() if keep(j)), key=lambda j: (j["created_at"], j["id"]), reverse=desc)
            return [copy.deepcopy(j) for j in found[:limit]], len(found) > limit

    def watch(self, job_id: str, on_change: Callable[[dict[str, Any] | None], None]) -> Callable[[], None]:
        """JobStore.watch: `on_change` gets the job now, then after each write (on the writer's
        thread here; on the listener's thread in Firestore). Returns the call that stops it."""
        self._check("watch", job_id)
        with self._lock:
            self._watchers.setdefault(job_id, []).append(on_change)
            current = self._jobs.get(job_id)
        on_change(copy.deepcopy(current) if current is not None else None)

        def stop() -> None:
            with self._lock:
                if on_change in self._watchers.get(job_id, []):
                    self._watchers[job_id].remove(on_change)

        return stop

    def watching(self, job_id: str) -> int:
        """For tests: how many watches of the job are still open."""
        with self._lock:
            return len(self._watchers.get(job_id, []))

    def generation_owners(self, provider: str, history_ids: Iterable[str]) -> dict[str, str]:
        self._check("generation_owners")
        with self._lock:
            return {hid: self._claims[f"{provider}:{hid}"] for hid in set(history_ids) if f"{provider}:{hid}" in self._claims}

    def claim_generation(self, provider: str, history_ids: Sequence[str], job_id: str) -> bool:
        self._check("claim_generation", job_id)
        ids = sorted(set(history_ids))
        if not ids:
            return False
        with self._lock:
            owners = {self._claims.get(f"{provider}:{hid}") for hid in ids} - {None}
            if owners - {job_id}:
                return False
            for hid in ids:
                self._claims[f"{provider}:{hid}"] = job_id
            self.writes.append(("claim_generation", job_id))
            return True

    def restart_chain(self, job_id: str, status: JobStatus, untouched_since: datetime) -> dict[str, Any]:
        def apply(job: dict[str, Any]) -> dict[str, Any]:
            if job["status"] != status or job["updated_at"] >= untouched_since:
                raise TransitionRefused(job_id, job["status"], "(restart)")
            return {"sweep_gen": int(job.get("sweep_gen") or 0) + 1, "updated_at": self._clock()}

        return self._update("restart_chain", job_id, apply)

    # --- for tests: arrange a job, read one

    def job(self, job_id: str) -> dict[str, Any]:
        """The stored job (a copy); KeyError when there is none."""
        return copy.deepcopy(self._jobs[job_id])

    def edit(self, job_id: str, **changes: Any) -> None:
        """Change a stored job behind the steps' back (a past deadline, an old claim...);
        dotted fields as `**{"timestamps.running": t}`. Not counted as a write."""
        self._jobs[job_id] = firestore_copy(apply_changes(self._jobs[job_id], changes))

    def ids(self) -> list[str]:
        return list(self._jobs)

    def claims(self) -> dict[str, str]:
        """{"<provider>:<history id>": job id} of every generation claimed."""
        with self._lock:
            return dict(self._claims)

    def _update(self, op: str, job_id: str, apply: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
        def attempt() -> dict[str, Any]:
            self.faults.check(op, job_id)  # Aborted / FailedPrecondition: lost to a concurrent write
            with self._lock:
                job = self._jobs.get(job_id)
                if job is None:
                    raise KeyError(job_id)
                merged = firestore_copy(apply_changes(job, apply(copy.deepcopy(job))))
                self._write(op, job_id, merged)
                return copy.deepcopy(merged)

        with backend_errors(op):
            return retry_contention(attempt, op)

    def _write(self, op: str, job_id: str, doc: dict[str, Any]) -> None:
        self._jobs[job_id] = doc
        self.writes.append((op, job_id))
        for on_change in list(self._watchers.get(job_id, [])):
            on_change(copy.deepcopy(doc))


# ---------------------------------------------------------------------------- Cloud Tasks

MAX_TASK_DELAY_S = 30 * 24 * 3600  # Cloud Tasks refuses a schedule_time further ahead
DISPATCH_DEADLINE_RANGE_S = (15, 1800)  # what Cloud Tasks accepts for HTTP targets


@dataclass
class QueuedTask:
    request: TaskRequest
    seq: int  # creation order
    due_s: float  # on the scheduler's clock
    attempt: int = 1  # deliveries so far + 1 (X-CloudTasks-TaskRetryCount + 1)

    @property
    def name(self) -> str:
        return self.request.name

    @property
    def target(self) -> str:
        return self.request.target

    @property
    def queue(self) -> str:
        return self.request.queue

    @property
    def payload(self) -> dict[str, Any]:
        return self.request.payload

    @property
    def delay_s(self) -> float:
        return self.request.delay_s

    @property
    def job_id(self) -> str:
        return str(self.request.payload["job_id"])


class FakeScheduler:
    """gcp/tasks.py TaskScheduler: `enqueue` creates a named task, False when the name was
    used (Cloud Tasks refuses a name for about an hour after its task ran, which here is
    until forget_names()). Tasks wait in `pending` until a test takes or runs them."""

    def __init__(self, settings: Settings, queues: Iterable[str] | None = None):
        self._settings = settings
        self.queues = frozenset(queues) if queues is not None else None  # None: any queue exists
        self.created: list[QueuedTask] = []  # every task created, in order
        self.pending: list[QueuedTask] = []
        self.refused: list[str] = []  # names enqueued again (deduplicated)
        self.faults = Faults()
        self.now_s = 0.0  # the queue's clock: a task is due at now_s + delay_s
        self._names: set[str] = set()
        self._lock = threading.Lock()  # a name is taken once, also by threads racing

    def enqueue(self, req: TaskRequest) -> bool:
        if not TASK_NAME_OK.match(req.name):
            raise ValueError(f"invalid task name {req.name!r}")
        self._settings.task_url(req.target)  # ConfigError for a target without a URL, as the real one
        json.dumps(req.payload)  # the real one sends it as a JSON body
        if self.queues is not None and req.queue not in self.queues:
            raise gexc.NotFound(f"Queue does not exist: {req.queue}")
        if not 0 <= req.delay_s <= MAX_TASK_DELAY_S:
            raise gexc.InvalidArgument(f"schedule_time {req.delay_s} s ahead is out of range")
        low, high = DISPATCH_DEADLINE_RANGE_S
        if req.dispatch_deadline_s and not low <= req.dispatch_deadline_s <= high:
            raise gexc.InvalidArgument(f"dispatch_deadline {req.dispatch_deadline_s} s is out of range")
        self.faults.check("enqueue", req.name)  # e.g. TransientError(UNAVAILABLE): what the real one raises for 503
        with self._lock:
            if req.name in self._names:
                self.refused.append(req.name)
                return False
            self._names.add(req.name)
            task = QueuedTask(copy.deepcopy(req), len(self.created), self.now_s + max(req.delay_s, 0.0))
            self.created.append(task)
            self.pending.append(task)
            return True

    # --- for tests

    def names(self, target: str | None = None) -> list[str]:
        """Names of every task created (in order), optionally only those for one target."""
        return [t.name for t in self.created if target is None or t.target == target]

    def pending_names(self) -> list[str]:
        return [t.name for t in self.pending]

    def take(self, name: str) -> QueuedTask:
        """Remove the pending task of that name (to run it, or to lose it)."""
        for task in self.pending:
            if task.name == name:
                self.pending.remove(task)
                return task
        raise AssertionError(f"no pending task {name!r}; pending: {self.pending_names()}")

    def take_next(self) -> QueuedTask | None:
        """The pending task due first (creation order among equals), removed; None if none."""
        if not self.pending:
            return None
        task = min(self.pending, key=lambda t: (t.due_s, t.seq))
        self.pending.remove(task)
        self.now_s = max(self.now_s, task.due_s)
        return task

    def forget_names(self) -> None:
        """The hour in which Cloud Tasks refuses a used name has passed."""
        self._names = {t.name for t in self.pending}


# ---------------------------------------------------------------------------- HTTP out


@dataclass
class FakeResponse:
    status_code: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    closed: bool = False

    def close(self) -> None:
        self.closed = True


@dataclass(frozen=True)
class SentRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    timeout: Any
    allow_redirects: bool


class FakeHttp:
    """The `requests.Session` of rt.user_http / rt.http: answers in order (the last repeats;
    a FakeResponse, a status code, or an exception to raise), 200 when none is scripted."""

    def __init__(self) -> None:
        self.answers: list[FakeResponse | int | BaseException] = []
        self.sent: list[SentRequest] = []

    def answer(self, *answers: FakeResponse | int | BaseException) -> None:
        self.answers = list(answers)

    def post(self, url: str, data: bytes | str | None = None, headers: Mapping[str, str] | None = None,
             timeout: Any = None, allow_redirects: bool = True, **_: Any) -> FakeResponse:
        return self._send("POST", url, data, headers, timeout, allow_redirects)

    def get(self, url: str, headers: Mapping[str, str] | None = None, timeout: Any = None,
            allow_redirects: bool = True, **_: Any) -> FakeResponse:
        return self._send("GET", url, None, headers, timeout, allow_redirects)

    def _send(self, method: str, url: str, data: bytes | str | None, headers: Mapping[str, str] | None,
              timeout: Any, allow_redirects: bool) -> FakeResponse:
        body = data.encode() if isinstance(data, str) else (data or b"")
        self.sent.append(SentRequest(method, url, dict(headers or {}), body, timeout, allow_redirects))
        answer: FakeResponse | int | BaseException = FakeResponse()
        if self.answers:
            answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, BaseException):
            raise answer
        return FakeResponse(answer) if isinstance(answer, int) else FakeResponse(answer.status_code, dict(answer.headers))


# ---------------------------------------------------------------------------- the runtime


class RecordingDurations(DurationStats):
    """Plans checks from the prior (no Firestore) and keeps the generation times it is told.
    The plan for given settings is computed once per test session (it takes ~0.1 s)."""

    _plans: dict[tuple[str, float, str, str], tuple[poll_plan.Durations, poll_plan.Plan]] = {}

    def __init__(self, settings: Settings):
        super().__init__(None, settings.poll, settings.job_deadline_s)
        self._settings_key = (repr(settings.poll), float(settings.job_deadline_s))
        self.recorded: list[tuple[str, str, str, float, float]] = []
        self.pushed: list[tuple[str, bool | None]] = []  # (job id, event came first), per record()
        self.after_check: list[str] = []  # jobs whose event came after a check found them done

    def current(self, provider: str, model: str) -> tuple[poll_plan.Durations, poll_plan.Plan]:
        key = (*self._settings_key, provider, model)
        if key not in self._plans:
            self._plans[key] = super().current(provider, model)
        return self._plans[key]

    def record(self, provider: str, model: str, job_id: str, after_s: float, at_s: float,
               pushed: bool | None = None) -> None:
        self.recorded.append((provider, model, job_id, after_s, at_s))
        self.pushed.append((job_id, pushed))

    def event_came_after_check(self, provider: str, model: str, job_id: str, detected_at: datetime) -> None:
        self.after_check.append(job_id)


WEBHOOK_SECRET = "whsec_dmVvLXJlbGF5LXN0ZXAtdGVzdHMtc2VjcmV0IQ=="
TASK_TARGETS = ("submit_job", "poll_job", "finalize_job", "deliver_webhook", "stream_job")
BASE_ENV: dict[str, str] = {
    "GOOGLE_CLOUD_PROJECT": "veo-steps",
    "VEO_BUCKET": "veo-steps-bucket",
    "VEO_PROVIDERS_ENABLED": "litellm-gemini",  # a name Settings knows; jobs name the fakes
    "VEO_DEFAULT_PROVIDER": "litellm-gemini",
    "VEO_WEBHOOK_SECRET": WEBHOOK_SECRET,
    "VEO_WEBHOOK_RETRY_SCHEDULE": "0,5,300",
    "VEO_UPLOAD_CHUNK_BYTES": str(256 * 1024),
    # Signed URLs in events are then signed with a key made locally, never through Google.
    "STORAGE_EMULATOR_HOST": "http://storage.fake",
    **{f"VEO_{t.upper()}_URL": f"https://tasks.fake/{t}" for t in TASK_TARGETS},
}


def make_settings(env: Mapping[str, str | None] | None = None) -> Settings:
    """Settings from BASE_ENV with `env` on top (a None value removes a variable)."""
    merged = {**BASE_ENV, **(env or {})}
    return Settings.from_env({k: v for k, v in merged.items() if v is not None})


def make_runtime(env: Mapping[str, str | None] | None = None, providers: Iterable[Provider] | None = None,
                 store: FakeStore | None = None) -> Runtime:
    """A real Runtime over the fakes: FakeStore, FakeScheduler (knowing the deployment's
    queues), FakeBucket, FakeHttp for both sessions, and the providers (a FakeProvider
    named "fake" when none are given)."""
    settings = make_settings(env)
    store_ = store or FakeStore()
    by_name: dict[str, Provider] = {p.name: p for p in (providers if providers is not None else [FakeProvider()])}
    q = settings.queues
    queues = [q.poll, q.finalize, q.webhooks, q.stream, *(q.submit(name) for name in by_name)]
    return Runtime(
        settings=settings,
        store=cast(Any, store_),
        scheduler=cast(Any, FakeScheduler(settings, queues)),
        bucket=cast(Any, FakeStorageClient().bucket(settings.bucket)),
        providers=by_name,
        http=cast(Any, FakeHttp()),
        durations=RecordingDurations(settings),
        budgets=cast(Any, _ledger(store_)),
        user_http=cast(Any, FakeHttp()),
    )


def _ledger(store: FakeStore) -> Any:
    from .fake_budgets import FakeLedger  # it builds on FakeStore, defined here

    return FakeLedger(store)


__all__ = [
    "BASE_ENV",
    "WEBHOOK_SECRET",
    "FakeBlob",
    "FakeBucket",
    "FakeHttp",
    "FakeResponse",
    "FakeScheduler",
    "FakeStorageClient",
    "FakeStore",
    "Faults",
    "QueuedTask",
    "RecordingDurations",
    "SentRequest",
    "apply_changes",
    "firestore_copy",
    "make_runtime",
    "make_settings",
]
