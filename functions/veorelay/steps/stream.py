"""The stream step (`stream_job`), for providers that answer the submit with an event stream
instead of an operation to poll (genaipro).

The POST is the job: the step that sends it is the one that must read its answer, so the
submit task only hands the job over (chain.stream_task) and this step, on the veo-stream queue
with a dispatch deadline long enough for a whole generation, takes the submission claim, POSTs,
and follows the events: each new status becomes the job's progress (one write per change), the
complete event hands every file_url to finalize, an error event fails the job.

A stream can break (reset, proxy timeout, a redelivered task). The job then still exists at the
provider, so it is never submitted again: it is followed by polling `provider.check`, which finds
it in the provider's histories. A POST whose answer we never saw (timeout, crash) is looked
for there too before the retry sends another one: `stream_submitted_at` records when we tried.
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import closing
from typing import cast

from veorelay.core.accepted import AcceptedRequest, accepted_request
from veorelay.core.clock import utcnow
from veorelay.core.errors import ErrorCode, JobError, PermanentError, TransientError
from veorelay.core.job import Job, JobStatus, TransitionRefused, progress_of, seconds_running
from veorelay.gcp import logs
from veorelay.providers.base import Handle, OutputRef, ProviderStream, StreamBroken, StreamingProvider
from veorelay.runtime import Runtime
from veorelay.steps import chain, recover
from veorelay.steps.chain import STREAM_DEADLINE_S
from veorelay.steps.deliver import enqueue_progress
from veorelay.steps.lifecycle import fail, kept_outputs_or_fail, move, record_late_result
from veorelay.steps.poll import learn_duration, next_check_delay

# Stop following this long before the task's deadline, and hand the job to polling cleanly.
STREAM_MARGIN_S = 60
MIN_READ_TIMEOUT_S = 15.0
# The claim covers the POST until its answer starts (then the job is `running`).
STREAM_CLAIM_LEASE_S = 120


def stream_job(rt: Runtime, job_id: str) -> None:
    job = rt.store.get(job_id)
    if job is not None and job["status"] == JobStatus.RUNNING:
        # A redelivered task: the stream it held is gone, the job goes on at the provider.
        logs.info("stream task redelivered; following the job by polling", job_id=job_id)
        follow_by_polling(rt, job)
        return
    if job is None or job["status"] != JobStatus.ACCEPTED:
        logs.info("stream skipped", job_id=job_id, status=job and job["status"])
        return
    if utcnow() > job["deadline_at"]:
        fail(rt, job_id, JobError(ErrorCode.DEADLINE_EXCEEDED, "the job could not be submitted before its deadline"), {JobStatus.ACCEPTED})
        return
    if not rt.store.claim(job_id, "submit_claim", JobStatus.ACCEPTED, STREAM_CLAIM_LEASE_S):
        logs.info("submission already in flight", job_id=job_id)
        return
    # Only a provider with capabilities.streaming is handed to this step (submit_job).
    provider = cast(StreamingProvider, rt.providers[job["provider"]])
    req = accepted_request(job["request"], job["model"])
    try:
        opened = _submit_once(rt, job, provider, req)
    except PermanentError as exc:
        fail(rt, job_id, exc.job_error(), {JobStatus.ACCEPTED})
        return
    except Exception:
        # Let the retry in; stream_submitted_at stays, so it looks in the histories before it POSTs.
        try:
            rt.store.update(job_id, {JobStatus.ACCEPTED}, {"submit_claim": None})
        except TransitionRefused:
            pass
        raise
    if opened is None:
        return
    stream, handle, stop_at = opened
    with closing(stream):
        running = _start_running(rt, job_id, handle)
        if running is None:
            return  # cancelled while we were submitting
        follow_stream(rt, running, stream, stop_at)


def _submit_once(rt: Runtime, job: Job, provider: StreamingProvider,
                 req: AcceptedRequest) -> tuple[ProviderStream, Handle, float] | None:
    """POST the job unless an earlier attempt's POST reached the provider; returns (stream,
    handle, when to stop following) or None when there is no stream to follow here."""
    tried_at = job.get("stream_submitted_at")
    if tried_at is not None:
        # Found only if it is certainly this job's (claimed for it: steps/recover.py).
        found = recover.locate(rt, job, provider, provider.stream_handle(req, tried_at.timestamp()))
        if found.waiting is not None and (utcnow() - tried_at).total_seconds() <= recover.LOST_AFTER_S:
            raise TransientError(ErrorCode.PROVIDER_UNAVAILABLE, found.waiting)  # nothing POSTed: the queue asks again
        if found.ambiguous is not None or found.waiting is not None:
            raise PermanentError(ErrorCode.PROVIDER_ERROR, str(found.ambiguous or found.waiting))
        if found.handle is not None:
            logs.warning("an earlier submission was found in the provider's histories; not submitting again", job_id=job["id"])
            running = _start_running(rt, job["id"], found.handle)
            if running is not None:
                follow_by_polling(rt, running)
            return None
    now = utcnow()
    try:
        rt.store.update(job["id"], {JobStatus.ACCEPTED}, {"stream_submitted_at": now,
                                                          "generation_key": recover.generation_key(provider, req)})
    except TransitionRefused:
        return None  # cancelled meanwhile
    left_s = (job["deadline_at"] - now).total_seconds()
    started = time.monotonic()
    stream = provider.open_stream(req, max(MIN_READ_TIMEOUT_S, min(left_s, STREAM_DEADLINE_S - STREAM_MARGIN_S)))
    handle = provider.stream_handle(req, now.timestamp())
    return stream, handle, started + STREAM_DEADLINE_S - STREAM_MARGIN_S


def follow_stream(rt: Runtime, job: Job, stream: ProviderStream, stop_at: float) -> None:
    job_id = job["id"]
    known = job.get("progress")
    stage = known.get("stage") if known else None
    try:
        for event in stream.events():
            if event.kind == "status" and event.stage != stage:
                stage = event.stage
                try:
                    # Only while the job is still this step's: not if it ended, nor if a second
                    # delivery of the stream task or the sweep took it over (steps/chain.py).
                    updated = rt.store.update(job_id, {JobStatus.RUNNING}, {"progress": progress_of(event.percent, stage)},
                                              unchanged=chain.chain_fields(job))
                except TransitionRefused:
                    logs.info("job ended or taken over while streaming; letting go of the stream", job_id=job_id)
                    return
                logs.info("provider progress", stage=stage)
                enqueue_progress(rt, updated)
            elif event.kind == "complete":
                _complete(rt, job, event.outputs, event.generation_ids)
                return
            elif event.kind == "error":
                fail(rt, job_id, event.error or JobError(ErrorCode.PROVIDER_ERROR, "the provider reported an error"), {JobStatus.RUNNING})
                return
            if time.monotonic() > stop_at:
                logs.info("stream held as long as the task may run; following the job by polling", job_id=job_id)
                break
        else:
            logs.warning("the stream ended without its last event; following the job by polling", job_id=job_id)
    except (StreamBroken, UnicodeDecodeError) as exc:
        logs.warning("the stream broke; following the job by polling", job_id=job_id, reason=str(exc)[:200])
    follow_by_polling(rt, job)


def _complete(rt: Runtime, job: Job, outputs: Sequence[OutputRef], generation_ids: Sequence[str] = ()) -> None:
    if not outputs:
        fail(rt, job["id"], JobError(ErrorCode.PROVIDER_ERROR, "the provider reported completion without any video"), {JobStatus.RUNNING})
        return
    refs = kept_outputs_or_fail(rt, job["id"], [ref.to_dict() for ref in outputs])
    if refs is None:
        return
    # The generation the stream named is this job's: claimed, so no job searching for its own
    # can take it (steps/recover.py).
    handle = recover.claim_streamed(rt, job, cast(StreamingProvider, rt.providers[job["provider"]]), tuple(generation_ids))
    if handle is None:
        fail(rt, job["id"], JobError(ErrorCode.PROVIDER_ERROR, "the generation the provider's stream named was already "
                                     "claimed by another job; it is not delivered twice"), {JobStatus.RUNNING})
        return
    done_s = seconds_running(job)
    downloading = move(rt, job["id"], JobStatus.DOWNLOADING, {
        "pending_outputs": refs,
        "progress": {"percent": 100, "stage": "downloading"},
        "handle": handle,
    }, from_states={JobStatus.RUNNING})
    if downloading is not None:
        rt.scheduler.enqueue(chain.finalize_task(rt.settings, job))
        learn_duration(rt, job, done_s, done_s)
    else:  # cancelled (or past its deadline) while streaming: recorded, not delivered
        record_late_result(rt, job["id"], refs)


def _start_running(rt: Runtime, job_id: str, handle: Handle) -> Job | None:
    return move(rt, job_id, JobStatus.RUNNING, {
        "handle": handle, "submit_claim": None, "progress": {"percent": 0, "stage": "starting"},
    }, from_states={JobStatus.ACCEPTED})


def follow_by_polling(rt: Runtime, job: Job) -> None:
    """Poll the job from now on (its provider's `check` finds it without the stream), with a
    chain of checks of this step's own: the job is taken over (a fresh `poll_chain`, one write)
    only if it still names the chain it was read with. Otherwise another delivery of the stream
    task, or the sweep, follows it already, and this step lets it go: a stream step resumed long
    after its task was given up never starts a second chain beside the live one."""
    try:
        taken = rt.store.update(job["id"], {JobStatus.RUNNING}, {"poll_chain": chain.new_chain_id()},
                                unchanged=chain.chain_fields(job))
    except TransitionRefused as refused:
        logs.info("the job is followed by another chain or ended; not polling it from here", job_id=job["id"],
                  status=refused.current)
        return
    elapsed = seconds_running(taken)
    delay_s = min(next_check_delay(rt, taken, elapsed), rt.settings.poll.max_delay_s)
    rt.scheduler.enqueue(chain.poll_task(rt.settings, taken, 1, delay_s=delay_s, checked_s=elapsed))
