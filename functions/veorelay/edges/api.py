"""The public `api` function: POST /jobs, GET /jobs (edges/listing.py), GET /jobs/{id},
GET /jobs/{id}/events (edges/events.py), POST /jobs/{id}:cancel, POST /jobs/{id}/webhooks:redeliver,
GET /providers. `Prefer: wait=N` on POST /jobs and GET /jobs/{id}: edges/prefer.py.
GET /openapi.json (core/openapi.py, no key), GET /console (edges/console.py, no key);
/v1/videos... (OpenAI-compatible): edges/openai_videos.py."""
from __future__ import annotations

import re
from typing import Any

import flask

from veorelay.core.errors import ApiError, ErrorCode
from veorelay.core.job import Job
from veorelay.core.views import job_view
from veorelay.edges import console, events, listing, openai_videos
from veorelay.edges.answers import Routed, allow, answer, idempotency_key, read_job_body
from veorelay.edges.auth import authenticate, owned_job
from veorelay.edges.body import parse_multipart, read_json
from veorelay.edges.prefer import wait_seconds
from veorelay.runtime import Runtime
from veorelay.steps.watch import JobWatch, wait_until_ended

# Each route imports the steps only it uses (the job request's schema and pydantic with POST
# /jobs, the OpenAPI document with /openapi.json): an instance's first request pays for its
# own route, not for all of them (docs/BENCHMARKS.md, Cold start).

_JOB_PATH = re.compile(r"^/jobs/(?P<id>[^/:]+)(?P<cancel>:cancel)?$")
_REDELIVER_PATH = re.compile(r"^/jobs/(?P<id>[^/:]+)/webhooks:redeliver$")
_EVENTS_PATH = re.compile(r"^/jobs/(?P<id>[^/:]+)/events$")


def handle(request: flask.Request, rt: Runtime) -> flask.Response:
    if openai_videos.serves(request.path):  # /v1/videos...: OpenAI's shapes (edges/openai_videos.py)
        return openai_videos.handle(request, rt)
    return answer(request, rt, _route)


def _route(request: flask.Request, rt: Runtime) -> Routed:
    if request.path == "/openapi.json":  # the API's contract, the one route without a key (core/openapi.py)
        allow(request, "GET")
        from veorelay.core.openapi import document as openapi_document

        return 200, openapi_document()
    if console.serves(request.path):  # the page asks for the key itself (edges/console.py)
        return console.respond(request)
    # Every route needs a key: nothing tells an anonymous caller what exists.
    client_id = authenticate(request.headers.get("Authorization"), rt.settings.api_keys, rt.settings.auth_disabled)
    path = request.path.rstrip("/") or "/"
    if path == "/jobs":
        if request.method == "GET":
            return 200, listing.list_jobs(rt, request.args, client_id)
        return _post_job(request, rt, client_id)
    if path == "/usage":  # the client's spend and jobs by day, model and provider; its budget (steps/spend.py)
        allow(request, "GET")
        unknown = sorted(set(request.args) - {"from", "to"})
        if unknown:
            raise ApiError(400, ErrorCode.INVALID_REQUEST, f"unknown parameter {unknown[0]!r}", unknown[0])
        from veorelay.steps.spend import usage_report

        return 200, usage_report(rt, client_id, request.args.get("from"), request.args.get("to"))
    if path == "/providers":
        allow(request, "GET")
        providers = {name: p.capabilities.to_dict() for name, p in rt.providers.items()}
        return 200, {"providers": providers, "default": rt.settings.default_provider}
    match = _REDELIVER_PATH.match(path)
    if match:
        allow(request, "POST")
        from veorelay.steps.deliver import redeliver

        return 202, redeliver(rt, _load(rt, match["id"], client_id))
    match = _EVENTS_PATH.match(path)
    if match:
        allow(request, "GET")
        job = _load(rt, match["id"], client_id)
        return events.respond(lambda: JobWatch(rt, job["id"]), job, events.last_event_id(request.headers.get("Last-Event-ID")),
                              rt.settings.events_max_s)
    match = _JOB_PATH.match(path)
    if match:
        job_id = match["id"]
        if match["cancel"]:
            allow(request, "POST")
            _load(rt, job_id, client_id)  # another client's job is a 404, like a missing one
            from veorelay.steps.cancel import cancel_job

            return 200, job_view(cancel_job(rt, job_id))
        allow(request, "GET")
        job, applied = _waited(request, rt, _load(rt, job_id, client_id))
        return 200, job_view(job), applied
    raise ApiError(404, ErrorCode.NOT_FOUND, f"no such endpoint: {request.method} {path}")


def _post_job(request: flask.Request, rt: Runtime, client_id: str) -> tuple[int, Any, dict[str, str]]:
    from veorelay.steps.accept import create_job

    allow(request, "POST")
    key = idempotency_key(request)
    # multipart/form-data: a job with image files (edges/body.py)
    body, uploads = read_job_body(request, rt, parse_multipart, _json_body)
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


def _json_body(request: flask.Request) -> Any:
    return read_json(request, "send the job as application/json (or multipart/form-data with image files)")
