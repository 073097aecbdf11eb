"""The OpenAI-compatible videos API on the public `api` function (`/v1/videos...`), for the
official `openai` SDK and the tools that speak it, with the same API keys (Authorization: Bearer).

  POST   /v1/videos                    create (multipart/form-data as the SDK sends it, or JSON)
  GET    /v1/videos                    list (after, limit, order)
  GET    /v1/videos/{id}               retrieve (answers carry `openai-poll-after-ms`)
  DELETE /v1/videos/{id}               delete: its videos and posters removed (steps/delete.py)
  GET    /v1/videos/{id}/content       the video streamed from the bucket (variant=thumbnail: the poster)
  POST   /v1/videos/extensions         extend a completed video (the SDK's `extend`)
  POST   /v1/videos/{id}/remix, /v1/videos/edits, /v1/videos/characters...: 400, Veo cannot

Every refusal is in OpenAI's error shape, {error: {message, type, param, code}}, with veo-relay's
error code. The mapping itself is core/openai_video.py.
"""
from __future__ import annotations

import math
import re
import uuid
from typing import Any

import flask
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from veorelay.core import openai_video as ov
from veorelay.core.budget import BudgetExceeded
from veorelay.core.clock import utcnow
from veorelay.core.errors import ApiError, ErrorCode, TransientError
from veorelay.core.job import Job, JobStatus
from veorelay.core.request import MAX_IMAGE_BYTES
from veorelay.edges import body as bodies
from veorelay.edges.auth import JOB_ID, authenticate, owned_job
from veorelay.edges.reading import body_deadline, read_up_to
from veorelay.gcp import logs
from veorelay.gcp.reader import open_object
from veorelay.runtime import Runtime
from veorelay.steps.accept import create_job
from veorelay.steps.delete import delete_job
from veorelay.steps.poll import duration_stats, seconds_running

PREFIX = "/v1/"
RETRY_AFTER_S = 2
UPLOAD_PART = "input_reference"
_VIDEO = re.compile(r"^/v1/videos/(?P<id>[^/]+)$")
_CONTENT = re.compile(r"^/v1/videos/(?P<id>[^/]+)/content$")
_REMIX = re.compile(r"^/v1/videos/(?P<id>[^/]+)/remix$")
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


def serves(path: str) -> bool:
    """Whether `path` is one of this module's (everything under /v1/ answers in OpenAI's shape)."""
    return path.startswith(PREFIX) or path.rstrip("/") == "/v1"


def handle(request: flask.Request, rt: Runtime) -> flask.Response:
    trace = request.headers.get("X-Cloud-Trace-Context") or request.headers.get("traceparent") or f"{uuid.uuid4().hex}/1"
    headers: dict[str, str] = {}
    with logs.context(trace_header=trace, project=rt.settings.project):
        try:
            answer = _route(request, rt)
            if isinstance(answer, flask.Response):
                return answer
            status, body, headers = answer
        except ApiError as exc:
            logs.info("request refused", status=exc.status, code=exc.code, field=exc.field, path=request.path)
            status, body = exc.status, ov.openai_error_body(exc.status, exc.code, exc.message, exc.field)
            if isinstance(exc, BudgetExceeded):  # as on POST /jobs: which cap, what is left, when it resets
                body["error"]["budget"] = exc.details()
                headers["Retry-After"] = str(exc.retry_after_s(utcnow()))
            if status == 401:
                headers["WWW-Authenticate"] = 'Bearer realm="veo-relay"'
        except TransientError as exc:
            logs.warning("request failed, retryable", code=exc.code, error_message=exc.message)
            status, body = 503, ov.openai_error_body(503, exc.code, exc.message, None)
            headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s or RETRY_AFTER_S)))
        except Exception:
            logs.error("request failed", exc_info=True, path=request.path)
            status, body = 500, ov.openai_error_body(500, ErrorCode.INTERNAL, "internal error", None)
    response = flask.make_response(flask.jsonify(body), status, headers)
    # As edges/api.py: sent as a stream, so a refusal does not wait for the rest of a body.
    response.response = iter([response.get_data()])
    return response


Answer = tuple[int, Any, dict[str, str]]


