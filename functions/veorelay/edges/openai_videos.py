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

import re
from typing import Any

import flask

from veorelay.core import openai_video as ov
from veorelay.core.errors import ApiError, ErrorCode
from veorelay.core.job import Job, JobStatus, seconds_running
from veorelay.core.request_limits import MAX_IMAGE_BYTES
from veorelay.edges import body as bodies
from veorelay.edges.answers import allow, answer, idempotency_key, read_job_body
from veorelay.edges.auth import JOB_ID, authenticate, owned_job
from veorelay.gcp import logs
from veorelay.runtime import Runtime

# Steps are imported by the routes that use them (creating: the request schema and pydantic;
# deleting: the finalize step's object names): a first request pays for its own route.

PREFIX = "/v1/"
UPLOAD_PART = "input_reference"
_VIDEO = re.compile(r"^/v1/videos/(?P<id>[^/]+)$")
_CONTENT = re.compile(r"^/v1/videos/(?P<id>[^/]+)/content$")
_REMIX = re.compile(r"^/v1/videos/(?P<id>[^/]+)/remix$")


def serves(path: str) -> bool:
    """Whether `path` is one of this module's (everything under /v1/ answers in OpenAI's shape)."""
    return path.startswith(PREFIX) or path.rstrip("/") == "/v1"


def handle(request: flask.Request, rt: Runtime) -> flask.Response:
    return answer(request, rt, _route, ov.openai_error_body)  # refusals in OpenAI's error shape


Answer = tuple[int, Any, dict[str, str]]


def _route(request: flask.Request, rt: Runtime) -> Answer | flask.Response:
    client_id = authenticate(request.headers.get("Authorization"), rt.settings.api_keys, rt.settings.auth_disabled)
    path = request.path.rstrip("/")
    method = request.method
    if path == "/v1/videos":
        allow(request, "GET", "POST")
        return _create(request, rt, client_id) if method == "POST" else _list(request, rt, client_id)
    if path == "/v1/videos/extensions":
        allow(request, "POST")
        return _extend(request, rt, client_id)
    if path == "/v1/videos/edits":
        raise ov.OpenAIError(400, ErrorCode.UNSUPPORTED_OPTION, ov.UNSUPPORTED_ROUTES["edits"], None)
    if path == "/v1/videos/characters" or path.startswith("/v1/videos/characters/"):
        raise ov.OpenAIError(400, ErrorCode.UNSUPPORTED_OPTION, ov.UNSUPPORTED_ROUTES["characters"], None)
    if _REMIX.match(path):
        allow(request, "POST")
        raise ov.OpenAIError(400, ErrorCode.UNSUPPORTED_OPTION, ov.UNSUPPORTED_ROUTES["remix"], None)
    match = _CONTENT.match(path)
    if match:
        allow(request, "GET")
        return _content(request, rt, _load(rt, match["id"], client_id))
    match = _VIDEO.match(path)
    if match is None:
        raise ApiError(404, ErrorCode.NOT_FOUND, f"no such endpoint: {method} {path}")
    job_id = match["id"]
    allow(request, "GET", "DELETE")
    if method == "DELETE":
        if not JOB_ID.match(job_id):
            raise ApiError(404, ErrorCode.NOT_FOUND, "no such video", "video_id")
        logs.set_job(job_id)
        try:
            from veorelay.steps.delete import delete_job

            job = delete_job(rt, client_id, job_id)
        except ApiError as refused:
            if refused.status == 404:  # as GET answers it: one wording for a video that is not the client's
                raise ApiError(404, ErrorCode.NOT_FOUND, "no such video", "video_id") from None
            raise
        logs.info("video deleted", job_id=job["id"])
        return 200, ov.deleted_object(job["id"]), {}
    job = _load(rt, job_id, client_id)
    return 200, ov.video_object(job), _poll_headers(rt, job)


def _create(request: flask.Request, rt: Runtime, client_id: str) -> Answer:
    key = idempotency_key(request)
    body, uploads = read_job_body(request, rt, _multipart, _json)
    job_body = ov.create_to_job_body(body, UPLOAD_PART if uploads else None)
    from veorelay.steps.accept import create_job

    job, _created = create_job(rt, job_body, client_id=client_id, idempotency_key=key, uploads=uploads)
    return 200, ov.video_object(job), _poll_headers(rt, job)


def _extend(request: flask.Request, rt: Runtime, client_id: str) -> Answer:
    key = idempotency_key(request)
    body, uploads = read_job_body(request, rt, _multipart, _json)
    if uploads:
        raise ov.OpenAIError(400, ErrorCode.UNSUPPORTED_OPTION, "an uploaded video cannot be extended: give "
                             "video={\"id\": ...} of a completed video", "video")
    job_body = ov.extend_to_job_body(body)
    from veorelay.steps.accept import create_job

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
    from veorelay.gcp.reader import open_object

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
    from veorelay.steps.poll import duration_stats

    poll = rt.settings.poll
    times = duration_stats(rt).plan(job["provider"], job["model"]).times_for(job["id"]) if status == JobStatus.RUNNING else ()
    ms = ov.poll_after_ms(status, times, seconds_running(job), poll.min_delay_s, poll.max_delay_s)
    return {"openai-poll-after-ms": str(ms)} if ms is not None else {}


def _json(request: flask.Request) -> dict[str, Any]:
    return bodies.read_json(request, "send the request as multipart/form-data or application/json")


def _multipart(request: flask.Request) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The SDK's multipart create: text fields (form_to_body) and at most one file part,
    `input_reference`, within the same limits as a native multipart job (edges/body.py)."""
    form, files = bodies.form_parts(request, "a multipart request", "the multipart request or one of its text fields is too large")
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
