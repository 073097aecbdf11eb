"""The job: its record (every field any step writes), its statuses and the transitions
between them. Pure, no I/O."""
from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any, NotRequired, TypedDict

from veorelay.core.clock import utcnow
from veorelay.core.media import JobWarning, Media, Poster

# A job id: 32 lowercase hex digits (request `extend.job_id`, OpenAPI, push events, routes).
JOB_ID_PATTERN = r"^[0-9a-f]{32}$"
JOB_ID = re.compile(JOB_ID_PATTERN)


class JobStatus(StrEnum):
    ACCEPTED = "accepted"
    RUNNING = "running"
    DOWNLOADING = "downloading"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})

_FORWARD: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.ACCEPTED: frozenset({JobStatus.RUNNING}),
    JobStatus.RUNNING: frozenset({JobStatus.DOWNLOADING}),
    JobStatus.DOWNLOADING: frozenset({JobStatus.SUCCEEDED}),
}


def allowed(current: JobStatus | str, target: JobStatus | str) -> bool:
    """Whether a job may move from `current` to `target`.

    Forward along accepted → running → downloading → succeeded; to failed or cancelled from
    any non-terminal state; never out of a terminal state.
    """
    current, target = JobStatus(current), JobStatus(target)
    if current.terminal:
        return False
    if target in (JobStatus.FAILED, JobStatus.CANCELLED):
        return True
    return target in _FORWARD[current]


class TransitionRefused(Exception):
    """The job is not in a state the step moves from: a duplicate or late task. Not an error."""

    def __init__(self, job_id: str, current: str, target: str):
        super().__init__(f"job {job_id} is {current}; not moving it to {target}")
        self.job_id, self.current, self.target = job_id, current, target


class Progress(TypedDict):
    percent: int | None  # 0-100 as far as the provider tells; None when it gives no number
    stage: str  # accepted, throttled, starting, running, downloading, succeeded, or a provider's stage


# What a provider's answer may put on a job, at most: its document must stay far below
# Firestore's 1 MiB whatever a provider (or a proxy in front of it) answers.
MAX_OUTPUTS = 4  # videos kept of one answer (a request asks for 4 at most: core/request.py sample_count)
MAX_OUTPUT_REF_CHARS = 16 * 1024  # one video's reference (URL, inline locator) as JSON
MAX_STAGE_CHARS = 64


def progress_of(percent: object, stage: object) -> Progress:
    """A provider's progress as a job keeps it: a whole percent in 0-100 (or none), a short stage."""
    number = percent if isinstance(percent, (int, float)) and not isinstance(percent, bool) else None
    whole = int(min(max(number, 0), 100)) if number is not None and number == number else None  # NaN: none
    return Progress(percent=whole, stage=str(stage if stage is not None else "running")[:MAX_STAGE_CHARS])


def seconds_running(job: Job) -> float:
    """Seconds since the provider accepted the job (what generation times are measured from)."""
    started = (job.get("timestamps") or {}).get("running") or job["created_at"]
    return max(0.0, (utcnow() - started).total_seconds())


