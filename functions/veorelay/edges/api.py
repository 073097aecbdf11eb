"""The public `api` function: POST /jobs, GET /jobs/{id}, POST /jobs/{id}:cancel,
POST /jobs/{id}/webhooks:redeliver, GET /providers."""
from __future__ import annotations

import math
import re
import uuid
from typing import Any

import flask

from veorelay.core.errors import ApiError, ErrorCode, TransientError
from veorelay.core.job import Job
from veorelay.core.views import job_view
from veorelay.edges.auth import authenticate
from veorelay.edges.body import parse_json_body, parse_multipart
from veorelay.edges.reading import body_deadline, read_up_to
from veorelay.gcp import logs
from veorelay.runtime import Runtime
from veorelay.steps.accept import create_job
from veorelay.steps.cancel import cancel_job
from veorelay.steps.deliver import redeliver

MAX_JSON_BODY_BYTES = 1024 * 1024
RETRY_AFTER_S = 2  # a 503's Retry-After unless the failure says how long
_JOB_PATH = re.compile(r"^/jobs/(?P<id>[^/:]+)(?P<cancel>:cancel)?$")
_REDELIVER_PATH = re.compile(r"^/jobs/(?P<id>[^/:]+)/webhooks:redeliver$")
_JOB_ID = re.compile(r"^[0-9a-f]{32}$")
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


def handle(request: flask.Request, rt: Runtime) -> flask.Response:
    # Cloud Run always sends a trace; locally we start one, so a job's tasks still share it.
    trace = request.headers.get("X-Cloud-Trace-Context") or request.headers.get("traceparent") or f"{uuid.uuid4().hex}/1"
    headers: dict[str, str] = {}
    with logs.context(trace_header=trace, project=rt.settings.project):
        try:
            status, body = _route(request, rt)
        except ApiError as exc:
            logs.info("request refused", status=exc.status, code=exc.code, field=exc.field, path=request.path)
            status, body = exc.status, exc.body()
            if status == 401:
                headers["WWW-Authenticate"] = 'Bearer realm="veo-relay"'
        except TransientError as exc:
            logs.warning("request failed, retryable", code=exc.code, error_message=exc.message)
            status, body = 503, {"error": {"code": exc.code, "message": exc.message, "field": None}}
            # Our backend (Firestore, Cloud Tasks) did not answer: the same request, sent again
            # (same Idempotency-Key), is safe.
            headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s or RETRY_AFTER_S)))
        except Exception:
            logs.error("request failed", exc_info=True, path=request.path)
            status, body = 500, {"error": {"code": ErrorCode.INTERNAL, "message": "internal error", "field": None}}
    response = flask.make_response(flask.jsonify(body), status, headers)
    # Sent as a stream (the same bytes and Content-Length): functions-framework's after_request
    # hook reads the rest of every body first unless an answer is streamed, so a 401, 413 or
    # 408 would otherwise wait for however much, however slowly, the client still sends.
    response.response = iter([response.get_data()])
    return response


def _route(request: flask.Request, rt: Runtime) -> tuple[int, Any]:
    # Every route needs a key: nothing tells an anonymous caller what exists.
    client_id = authenticate(request.headers.get("Authorization"), rt.settings.api_keys, rt.settings.auth_disabled)
    path = request.path.rstrip("/") or "/"
    if path == "/jobs":
        _allow(request, "POST")
        key = request.headers.get("Idempotency-Key")
        if key is not None and not _IDEMPOTENCY_KEY.match(key):
            raise ApiError(400, ErrorCode.INVALID_REQUEST, "Idempotency-Key must be 1-255 printable ASCII characters", "Idempotency-Key")
        # The key was checked above and a declared size over the limit is refused (413) before a
        # byte of the body is read; the body itself must arrive in time (edges/reading.py).
        multipart = request.mimetype == "multipart/form-data"
        with body_deadline(request, rt.settings.body_timeout_s * (3 if multipart else 1)):
            if multipart:  # a job with image files (edges/body.py)
                body, uploads = parse_multipart(request)
            else:
                body, uploads = _json_body(request), None
        job, created = create_job(rt, body, client_id=client_id, idempotency_key=key, uploads=uploads)
        return (202 if created else 200), job_view(job)
    if path == "/providers":
        _allow(request, "GET")
        providers = {name: p.capabilities.to_dict() for name, p in rt.providers.items()}
        return 200, {"providers": providers, "default": rt.settings.default_provider}
    match = _REDELIVER_PATH.match(path)
    if match:
        _allow(request, "POST")
        return 202, redeliver(rt, _load(rt, match["id"], client_id))
    match = _JOB_PATH.match(path)
    if match:
        job_id = match["id"]
        if match["cancel"]:
            _allow(request, "POST")
            _load(rt, job_id, client_id)  # another client's job is a 404, like a missing one
            return 200, job_view(cancel_job(rt, job_id))
        _allow(request, "GET")
        return 200, job_view(_load(rt, job_id, client_id))
    raise ApiError(404, ErrorCode.NOT_FOUND, f"no such endpoint: {request.method} {path}")


def _load(rt: Runtime, job_id: str, client_id: str) -> Job:
    job = rt.store.get(job_id) if _JOB_ID.match(job_id) else None
    # Another client's job is answered exactly like a job that does not exist.
    if job is None or job.get("client_id") != client_id:
        raise ApiError(404, ErrorCode.NOT_FOUND, "no such job", "id")
    logs.set_job(job_id)
    return job


def _allow(request: flask.Request, method: str) -> None:
    if request.method != method:
        raise ApiError(405, ErrorCode.INVALID_REQUEST, f"use {method} here")


def _json_body(request: flask.Request) -> Any:
    if (request.content_length or 0) > MAX_JSON_BODY_BYTES:
        raise ApiError(413, ErrorCode.PAYLOAD_TOO_LARGE, f"the body must be at most {MAX_JSON_BODY_BYTES} bytes")
    if request.mimetype != "application/json":
        raise ApiError(415, ErrorCode.INVALID_REQUEST, "send the job as application/json (or multipart/form-data with image files)")
    # Read at most one byte past the limit: a chunked body has no Content-Length to check.
    return parse_json_body(read_up_to(request, MAX_JSON_BODY_BYTES + 1), MAX_JSON_BODY_BYTES)
