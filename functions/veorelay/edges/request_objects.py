"""Jobs from events: a request JSON written to gs://BUCKET/requests/<name>.json starts a job.

The `on_request_object` function receives every object finalized in the bucket (Eventarc
cannot filter by prefix) and ignores all but requests/*.json. The request goes through
create_job, so it is validated exactly like POST /jobs; the outcome, the job or the
validation error, is written back beside it as requests/<name>.result.json.

Eventarc delivers at least once. The job's idempotency key is the event id and the object
generation, so a redelivered event finds the job it already started instead of a second one.

Most events are for objects veo-relay wrote itself (every video, poster, job.json and result
file): the request schema (pydantic, steps/accept.py) is imported when an event is for a request
object, so an instance woken for a video never loads it.
"""
from __future__ import annotations

import json
from typing import Any

from google.api_core import exceptions as gexc

from veorelay.core.errors import ApiError, ErrorCode, TransientError
from veorelay.core.views import job_view
from veorelay.edges.body import MAX_JSON_BYTES, parse_json_body
from veorelay.gcp import logs
from veorelay.gcp.deadlines import GCS_CALL_S, GCS_RETRY
from veorelay.runtime import Runtime

REQUESTS_PREFIX = "requests/"
RESULT_SUFFIX = ".result.json"


def is_request_object(name: str) -> bool:
    return name.startswith(REQUESTS_PREFIX) and name.endswith(".json") and not name.endswith(RESULT_SUFFIX)


def result_name(name: str) -> str:
    return name.removesuffix(".json") + RESULT_SUFFIX


def on_object_finalized(rt: Runtime, event_id: str, data: dict[str, Any]) -> dict[str, Any] | None:
    """Start the job a request object asks for; returns what was written to .result.json
    (None when the object is not a request, or is gone)."""
    name, bucket = data.get("name"), data.get("bucket")
    if bucket != rt.settings.bucket or not isinstance(name, str) or not is_request_object(name):
        return None  # a video, job.json, a result file...: not ours, and not worth a log line
    generation = str(data.get("generation") or "")
    if not generation.isdigit() or not event_id:
        logs.error("request object event without an id or generation", object=name)
        return None
    source = {"bucket": bucket, "name": name, "generation": generation, "event_id": event_id}
    from veorelay.steps.accept import create_job  # a request object's (module docstring)

    try:
        body = _read_request(rt, name, int(generation), int(data.get("size") or 0))
        if body is None:
            return None
        # Whoever may write requests/ (an IAM grant) acts as this client (VEO_REQUESTS_CLIENT_ID,
        # default "bucket"): it owns the job, and its webhook secrets sign the job's events.
        job, created = create_job(rt, body, client_id=rt.settings.requests_client_id, idempotency_key=f"{event_id}:{generation}")
        result = {"request": source, "job": job_view(job), "error": None}
        logs.info("job from a request object" if created else "request object event seen before", object=name, job_id=job["id"])
    except ApiError as exc:
        logs.info("request object refused", object=name, code=exc.code, field=exc.field)
        result = {"request": source, "job": None, **exc.body()}
    except TransientError as exc:
        logs.warning("request object not handled yet; Eventarc will deliver it again",
                     object=name, code=exc.code, error_message=exc.message)
        raise
    try:
        _write_result(rt, name, int(generation), result)
    except TransientError as exc:
        logs.warning("result object not written; Eventarc will deliver the event again", object=name, error_message=exc.message)
        raise
    return result


def _read_request(rt: Runtime, name: str, generation: int, size: int) -> dict[str, Any] | None:
    if size > MAX_JSON_BYTES:
        raise ApiError(413, ErrorCode.PAYLOAD_TOO_LARGE, f"the request object must be at most {MAX_JSON_BYTES} bytes")
    try:
        # This generation exactly: the object may have been replaced since the event.
        raw = rt.bucket.blob(name, generation=generation).download_as_bytes(timeout=GCS_CALL_S, retry=GCS_RETRY)
    except gexc.NotFound:
        logs.info("request object gone before it was read", object=name, generation=generation)
        return None
    except gexc.GoogleAPIError as exc:
        raise TransientError(ErrorCode.INTERNAL, f"reading the request object failed: {type(exc).__name__}") from exc
    # The same strict parser as a POST /jobs body: size, UTF-8, duplicate keys, NaN, depth, an object.
    return parse_json_body(raw, MAX_JSON_BYTES, "the request object")


def _write_result(rt: Runtime, name: str, generation: int, result: dict[str, Any]) -> None:
    """Write <name>.result.json, unless a newer generation of the request already has one
    (events can arrive out of order when a request object is replaced)."""
    blob = rt.bucket.blob(result_name(name))
    try:
        current = rt.bucket.get_blob(blob.name, timeout=GCS_CALL_S, retry=GCS_RETRY)
        if current is not None and _request_generation(current) > generation:
            logs.info("a newer request generation already has a result", object=name, generation=generation)
            return
        blob.metadata = {"request_generation": str(generation)}
        blob.upload_from_string(
            json.dumps(result, indent=2, sort_keys=True), content_type="application/json",
            if_generation_match=current.generation if current is not None else 0, timeout=GCS_CALL_S, retry=GCS_RETRY,
        )
    except gexc.PreconditionFailed as exc:
        raise TransientError(ErrorCode.INTERNAL, "the result object changed while it was written; retrying") from exc
    except gexc.GoogleAPIError as exc:
        raise TransientError(ErrorCode.INTERNAL, f"writing the result object failed: {type(exc).__name__}") from exc


def _request_generation(result_blob) -> int:
    value = str((result_blob.metadata or {}).get("request_generation", ""))
    return int(value) if value.isdigit() else 0  # a result written by hand: ours replaces it
