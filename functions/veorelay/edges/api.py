"""The public `api` function: POST /jobs, GET /jobs (edges/listing.py), GET /jobs/{id},
GET /jobs/{id}/events (edges/events.py), POST /jobs/{id}:cancel, POST /jobs/{id}/webhooks:redeliver,
GET /providers. `Prefer: wait=N` on POST /jobs and GET /jobs/{id}: edges/prefer.py.
GET /openapi.json (core/openapi.py, no key), GET /console (edges/console.py, no key);
/v1/videos... (OpenAI-compatible): edges/openai_videos.py."""
from __future__ import annotations

import math
import re
import uuid
from typing import Any

import flask

from veorelay.core.budget import BudgetExceeded
from veorelay.core.clock import utcnow
from veorelay.core.errors import ApiError, ErrorCode, TransientError
from veorelay.core.job import Job
from veorelay.core.openapi import document as openapi_document
from veorelay.core.views import job_view
from veorelay.edges import console, events, listing, openai_videos
from veorelay.edges.auth import authenticate, owned_job
from veorelay.edges.body import parse_json_body, parse_multipart
from veorelay.edges.prefer import wait_seconds
from veorelay.edges.reading import body_deadline, read_up_to
from veorelay.gcp import logs
from veorelay.runtime import Runtime
from veorelay.steps.accept import create_job
from veorelay.steps.cancel import cancel_job
from veorelay.steps.deliver import redeliver
from veorelay.steps.spend import usage_report
from veorelay.steps.watch import JobWatch, wait_until_ended

MAX_JSON_BODY_BYTES = 1024 * 1024
RETRY_AFTER_S = 2  # a 503's Retry-After unless the failure says how long
_JOB_PATH = re.compile(r"^/jobs/(?P<id>[^/:]+)(?P<cancel>:cancel)?$")
_REDELIVER_PATH = re.compile(r"^/jobs/(?P<id>[^/:]+)/webhooks:redeliver$")
_EVENTS_PATH = re.compile(r"^/jobs/(?P<id>[^/:]+)/events$")
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


def handle(request: flask.Request, rt: Runtime) -> flask.Response:
    if openai_videos.serves(request.path):  # /v1/videos...: OpenAI's shapes (edges/openai_videos.py)
        return openai_videos.handle(request, rt)
    # Cloud Run always sends a trace; locally we start one, so a job's tasks still share it.
    trace = request.headers.get("X-Cloud-Trace-Context") or request.headers.get("traceparent") or f"{uuid.uuid4().hex}/1"
    headers: dict[str, str] = {}
    with logs.context(trace_header=trace, project=rt.settings.project):
        try:
            routed = _route(request, rt)
            if isinstance(routed, flask.Response):  # a stream (GET /jobs/{id}/events), answered as it is
                return routed
            status, body, *more = routed
            headers.update(*more)
        except ApiError as exc:
            logs.info("request refused", status=exc.status, code=exc.code, field=exc.field, path=request.path)
            status, body = exc.status, exc.body()
            if isinstance(exc, BudgetExceeded):  # which cap, what is left, when it resets
                body["error"]["budget"] = exc.details()
                headers["Retry-After"] = str(exc.retry_after_s(utcnow()))
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


def _route(request: flask.Request, rt: Runtime) -> tuple[int, Any] | tuple[int, Any, dict[str, str]] | flask.Response:
    if request.path == "/openapi.json":  # the API's contract, the one route without a key (core/openapi.py)
        _allow(request, "GET")
        return 200, openapi_document()
    if request.path == "/console" or console.serves(request.path):  # the page asks for the key itself (edges/console.py)
        return console.respond(request)
    # Every route needs a key: nothing tells an anonymous caller what exists.
    client_id = authenticate(request.headers.get("Authorization"), rt.settings.api_keys, rt.settings.auth_disabled)
    path = request.path.rstrip("/") or "/"
    if path == "/jobs":
        if request.method == "GET":
            return 200, listing.list_jobs(rt, request.args, client_id)
        return _post_job(request, rt, client_id)
    if path == "/usage":  # the client's spend and jobs by day, model and provider; its budget (steps/spend.py)
        _allow(request, "GET")
        unknown = sorted(set(request.args) - {"from", "to"})
        if unknown:
            raise ApiError(400, ErrorCode.INVALID_REQUEST, f"unknown parameter {unknown[0]!r}", unknown[0])
        return 200, usage_report(rt, client_id, request.args.get("from"), request.args.get("to"))
    if path == "/providers":
        _allow(request, "GET")
        providers = {name: p.capabilities.to_dict() for name, p in rt.providers.items()}
        return 200, {"providers": providers, "default": rt.settings.default_provider}
    match = _REDELIVER_PATH.match(path)
    if match:
        _allow(request, "POST")
        return 202, redeliver(rt, _load(rt, match["id"], client_id))
    match = _EVENTS_PATH.match(path)
    if match:
        _allow(request, "GET")
        job = _load(rt, match["id"], client_id)
        return events.respond(lambda: JobWatch(rt, job["id"]), job, events.last_event_id(request.headers.get("Last-Event-ID")),
                              rt.settings.events_max_s)
    match = _JOB_PATH.match(path)
    if match:
        job_id = match["id"]
        if match["cancel"]:
            _allow(request, "POST")
            _load(rt, job_id, client_id)  # another client's job is a 404, like a missing one
            return 200, job_view(cancel_job(rt, job_id))
        _allow(request, "GET")
        job, applied = _waited(request, rt, _load(rt, job_id, client_id))
        return 200, job_view(job), applied
    raise ApiError(404, ErrorCode.NOT_FOUND, f"no such endpoint: {request.method} {path}")


def _post_job(request: flask.Request, rt: Runtime, client_id: str) -> tuple[int, Any, dict[str, str]]:
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
    job, applied = _waited(request, rt, job)
    return (202 if created else 200), job_view(job), applied


def _load(rt: Runtime, job_id: str, client_id: str) -> Job:
    job = owned_job(rt, job_id, client_id)
    if job is None:
        raise ApiError(404, ErrorCode.NOT_FOUND, "no such job", "id")
    return job


def _waited(request: flask.Request, rt: Runtime, job: Job) -> tuple[Job, dict[str, str]]:
    """`Prefer: wait=N`: the job once it is terminal, or after N s as it is then, with the
    Preference-Applied header; without a (readable) wait preference the job as it is."""
    seconds = wait_seconds(request.headers.getlist("Prefer"))
    if seconds is None:
        return job, {}
    job, waited = wait_until_ended(rt, job, seconds)
    if job.get("deleted_at") is not None:  # deleted while it was waited for
        raise ApiError(404, ErrorCode.NOT_FOUND, "no such job", "id")
    return job, ({"Preference-Applied": f"wait={seconds}", "Vary": "Prefer"} if waited else {})


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