def _route(request: flask.Request, rt: Runtime) -> Answer | flask.Response:
    client_id = authenticate(request.headers.get("Authorization"), rt.settings.api_keys, rt.settings.auth_disabled)
    path = request.path.rstrip("/")
    method = request.method
    if path == "/v1/videos":
        _allow(request, "GET", "POST")
        return _create(request, rt, client_id) if method == "POST" else _list(request, rt, client_id)
    if path == "/v1/videos/extensions":
        _allow(request, "POST")
        return _extend(request, rt, client_id)
    if path == "/v1/videos/edits":
        raise ov.OpenAIError(400, ErrorCode.UNSUPPORTED_OPTION, ov.UNSUPPORTED_ROUTES["edits"], None)
    if path == "/v1/videos/characters" or path.startswith("/v1/videos/characters/"):
        raise ov.OpenAIError(400, ErrorCode.UNSUPPORTED_OPTION, ov.UNSUPPORTED_ROUTES["characters"], None)
    if _REMIX.match(path):
        _allow(request, "POST")
        raise ov.OpenAIError(400, ErrorCode.UNSUPPORTED_OPTION, ov.UNSUPPORTED_ROUTES["remix"], None)
    match = _CONTENT.match(path)
    if match:
        _allow(request, "GET")
        return _content(request, rt, _load(rt, match["id"], client_id))
    match = _VIDEO.match(path)
    if match is None:
        raise ApiError(404, ErrorCode.NOT_FOUND, f"no such endpoint: {method} {path}")
    job_id = match["id"]
    _allow(request, "GET", "DELETE")
    if method == "DELETE":
        if not JOB_ID.match(job_id):
            raise ApiError(404, ErrorCode.NOT_FOUND, "no such video", "video_id")
        logs.set_job(job_id)
        job = delete_job(rt, client_id, job_id)
        logs.info("video deleted", job_id=job["id"])
        return 200, ov.deleted_object(job["id"]), {}
    job = _load(rt, job_id, client_id)
    return 200, ov.video_object(job), _poll_headers(rt, job)


def _create(request: flask.Request, rt: Runtime, client_id: str) -> Answer:
    key = _idempotency_key(request)
    multipart = request.mimetype == "multipart/form-data"
    with body_deadline(request, rt.settings.body_timeout_s * (3 if multipart else 1)):
        body, uploads = _multipart(request) if multipart else (_json(request), None)
    job_body = ov.create_to_job_body(body, UPLOAD_PART if uploads else None)
    job, _created = create_job(rt, job_body, client_id=client_id, idempotency_key=key, uploads=uploads)
    return 200, ov.video_object(job), _poll_headers(rt, job)


def _extend(request: flask.Request, rt: Runtime, client_id: str) -> Answer:
    key = _idempotency_key(request)
    multipart = request.mimetype == "multipart/form-data"
    with body_deadline(request, rt.settings.body_timeout_s * (3 if multipart else 1)):
        body, uploads = _multipart(request) if multipart else (_json(request), None)
    if uploads:
        raise ov.OpenAIError(400, ErrorCode.UNSUPPORTED_OPTION, "an uploaded video cannot be extended: give "
                             "video={\"id\": ...} of a completed video", "video")
    job_body = ov.extend_to_job_body(body)
    _load(rt, job_body["extend"]["job_id"], client_id)  # another client's video is a 404, like a missing one
    try:
        job, _created = create_job(rt, job_body, client_id=client_id, idempotency_key=key)
    except ApiError as exc:
        if exc.code == ErrorCode.INVALID_REQUEST and exc.field == "extend" and exc.message.startswith("unknown field"):
            # The request schema of this deployment has no `extend` yet (core/request.py).
            raise ov.OpenAIError(400, ErrorCode.UNSUPPORTED_OPTION, "extending a video is not available on this "
                                 "deployment (its request schema has no `extend`)", "video") from None
        raise
    return 200, ov.video_object(job), _poll_headers(rt, job)


def _list(request: flask.Request, rt: Runtime, client_id: str) -> Answer:
    after, limit, order = ov.list_params(request.args.to_dict(flat=True))
    jobs, has_more = rt.store.list_jobs(client_id, after=after, limit=limit, order="asc" if order == "asc" else "desc")
    return 200, ov.list_page(jobs, has_more), {}


def _content(request: flask.Request, rt: Runtime, job: Job) -> flask.Response:
    args = request.args.to_dict(flat=True)
    unknown = sorted(set(args) - {"variant", "index"})
    if unknown:
        raise ov.OpenAIError(400, ErrorCode.INVALID_REQUEST, f"unknown query parameter {unknown[0]!r} (variant, index)",
                             unknown[0])
    variant = args.get("variant") or "video"
    if variant == "spritesheet":
        raise ov.OpenAIError(400, ErrorCode.UNSUPPORTED_OPTION, ov.UNSUPPORTED_ROUTES["spritesheet"], "variant")
    if variant not in ("video", "thumbnail"):
        raise ov.OpenAIError(400, ErrorCode.INVALID_REQUEST, f"variant must be video or thumbnail; got {variant!r}",
                             "variant")
    if job["status"] != JobStatus.SUCCEEDED:
        raise ov.OpenAIError(409, ErrorCode.CONFLICT, f"the video is not ready: it is {ov.video_object(job)['status']}"
                             f" ({job['status']})", None)
    raw_index = args.get("index", "0")
    outputs = {int(o["index"]): o for o in job.get("outputs") or []}
    if not re.fullmatch(r"[0-9]{1,2}", raw_index) or int(raw_index) not in outputs:
        raise ov.OpenAIError(404, ErrorCode.NOT_FOUND, f"the job has no output {raw_index!r} (it has {len(outputs)})",
                             "index")
    output: dict[str, Any] = dict(outputs[int(raw_index)])
    if variant == "thumbnail":
        poster = output.get("poster")
        if not isinstance(poster, dict) or not poster.get("name"):
            raise ov.OpenAIError(404, ErrorCode.NOT_FOUND, "this video has no poster image (thumbnail)", "variant")
        name, content_type = str(poster["name"]), "image/jpeg"
    else:
        name, content_type = str(output["name"]), "video/mp4"
    if not name.startswith(f"{rt.settings.output_prefix}/{job['id']}/"):
        raise ov.OpenAIError(404, ErrorCode.NOT_FOUND, "the video is no longer stored", None)
    stream = open_object(rt.bucket, name)
    if stream is None:
        raise ov.OpenAIError(404, ErrorCode.NOT_FOUND, "the video is no longer stored", None)
    logs.info("video downloaded", variant=variant, object=name, size=stream.size)
    extension = "jpg" if variant == "thumbnail" else "mp4"
    return flask.Response(stream.chunks(), status=200, content_type=content_type, headers={
        "Content-Length": str(stream.size),
        "Content-Disposition": f'attachment; filename="{job["id"]}-{raw_index}.{extension}"',
    })


