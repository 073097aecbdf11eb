"""The finalize step: every output streamed into the bucket and verified, then `succeeded`."""
from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from google.api_core import exceptions as gexc

from veorelay.core.clock import utcnow
from veorelay.core.errors import ErrorCode, PermanentError, TransientError
from veorelay.core.events import EVENT_FOR_STATUS
from veorelay.core.job import Job, JobStatus, TransitionRefused
from veorelay.core.media import JobWarning, Media, Poster, expectation_of, media_of, poster_missing, warnings_for
from veorelay.core.views import job_view
from veorelay.gcp import logs
from veorelay.gcp.deadlines import GCS_CALL_S, GCS_RETRY
from veorelay.gcp.media_probe import inspect_stored, poster_of, store_poster
from veorelay.gcp.sink import StoredObject, adopt_object, store_video, stored_video
from veorelay.providers.base import BucketWriter, OutputRef, Provider
from veorelay.runtime import Runtime
from veorelay.steps.deliver import enqueue_event
from veorelay.steps.lifecycle import fail, move, record_late_result


def output_name(rt: Runtime, job_id: str, index: int) -> str:
    return f"{rt.settings.output_prefix}/{job_id}/{index}.mp4"


def poster_name(rt: Runtime, job_id: str, index: int) -> str:
    """The output's poster, beside its video."""
    return f"{rt.settings.output_prefix}/{job_id}/{index}.jpg"


def job_json_name(rt: Runtime, job_id: str) -> str:
    """The job's view, written after its videos (_write_job_json)."""
    return f"{rt.settings.output_prefix}/{job_id}/job.json"


def finalize_job(rt: Runtime, job_id: str, attempt: int) -> None:
    """`attempt` counts from 1 (Cloud Tasks' retry count + 1)."""
    job = rt.store.get(job_id)
    if job is not None and job["status"] == JobStatus.SUCCEEDED:
        # A retry: the attempt that moved the job may have died before job.json was written or
        # before its webhook task was created (a named task: created once, AlreadyExists after).
        _write_job_json(rt, job, only_if_missing=True)
        enqueue_event(rt, job, EVENT_FOR_STATUS[JobStatus.SUCCEEDED])
        return
    if job is None or job["status"] != JobStatus.DOWNLOADING:
        logs.info("finalize skipped", job_id=job_id, status=job and job["status"])
        if job is not None and job["status"] in (JobStatus.CANCELLED, JobStatus.FAILED):
            # It ended (cancelled, or failed at its deadline by the sweep) while an earlier
            # attempt of this task had stored some of its videos: this retry removes them. So
            # does a discard task (chain.discard_task), which is nothing else than this.
            _discard_outputs(rt, job, ended=True)
            _discard_done(rt, job)
        return
    provider = rt.providers[job["provider"]]
    outputs: list[dict[str, Any]] = []
    warnings: list[JobWarning] = []
    try:
        for ref in (OutputRef.from_dict(o) for o in job.get("pending_outputs") or []):
            earlier = _already_stored(rt, job_id, ref.index)
            stored = earlier or _copy_output(rt, job, provider, ref)
            media, poster = _inspect_output(rt, job, ref.index, stored, warnings, poster_may_exist=earlier is not None)
            outputs.append(stored.to_dict() | {"index": ref.index, "media": media, "poster": poster} | _provider_uri(ref))
    except PermanentError as exc:
        fail(rt, job_id, exc.job_error(), {JobStatus.DOWNLOADING})
        _discard_outputs(rt, job)  # outputs before the bad one: only a succeeded job has videos
        return
    except TransientError as exc:
        if exc.code == ErrorCode.DOWNLOAD_INVALID and attempt >= rt.settings.download_attempts:
            gave_up = PermanentError(exc.code, f"{exc.message} (after {attempt} attempts)", exc.provider_detail)
            fail(rt, job_id, gave_up.job_error(), {JobStatus.DOWNLOADING})
            _discard_outputs(rt, job)  # outputs before the bad one, as for a PermanentError
            return
        raise
    if not outputs:
        empty = PermanentError(ErrorCode.PROVIDER_ERROR, "the provider reported success without any output")
        fail(rt, job_id, empty.job_error(), {JobStatus.DOWNLOADING})
        return
    done = move(rt, job_id, JobStatus.SUCCEEDED, {"outputs": outputs, "warnings": warnings,
                                                  "progress": {"percent": 100, "stage": "succeeded"}},
                {JobStatus.DOWNLOADING}, before_event=lambda moved: _write_job_json(rt, moved))
    if done is not None:
        return
    now = rt.store.get(job_id) or {}
    if now.get("status") in (JobStatus.CANCELLED, JobStatus.FAILED):
        # Cancelled (or past its deadline) while we copied: the success is recorded, not delivered.
        record_late_result(rt, job_id, job.get("pending_outputs") or [])
        _discard_outputs(rt, job, ended=True)


