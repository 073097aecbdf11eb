"""Finding a generation again without its stream, and never guessing whose it is.

A streaming provider (genaipro) gives no id to find a lost generation by: its records (the
histories) are matched by the request (prompt) and the time it was sent. Two jobs of the same
prompt look alike there, so a match is only taken when it cannot be someone else's:

* a generation, once taken, is claimed for its job in Firestore (gcp/store.py
  claim_generation, create-only): no other job can ever take it;
* a job whose stream completes claims the generation the stream named (its history ids);
* a job looking for its generation takes the one unclaimed candidate, and only if no other job
  that sent the same request around the same time (the jobs of its `generation_key`) could own
  it. Several unclaimed candidates: the job ends with provider_error saying why, rather than be
  handed another job's video. One candidate that another such job, still running, may own: the
  job waits (that job claims its own when its stream completes) for at most LOST_AFTER_S.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

from veorelay.core.errors import ErrorCode, JobError
from veorelay.core.job import Job, JobStatus, TransitionRefused
from veorelay.gcp import logs
from veorelay.providers.base import Generation, Handle, Progress, Provider, StreamingProvider
from veorelay.runtime import Runtime

if TYPE_CHECKING:
    from veorelay.core.accepted import AcceptedRequest

# No generation of ours this long after the POST: the provider has no such job (or never will
# tell us which one is ours).
LOST_AFTER_S = 600.0
# Jobs that sent the same request at most this long before ours may own a candidate: twice the
# providers' matching window (genaipro MATCH_SKEW_S), for clocks that differ.
SAME_TIME_S = 120.0
OTHERS_LIMIT = 50


@dataclass(frozen=True)
class Located:
    handle: Handle | None = None  # the generation is this job's: `check` follows exactly it
    waiting: str | None = None  # another job may own the one candidate: not decided yet
    ambiguous: str | None = None  # the job cannot tell which generation is its own


def searches(provider: Provider) -> bool:
    """A provider whose jobs are found again by search (a StreamingProvider with candidates)."""
    return callable(getattr(provider, "candidates", None))


def generation_key(provider: Provider, req: AcceptedRequest) -> str:
    """What every job that POSTs this request to this provider shares (stored on the job)."""
    return hashlib.sha256(f"{provider.name}\x00{req.prompt.strip()}".encode()).hexdigest()[:32]


def locate(rt: Runtime, job: Job, provider: StreamingProvider, handle: Handle) -> Located:
    """The provider's generation `handle` stands for, as this job's, or why not (yet)."""
    if provider.is_pinned(handle):
        return Located(handle=handle)
    found = provider.candidates(handle)
    if not found:
        return Located()
    owners = rt.store.generation_owners(provider.name, [hid for g in found for hid in g.ids])
    states = [(_owned_by(g, owners, job["id"]), g) for g in found]
    mine = [g for state, g in states if state == "mine"]
    if mine:
        return _taken(rt, job, provider, handle, mine[0])
    free = [g for state, g in states if state == "free"]
    if not free:
        return Located()  # every look-alike belongs to another job: ours is not there (yet)
    if len(free) > 1 or free[0].alike > 1:
        alike = sum(g.alike for g in free)
        return Located(ambiguous=f"{alike} of {provider.name}'s generations of this prompt, sent at about the same "
                                 "time, belong to no job: veo-relay cannot tell which one is this job's, and never "
                                 "hands a job a video that may be another's")
    others = _other_posters(rt, job, provider)
    if others:
        running = [o for o in others if not JobStatus(o["status"]).terminal]
        message = (f"another job ({len(others)} in all) sent the same prompt to {provider.name} at about the same time "
                   "and may own the one generation found: veo-relay cannot tell whose it is")
        return Located(waiting=message) if running else Located(ambiguous=message)
    return _taken(rt, job, provider, handle, free[0])


def _owned_by(generation: Generation, owners: dict[str, str], job_id: str) -> str:
    """"mine", "other" (some entry is another job's) or "free" (no entry is anyone's)."""
    holders = {owners[hid] for hid in generation.ids if hid in owners}
    if holders - {job_id}:
        return "other"
    return "mine" if holders else "free"


def claim_streamed(rt: Runtime, job: Job, provider: StreamingProvider, history_ids: tuple[str, ...]) -> Handle | None:
    """The stream named its generation (history ids): claim it. The handle to keep (pinned when
    there were ids), or None when another job holds it (the job must not deliver it too)."""
    handle: Handle = job.get("handle") or {}
    if not history_ids:
        return handle
    if not rt.store.claim_generation(provider.name, list(history_ids), job["id"]):
        return None
    return provider.pin(handle, Generation(tuple(history_ids), time.time()))


def check(rt: Runtime, job: Job, provider: Provider) -> Progress:
    """What poll_job asks a provider: `check`, except that a searching provider's generation is
    first found and claimed (its pinned handle is then kept on the job)."""
    handle = job["handle"]
    if not searches(provider):
        return provider.check(handle)
    found = locate(rt, job, cast(StreamingProvider, provider), handle)
    if found.handle is not None:
        if found.handle != handle:
            _keep(rt, job, found.handle)
        return provider.check(found.handle)
    lost_s = time.time() - float(handle.get("submitted_at") or 0)
    if found.ambiguous is not None or (found.waiting is not None and lost_s > LOST_AFTER_S):
        return Progress("failed", error=JobError(ErrorCode.PROVIDER_ERROR, found.ambiguous or str(found.waiting)))
    if lost_s > LOST_AFTER_S:
        return Progress("failed", error=JobError(ErrorCode.PROVIDER_ERROR, f"{provider.name}'s records hold no generation of this job"))
    return Progress("running", stage="lost")


def _taken(rt: Runtime, job: Job, provider: StreamingProvider, handle: Handle, generation: Generation) -> Located:
    if not rt.store.claim_generation(provider.name, list(generation.ids), job["id"]):
        return Located(waiting="another job claimed the generation found at the same moment; looking again")
    logs.info("generation found again and claimed", job_id=job["id"], provider=provider.name, history_ids=list(generation.ids))
    return Located(handle=provider.pin(handle, generation))


def _other_posters(rt: Runtime, job: Job, provider: StreamingProvider) -> list[Job]:
    """The other jobs that POSTed the same request around our time and claimed no generation."""
    key, since = job.get("generation_key"), job.get("stream_submitted_at")
    if not key or since is None:
        return []
    posted = rt.store.jobs_posting(key, since - timedelta(seconds=SAME_TIME_S), OTHERS_LIMIT)
    return [o for o in posted if o["id"] != job["id"] and not provider.is_pinned(o.get("handle") or {})]


def _keep(rt: Runtime, job: Job, handle: dict[str, Any]) -> None:
    """The pinned handle on the job (only while it runs: a job that ended keeps what it had)."""
    try:
        rt.store.update(job["id"], {JobStatus.RUNNING}, {"handle": handle})
    except TransitionRefused:
        pass
