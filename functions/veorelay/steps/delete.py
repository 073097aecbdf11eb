"""Deleting a job at its client's request (DELETE /v1/videos/{id}): its videos, poster images and
job.json removed from the bucket, the job marked `deleted_at`; from then on every route answers
404 for it and listings leave it out.

Idempotent, in this order: the mark first (one checked write, on an ended job only), then the
objects, by name. A request that dies between the two, or an object removal that fails (503),
is completed by the same DELETE sent again: a job already marked is not refused, its objects are
removed once more (a missing object is no error). The Firestore record itself goes when its TTL
(`expire_at`) comes, so an Idempotency-Key stays remembered as long as promised.
"""
from __future__ import annotations

from collections.abc import Iterator

from google.api_core import exceptions as gexc

from veorelay.core.clock import utcnow
from veorelay.core.errors import ApiError, ErrorCode, TransientError
from veorelay.core.job import TERMINAL, Job, JobStatus, TransitionRefused
from veorelay.gcp import logs
from veorelay.gcp.deadlines import GCS_CALL_S, GCS_RETRY
from veorelay.runtime import Runtime
from veorelay.steps.finalize import job_json_name, output_name, poster_name


def delete_job(rt: Runtime, client_id: str, job_id: str) -> Job:
    """The job as marked deleted. 404 when it is not this client's (or does not exist), 409 when
    it has not ended (cancel it first: a running generation could still store a video).
    TransientError when Firestore or the bucket does not answer: sending it again is safe."""
    job = rt.store.get(job_id)
    if job is None or job.get("client_id") != client_id:
        raise ApiError(404, ErrorCode.NOT_FOUND, "no such job", "id")
    if job.get("deleted_at") is None:
        if not JobStatus(job["status"]).terminal:
            raise ApiError(409, ErrorCode.CONFLICT, f"the job has not ended ({job['status']}): cancel it first, then delete it")
        try:
            job = rt.store.update(job_id, TERMINAL, {"deleted_at": utcnow()}, unchanged={"deleted_at": None})
        except TransitionRefused:  # a concurrent DELETE marked it first: the same outcome
            job = rt.store.get(job_id) or job
    for name in object_names(rt, job):
        try:
            rt.bucket.blob(name).delete(timeout=GCS_CALL_S, retry=GCS_RETRY)
            logs.info("object of a deleted job removed", job_id=job_id, object=name)
        except gexc.NotFound:
            pass
        except gexc.GoogleAPIError as exc:
            raise TransientError(ErrorCode.UNAVAILABLE, f"removing {name} failed ({type(exc).__name__}); "
                                 "send the DELETE again") from exc
    return job


def object_names(rt: Runtime, job: Job) -> Iterator[str]:
    """Every object the job may have in the bucket under its output folder: each output's video
    and poster (`<index>.mp4`, `<index>.jpg`, by the names the job recorded and by index, for
    a finalize attempt that stored one without recording it), and job.json. Never a listing:
    the api's grant on the bucket is by prefix, which a list call does not match."""
    folder = f"{rt.settings.output_prefix}/{job['id']}"
    seen: set[str] = set()
    indices = {int(o["index"]) for o in job.get("outputs") or []}
    indices |= {int(ref["index"]) for ref in job.get("pending_outputs") or [] if isinstance(ref.get("index"), int)}
    names: list[str] = []
    for output in job.get("outputs") or []:
        record = dict(output)
        names.append(str(record.get("name") or ""))
        poster = record.get("poster")
        if isinstance(poster, dict) and poster.get("name"):
            names.append(str(poster["name"]))
    for index in sorted(indices):
        names += [output_name(rt, job["id"], index), poster_name(rt, job["id"], index)]
    names.append(job_json_name(rt, job["id"]))
    for name in names:
        # Only objects of the job's own folder: a recorded name is ours, but never trusted further.
        if name.startswith(folder + "/") and name not in seen:
            seen.add(name)
            yield name