def _provider_uri(ref: OutputRef) -> dict[str, str]:
    """The provider's own URI of the video (the Gemini API's file), which an extension names it by."""
    uri = ref.extra.get("provider_uri")
    return {"provider_uri": uri} if isinstance(uri, str) else {}


def _object_metadata(job: Job, index: int) -> dict[str, str]:
    """What every object of an output (its video, its poster) carries."""
    return {
        "job_id": job["id"],
        "provider": job["provider"],
        "model": job["model"],
        "output_index": str(index),
        "prompt_sha256": hashlib.sha256(job["request"]["prompt"].encode()).hexdigest(),
    }


def _inspect_output(rt: Runtime, job: Job, index: int, stored: StoredObject, warnings: list[JobWarning],
                    poster_may_exist: bool = True) -> tuple[Media, Poster | None]:
    """The stored video read back (gcp/media_probe.py): its `media`, and its poster, made once.
    A file that is no video (no video track, zero seconds) raises PermanentError(download_invalid),
    which fails the job and removes its objects like any failed verification; a video unlike the
    request adds warnings. A retry finds the poster an earlier attempt stored and decodes nothing.
    `poster_may_exist` False: the video was copied just now, so no earlier attempt made its poster
    and none is looked for (a concurrent attempt's poster is kept by store_poster's create-only write)."""
    name = poster_name(rt, job["id"], index)
    earlier = poster_of(rt.bucket, name) if poster_may_exist else None
    inspection = inspect_stored(rt.bucket, stored.name, with_poster=earlier is None)
    media = media_of(inspection.probe)
    poster = earlier
    if poster is None and inspection.poster_jpeg is not None:
        metadata = _object_metadata(job, index) | {"video_crc32c": stored.crc32c}
        poster = store_poster(rt.bucket, name, inspection.poster_jpeg, metadata)
    found = warnings_for(expectation_of(job), index, media)
    if poster is None:
        found.append(poster_missing(index, inspection.poster_problem or "no picture decoded"))
    warnings.extend(found)
    logs.info("output inspected", job_id=job["id"], index=index, media=dict(media), poster=poster and poster["name"],
              bytes_read=inspection.bytes_read, warnings=[w["code"] for w in found])
    return media, poster


def _copy_output(rt: Runtime, job: Job, provider: Provider, ref: OutputRef) -> StoredObject:
    metadata = _object_metadata(job, ref.index)
    if ref.gcs_uri:  # the provider wrote it into our bucket (Vertex storageUri): verify and move
        stored = adopt_object(rt.bucket, _own_output(rt, provider, job["id"], ref), output_name(rt, job["id"], ref.index),
                              metadata, rt.settings.upload_chunk_bytes, rt.settings.output_sha256)
        logs.info("output adopted", job_id=job["id"], index=ref.index, source=ref.gcs_uri, size=stored.size, crc32c=stored.crc32c)
        return stored
    started = time.monotonic()
    download = provider.open_output(ref)
    stored = store_video(
        download,
        rt.bucket,
        final_name=output_name(rt, job["id"], ref.index),
        metadata=metadata,
        chunk_bytes=rt.settings.upload_chunk_bytes,
        with_sha256=rt.settings.output_sha256,
    )
    logs.info("output stored", job_id=job["id"], provider=job["provider"], index=ref.index, uri=stored.uri, size=stored.size,
              crc32c=stored.crc32c, copy_s=round(time.monotonic() - started, 3))
    return stored