def outputs_to_keep(refs: Sequence[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """References to a provider's finished videos as a job keeps them: the first MAX_OUTPUTS;
    None when one of those is too long to keep (such an answer is refused, not stored)."""
    kept = [dict(ref) for ref in refs[:MAX_OUTPUTS]]
    if any(len(json.dumps(ref, default=str)) > MAX_OUTPUT_REF_CHARS for ref in kept):
        return None
    return kept


class Webhook(TypedDict):
    url: str | None  # where events are POSTed (None: the job sends none)
    events: Sequence[str] | None  # the event types asked for (None: core.events.DEFAULT_EVENTS)


def webhook_of(job: Job) -> Webhook:
    """The job's webhook settings; a record without any has no webhook (url None)."""
    return job.get("webhook") or Webhook(url=None, events=None)


class Lease(TypedDict):
    at: datetime  # when the lease was taken; it lapses after the holder's lease time


class Output(TypedDict):
    """One stored video (gcp/sink.py StoredObject plus its index, what it is and its poster)."""

    index: int
    uri: str  # gs://BUCKET/<output prefix>/<job id>/<index>.mp4
    name: str  # the object name
    size: int
    crc32c: str  # base64 CRC32C (big-endian), as Cloud Storage reports it: what a download is checked against
    md5: str | None  # base64 MD5, as Cloud Storage reports it
    sha256: NotRequired[str]  # hex, only where the deployment records it (VEO_OUTPUT_SHA256)
    content_type: str
    media: Media  # read back from the stored object (gcp/media_probe.py): duration, size, codecs, audio
    poster: Poster | None  # its first frame as a JPEG, <index>.jpg beside it (None: could not be made; see warnings)
    provider_uri: NotRequired[str]  # the provider's own file URI (Gemini API), which an extension names the video by


class LateResult(TypedDict):
    state: str  # "succeeded": the provider finished after the job had ended
    outputs: list[dict[str, Any]]  # what it said (redacted), never copied or delivered
    at: datetime


class ProviderAttempt(TypedDict):
    provider: str
    model: str | None  # None: the provider was skipped, it cannot honour the request
    error_code: str  # why it did not take the job (core/errors.py ErrorCode)
    message: str
    at: datetime


class Job(TypedDict, total=False):
    """The Firestore document jobs/{id}. Written by gcp/store.py only, in transactions that
    check the state they move from; shown to clients through core/views.py."""

    id: str  # 32 hex digits; sha256(client, Idempotency-Key) when a key was given
    request_fingerprint: str  # sha256 of the request body (+ uploads): a replayed key must match it
    status: str  # a JobStatus
    client_id: str  # who owns the job (edges/auth.py); another client sees a 404
    provider: str  # the provider dialect's name
    model: str  # the model the job runs on (core/capabilities.py resolve_model)
    request: dict[str, Any]  # the GenerationRequest as accepted, images as gs:// inputs, never bytes
    metadata: dict[str, Any] | None  # the client's own data, returned as given
    webhook: Webhook
    progress: Progress
    outputs: list[Output]  # only a succeeded job has any
    warnings: list[JobWarning]  # succeeded, but not as asked (core/media.py warnings_for): set with the outputs
    error: dict[str, Any] | None  # core.errors.JobError.to_dict() of a failed or cancelled job
    created_at: datetime
    updated_at: datetime  # every write; the sweep reads it to find chains that stopped
    deadline_at: datetime  # a job not ended by then fails with deadline_exceeded
    timestamps: dict[str, datetime]  # status -> when the job entered it
    expire_at: datetime  # set on a terminal status: Firestore's TTL deletes the job then
    handle: dict[str, Any]  # the provider's handle (operation name, task id, ...), JSON as is
    submit_claim: Lease | None  # held while a submit step calls the provider (no double payment)
    submit_attempts: int  # submissions the provider throttled so far
    submit_error: dict[str, Any]  # the provider's last refusal while throttled (redacted)
    stream_submitted_at: datetime  # a streaming provider's POST was sent then (histories lookup)
    generation_key: str  # what jobs POSTing the same request share (steps/recover.py): who else might own a generation
    pending_outputs: list[dict[str, Any]]  # providers.base.OutputRef.to_dict() of each video to copy
    late_result: LateResult  # the provider succeeded after the job had been cancelled or failed
    discard_due_at: datetime | None  # ended while downloading: the sweep removes its videos once more then (gcp/store.py)
    sweep_gen: int  # how many times the sweep restarted the task chain (task names carry it)
    detected_by: str  # a pushing job: what found its provider done (core/push_events.py DETECTED_BY_*)
    event_after_check_at: datetime  # its event came after a check had found it done (counted once: steps/events_in.py)
    poll_chain: str  # the poll chain that took the job over in its generation (steps/chain.py); absent: its first
    deliveries: list[dict[str, Any]]  # webhook attempts (net/webhooks.py DeliveryAttempt.record())
    cost: Mapping[str, Any]  # core/cost.py Cost: the list-price estimate made at acceptance
    budget: dict[str, Any]  # core/budget.py Reservation: what admission reserved of the client's budget, and when
    settle_due_at: datetime | None  # ended and not yet settled: the sweep settles it then (gcp/store.py SETTLE_AFTER)
    notify_due_at: datetime | None  # moved to running or its end, that event not yet attempted: the sweep queues it then (NOTIFY_AFTER)
    notify_events: list[str] | None  # the events notify_due_at watches for (core/events.py pending_events)
    settled_at: datetime  # the ended job was counted in its client's budget and usage (gcp/budgets.py), once
    fallback_providers: list[str]  # providers the job may still move to, in order (core/failover.py)
    attempts: list[ProviderAttempt]  # providers that refused the job before one accepted it, in order
    provider_hop: int  # how many times the job moved to a fallback provider (its submit task names carry it)
    throttled_since: datetime | None  # the current provider first throttled the submission then
    submit_failures: int  # submissions that found the current provider unreachable
    extends: dict[str, Any]  # core/extension.py: the job whose video this one extends {job_id, output, root_job_id, depth, ...}
    deleted_at: datetime | None  # the client deleted it (DELETE /v1/videos/{id}, steps/delete.py): a 404 everywhere, its objects removed