def _load(rt: Runtime, job_id: str, client_id: str) -> Job:
    job = owned_job(rt, job_id, client_id)
    if job is None:
        raise ApiError(404, ErrorCode.NOT_FOUND, "no such video", "video_id")
    return job


def _poll_headers(rt: Runtime, job: Job) -> dict[str, str]:
    """`openai-poll-after-ms` on a video not ended yet: the SDK's poll() sleeps that long."""
    status = JobStatus(job["status"])
    if status.terminal:
        return {}
    poll = rt.settings.poll
    times = duration_stats(rt).plan(job["provider"], job["model"]).times if status == JobStatus.RUNNING else ()
    ms = ov.poll_after_ms(status, times, seconds_running(job), poll.min_delay_s, poll.max_delay_s)
    return {"openai-poll-after-ms": str(ms)} if ms is not None else {}


def _allow(request: flask.Request, *methods: str) -> None:
    if request.method not in methods:
        raise ApiError(405, ErrorCode.INVALID_REQUEST, f"use {' or '.join(methods)} here")


def _idempotency_key(request: flask.Request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is not None and not _IDEMPOTENCY_KEY.match(key):
        raise ApiError(400, ErrorCode.INVALID_REQUEST, "Idempotency-Key must be 1-255 printable ASCII characters",
                       "Idempotency-Key")
    return key


def _json(request: flask.Request) -> dict[str, Any]:
    if (request.content_length or 0) > bodies.MAX_JSON_BYTES:
        raise ApiError(413, ErrorCode.PAYLOAD_TOO_LARGE, f"the body must be at most {bodies.MAX_JSON_BYTES} bytes")
    if request.mimetype != "application/json":
        raise ApiError(415, ErrorCode.INVALID_REQUEST, "send the request as multipart/form-data or application/json")
    return bodies.parse_json_body(read_up_to(request, bodies.MAX_JSON_BYTES + 1), bodies.MAX_JSON_BYTES)


def _multipart(request: flask.Request) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The SDK's multipart create: text fields (form_to_body) and at most one file part,
    `input_reference`, within the same limits as a native multipart job (edges/body.py)."""
    if (request.content_length or 0) > bodies.MAX_MULTIPART_BYTES:
        raise ApiError(413, ErrorCode.PAYLOAD_TOO_LARGE, f"a multipart request must be at most {bodies.MAX_MULTIPART_BYTES} bytes")
    request.max_content_length = bodies.MAX_MULTIPART_BYTES
    request.max_form_memory_size = bodies.MAX_JSON_BYTES
    request.form_data_parser_class = bodies._BytesFormParser  # text fields as sent (edges/body.py)
    try:
        form, files = request.form, request.files
    except RequestEntityTooLarge:
        raise ApiError(413, ErrorCode.PAYLOAD_TOO_LARGE, "the multipart request or one of its text fields is too large") from None
    except HTTPException:
        raise ApiError(400, ErrorCode.INVALID_REQUEST, "the multipart/form-data body cannot be read") from None
    fields = []
    for name, value in form.items(multi=True):
        try:
            fields.append((name, value.encode("latin-1").decode("utf-8")))
        except UnicodeError:
            raise ApiError(400, ErrorCode.INVALID_REQUEST, f"the field {name!r} is not UTF-8 text", name) from None
    body = ov.form_to_body(fields)
    uploads: dict[str, bytes] = {}
    for part, storage_file in files.items(multi=True):
        if part != UPLOAD_PART:
            raise ApiError(400, ErrorCode.INVALID_REQUEST, f"unexpected file part {part!r} (only {UPLOAD_PART})", part)
        if part in uploads:
            raise ApiError(400, ErrorCode.INVALID_REQUEST, f"the file part {part!r} is given twice", part)
        data = storage_file.read(MAX_IMAGE_BYTES + 1)
        if len(data) > MAX_IMAGE_BYTES:
            raise ApiError(413, ErrorCode.PAYLOAD_TOO_LARGE, f"{part} is larger than {MAX_IMAGE_BYTES} bytes", part)
        uploads[part] = data
    return body, uploads