def _own_output(rt: Runtime, provider: Provider, job_id: str, ref: OutputRef) -> str:
    """The object name of a video the provider wrote for this job: in our bucket, inside the
    folder the provider writes this job's videos to (BucketWriter.job_folder), which is none of
    our own folders; never another job's."""
    name = ref.object_in(rt.bucket.name)
    folder = provider.job_folder(job_id) if isinstance(provider, BucketWriter) else None
    ours = (f"{rt.settings.output_prefix}/", "inputs/", "requests/")
    if (name is None or folder is None or not folder.endswith("/") or folder.startswith(ours)
            or not name.startswith(folder) or name == folder):
        raise PermanentError(ErrorCode.DOWNLOAD_INVALID, "the provider named a video outside this job's folder", (ref.gcs_uri or "")[:300])
    return name


def _already_stored(rt: Runtime, job_id: str, index: int) -> StoredObject | None:
    """A previous attempt stored this output (only verified videos reach the final name), even
    one that died before recording its sha256: never download a video the bucket has."""
    return stored_video(rt.bucket, output_name(rt, job_id, index), rt.settings.upload_chunk_bytes, rt.settings.output_sha256)


def _discard_outputs(rt: Runtime, job: Job, ended: bool = False) -> None:
    """Videos stored for a job that did not succeed: consumers must never find them. By
    name, not by listing: finalize's bucket grant is limited to prefixes, which a list
    request (made on the bucket) does not match. `ended`: the caller has just read the job
    cancelled or failed, states it never leaves, so it is not read again."""
    if not ended and (rt.store.get(job["id"]) or {}).get("status") == JobStatus.SUCCEEDED:
        return  # a concurrent attempt finished the job: its videos stay
    for ref in job.get("pending_outputs") or []:
        for name in (output_name(rt, job["id"], int(ref["index"])), poster_name(rt, job["id"], int(ref["index"]))):
            try:
                rt.bucket.blob(name).delete(timeout=GCS_CALL_S, retry=GCS_RETRY)
                logs.info("object of a job that did not succeed removed", job_id=job["id"], object=name)
            except gexc.NotFound:
                pass
            except gexc.GoogleAPIError as exc:
                raise TransientError(ErrorCode.INTERNAL, f"removing {name} failed: {type(exc).__name__}") from exc


def _discard_done(rt: Runtime, job: Job) -> None:
    """The last removal is done: once no finalize attempt can still be running (discard_due_at
    passed), nothing can store a video for this job any more, and the sweep stops asking."""
    due = job.get("discard_due_at")
    if due is None or utcnow() < due:
        return
    try:
        rt.store.update(job["id"], {JobStatus.CANCELLED, JobStatus.FAILED}, {"discard_due_at": None})
    except TransitionRefused:
        pass


def _write_job_json(rt: Runtime, job: Job, only_if_missing: bool = False) -> None:
    """Written after every video, so a consumer that waits for job.json finds them all."""
    blob = rt.bucket.blob(job_json_name(rt, job["id"]))
    try:
        if only_if_missing and blob.exists(timeout=GCS_CALL_S, retry=GCS_RETRY):
            return
        blob.upload_from_string(json.dumps(job_view(job), indent=2, sort_keys=True), content_type="application/json",
                                timeout=GCS_CALL_S, retry=GCS_RETRY)
    except gexc.GoogleAPIError as exc:
        raise TransientError(ErrorCode.INTERNAL, f"writing job.json failed: {type(exc).__name__}") from exc
