"""The OpenAPI 3.1 document of the public `api` function (GET /openapi.json): every route, native
and OpenAI-compatible, with its request, response and error schemas. Pure, no I/O.

The job request's schema is GenerationRequest's own (pydantic's JSON Schema, so it follows
core/request.py as it changes); the answers' schemas are written here, after core/views.py,
core/openai_video.py and the edges that build them. A route is one `Route` entry in ROUTES
(tests/unit/test_openapi.py checks that every path the api function dispatches is in it, and the
schemathesis run in tests/integration/test_openapi_contract.py that the answers match it).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from veorelay.core.job import JOB_ID_PATTERN, JobStatus
from veorelay.core.openai_video import SIZES, STATUS, VEORELAY_FIELDS
from veorelay.core.request import GenerationRequest

OPENAPI_VERSION = "3.1.0"
JOB_ID = {"type": "string", "pattern": JOB_ID_PATTERN, "description": "a job id: 32 hex digits"}
_NULLABLE_STRING = {"type": ["string", "null"]}
_TIMESTAMP = {"type": "string", "format": "date-time"}
_NULLABLE_TIMESTAMP = {"type": ["string", "null"], "format": "date-time"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


# ---------------------------------------------------------------------------------------------
# Answer schemas (what core/views.py, core/openai_video.py and the edges build)

ERROR = {
    "type": "object", "required": ["error"], "description": "veo-relay's error (core/errors.py ApiError)",
    "properties": {"error": {"type": "object", "required": ["code", "message", "field"], "properties": {
        "code": {"type": "string", "description": "one of core/errors.py ErrorCode"},
        "message": {"type": "string"},
        "field": {**_NULLABLE_STRING, "description": "the request field, header or parameter at fault"},
    }}},
}
OPENAI_ERROR = {
    "type": "object", "required": ["error"], "description": "OpenAI's error shape, on /v1/ routes",
    "properties": {"error": {"type": "object", "required": ["message", "type", "param", "code"], "properties": {
        "message": {"type": "string"},
        "type": {"type": "string", "enum": ["invalid_request_error", "authentication_error", "permission_error",
                                            "not_found_error", "rate_limit_error", "server_error"]},
        "param": _NULLABLE_STRING,
        "code": {"type": "string", "description": "veo-relay's error code (core/errors.py ErrorCode)"},
    }}},
}
OUTPUT = {
    "type": "object", "required": ["index", "uri", "name", "size", "crc32c", "md5", "content_type"],
    "properties": {
        "index": {"type": "integer", "minimum": 0},
        "uri": {"type": "string", "description": "gs://BUCKET/<output prefix>/<job id>/<index>.mp4"},
        "name": {"type": "string"},
        "size": {"type": "integer", "minimum": 0},
        "crc32c": {"type": "string", "description": "base64 CRC32C (big-endian) of the object, as Cloud Storage reports it"},
        "md5": {"type": ["string", "null"], "description": "base64 MD5 of the object, as Cloud Storage reports it"},
        "sha256": {"type": "string", "description": "hex SHA-256, only where the deployment records it (VEO_OUTPUT_SHA256)"},
        "content_type": {"type": "string"},
        "signed_url": {"type": "string", "description": "in webhook events only: a V4 signed URL"},
        "media": {"type": ["object", "null"]},
        "poster": {"type": ["object", "null"], "description": "the poster image <index>.jpg beside the video"},
        "provider_uri": {"type": "string", "description": "the provider's own file URI (Gemini API), used to extend the video"},
    },
}
JOB_COST: dict[str, Any] = {
    "type": ["object", "null"], "description": "core/cost.py: the list-price estimate; billed once ended",
    "required": ["estimated_usd", "currency", "basis", "billed"], "properties": {
        "estimated_usd": {"type": ["number", "null"]}, "currency": {"type": "string"},
        "basis": {"type": "object"}, "billed": {"type": ["boolean", "null"]}}}
JOB = {
    "type": "object", "description": "a job as GET /jobs/{id} shows it (core/views.py job_view)",
    "required": ["id", "status", "provider", "model", "request", "progress", "outputs", "error", "created_at",
                 "updated_at", "timestamps", "webhook", "links"],
    "properties": {
        "id": JOB_ID,
        "status": {"type": "string", "enum": [str(s) for s in JobStatus]},
        "provider": {"type": "string"},
        "model": {"type": "string"},
        "request": {"type": "object", "description": "the request as accepted; images as gs:// inputs"},
        "metadata": {"type": ["object", "null"]},
        "progress": {"type": "object", "required": ["percent", "stage"], "properties": {
            "percent": {"type": ["integer", "null"], "minimum": 0, "maximum": 100}, "stage": {"type": "string"}}},
        "outputs": {"type": "array", "items": _ref("Output")},
        "error": {"type": ["object", "null"], "properties": {"code": {"type": "string"}, "message": {"type": "string"}}},
        "created_at": _TIMESTAMP,
        "updated_at": _TIMESTAMP,
        "deadline_at": _NULLABLE_TIMESTAMP,
        "timestamps": {"type": "object", "additionalProperties": _TIMESTAMP},
        "webhook": {"type": "object", "required": ["url", "events", "deliveries"], "properties": {
            "url": _NULLABLE_STRING, "events": {"type": "array", "items": {"type": "string"}},
            "deliveries": {"type": "array", "items": {"type": "object"}}}},
        "links": {"type": "object", "additionalProperties": {"type": "string"}},
        "cost": JOB_COST,
        "attempts": {"type": "array", "description": "providers that refused the job before one accepted it (failover)",
                     "items": {"type": "object", "required": ["provider", "error_code", "at"]}},
        "fallback_providers": {"type": "array", "items": {"type": "string"}},
        "extends": {"type": ["object", "null"], "description": "core/extension.py: the job whose video this one extends",
                    "required": ["job_id", "output", "root_job_id", "depth"], "properties": {
                        "job_id": JOB_ID, "output": {"type": "integer"}, "root_job_id": JOB_ID, "depth": {"type": "integer"},
                        "source_uri": _NULLABLE_STRING, "source_seconds": {"type": "number"},
                        "duration_seconds": {"type": "number"}, "added_seconds": {"type": "integer"}}},
    },
}
USAGE = {
    "type": "object", "description": "GET /usage (steps/spend.py usage_report)",
    "required": ["client_id", "from", "to", "currency", "total", "days", "budget"],
    "properties": {
        "client_id": {"type": "string"}, "from": {"type": "string", "format": "date"}, "to": {"type": "string", "format": "date"},
        "currency": {"type": "string"},
        "total": {"type": "object", "required": ["jobs", "billed_jobs", "usd", "by_model", "by_provider"]},
        "days": {"type": "array", "items": {"type": "object", "required": ["day", "jobs", "billed_jobs", "usd"]}},
        "budget": {"type": "object", "required": ["daily_usd", "monthly_usd", "max_in_flight", "day_usd", "month_usd", "in_flight"]},
    },
}
JOB_LIST = {
    "type": "object", "required": ["jobs", "next_cursor"],
    "properties": {"jobs": {"type": "array", "items": _ref("Job")},
                   "next_cursor": {**_NULLABLE_STRING, "description": "pass as `cursor` for the next page; null on the last"}},
}
PROVIDERS = {
    "type": "object", "required": ["providers", "default"],
    "properties": {"providers": {"type": "object", "additionalProperties": {"type": "object", "description":
                                                                             "core/capabilities.py Capabilities"}},
                   "default": {"type": "string"}},
}
VIDEO = {
    "type": "object", "description": "OpenAI's video object (the openai SDK's `Video`), with veo-relay's fields beside it",
    "required": ["id", "object", "model", "status", "progress", "created_at", "seconds", "size"],
    "properties": {
        "id": JOB_ID,
        "object": {"const": "video"},
        "model": {"type": "string"},
        "status": {"type": "string", "enum": sorted(set(STATUS.values()))},
        "progress": {"type": "integer", "minimum": 0, "maximum": 100},
        "created_at": {"type": "integer", "description": "unix seconds"},
        "completed_at": {"type": ["integer", "null"]},
        "expires_at": {"type": ["integer", "null"], "description": "when the record is removed (unix seconds)"},
        "error": {"type": ["object", "null"], "required": ["code", "message"],
                  "properties": {"code": {"type": "string"}, "message": {"type": "string"}}},
        "seconds": {"type": "string"},
        "size": {"type": "string", "enum": list(SIZES)},
        "prompt": _NULLABLE_STRING,
        "remixed_from_video_id": {"type": "null"},
        "provider": _NULLABLE_STRING,
        "metadata": {"type": ["object", "null"]},
        "veorelay_status": {"type": "string", "enum": [str(s) for s in JobStatus]},
        "cost": JOB_COST,
    },
}
VIDEO_LIST = {
    "type": "object", "required": ["object", "data", "has_more", "first_id", "last_id"],
    "properties": {"object": {"const": "list"}, "data": {"type": "array", "items": _ref("Video")},
                   "has_more": {"type": "boolean"}, "first_id": _NULLABLE_STRING, "last_id": _NULLABLE_STRING},
}
VIDEO_DELETED = {
    "type": "object", "required": ["id", "object", "deleted"],
    "properties": {"id": JOB_ID, "object": {"const": "video.deleted"}, "deleted": {"const": True}},
}
_VEORELAY_EXTRAS = {
    "provider": {"type": "string"}, "negative_prompt": {"type": "string"}, "webhook_url": {"type": "string"},
    "webhook_events": {"type": "array", "items": {"type": "string"}}, "metadata": {"type": "object"},
    "seed": {"type": "integer"}, "generate_audio": {"type": "boolean"}, "person_generation": {"type": "string"},
    "sample_count": {"type": "integer"}, "deadline_seconds": {"type": "integer"},
}
_OPENAI_CREATE = {
    "prompt": {"type": "string", "minLength": 1, "maxLength": 4000},
    "model": {"type": "string", "description": "a Veo model of the provider (GET /providers); omitted: its default"},
    "seconds": {"type": "string", "pattern": "^[1-9][0-9]?$", "description": "the clip's length, as the SDK sends it (\"8\")"},
    "size": {"type": "string", "enum": list(SIZES)},
}
VIDEO_CREATE_JSON = {
    "type": "object", "required": ["prompt"], "additionalProperties": False,
    "description": f"OpenAI's create fields, and veo-relay's own beside them ({', '.join(VEORELAY_FIELDS)})",
    "properties": {**_OPENAI_CREATE, "input_reference": {"type": "object", "required": ["image_url"], "additionalProperties": False,
                                                         "properties": {"image_url": {"type": "string"}}},
                   **_VEORELAY_EXTRAS},
}
VIDEO_CREATE_MULTIPART = {
    "type": "object", "required": ["prompt"],
    "description": "as the openai SDK sends it: text fields (nested extra_body fields in bracket notation, "
                   "metadata[key]=value), the first frame as the file part `input_reference`",
    "properties": {**_OPENAI_CREATE, "input_reference": {"type": "string", "contentMediaType": "application/octet-stream"},
                   "provider": {"type": "string"}, "negative_prompt": {"type": "string"}, "webhook_url": {"type": "string"}},
}
VIDEO_EXTEND = {
    "type": "object", "required": ["prompt", "seconds", "video"],
    "properties": {"prompt": {"type": "string", "minLength": 1}, "seconds": {"type": "string", "pattern": "^[1-9][0-9]?$"},
                   "video": {"type": "object", "required": ["id"], "additionalProperties": False, "properties": {"id": JOB_ID}}},
}
JOB_MULTIPART = {
    "type": "object", "required": ["request"],
    "description": "the job's JSON in the part `request`; image files in parts named by an image field's "
                   "{\"upload\": \"<part>\"}, or `image`, `last_frame`, `reference_images` (repeated)",
    "properties": {"request": {"type": "string", "contentMediaType": "application/json"},
                   "image": {"type": "string", "contentMediaType": "application/octet-stream"},
                   "last_frame": {"type": "string", "contentMediaType": "application/octet-stream"}},
}

SCHEMAS: dict[str, dict[str, Any]] = {
    "Error": ERROR, "OpenAIError": OPENAI_ERROR, "Output": OUTPUT, "Job": JOB, "JobList": JOB_LIST, "Usage": USAGE,
    "Providers": PROVIDERS, "Video": VIDEO, "VideoList": VIDEO_LIST, "VideoDeleted": VIDEO_DELETED,
    "VideoCreate": VIDEO_CREATE_JSON, "VideoCreateMultipart": VIDEO_CREATE_MULTIPART, "VideoExtend": VIDEO_EXTEND,
    "JobMultipart": JOB_MULTIPART,
}

# ---------------------------------------------------------------------------------------------
# Parameters

ID_PARAM = {"name": "id", "in": "path", "required": True, "schema": JOB_ID}
VIDEO_ID_PARAM = {"name": "video_id", "in": "path", "required": True, "schema": JOB_ID}
IDEMPOTENCY_KEY = {"name": "Idempotency-Key", "in": "header", "required": False,
                   "description": "the same key and body again answer the first job (at least 24 h)",
                   "schema": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,255}$"}}
PREFER_WAIT = {"name": "Prefer", "in": "header", "required": False,
               "description": "wait=N (1..60): answer once the job has ended, or after N seconds",
               "schema": {"type": "string", "pattern": "^wait=([1-9]|[1-5][0-9]|60)$"}}


def _query(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, **({"description": description} if description else {})}


# ---------------------------------------------------------------------------------------------
# Routes


@dataclass(frozen=True)
class Route:
    """One operation. `responses`: status -> (description, schema name or None, media type);
    `errors`: the error statuses it answers (in the error shape of its family)."""

    method: str
    path: str
    operation_id: str
    summary: str
    responses: dict[int, tuple[str, str | None, str]]
    errors: tuple[int, ...] = ()
    request: dict[str, str] | None = None  # media type -> schema name
    parameters: tuple[dict[str, Any], ...] = ()
    auth: bool = True
    openai: bool = False  # errors in OpenAI's shape
    headers: dict[int, dict[str, Any]] = field(default_factory=dict)  # status -> response headers
    tag: str = "jobs"


JSON = "application/json"
_POLL_AFTER = {"openai-poll-after-ms": {"description": "while the video is queued or in progress: when asking again is "
                                                       "worth it (veo-relay's learned schedule)",
                                        "schema": {"type": "string", "pattern": "^[0-9]+$"}}}
_PREFERENCE_APPLIED = {"Preference-Applied": {"description": "wait=N, when Prefer: wait was honoured",
                                              "schema": {"type": "string"}}}
# Every route needs a key (401) but this document; any backend hiccup is a 503 with Retry-After.
_COMMON = (401, 503)

ROUTES: list[Route] = [
    Route("post", "/jobs", "createJob", "Submit a video generation job",
          {202: ("the job, accepted", "Job", JSON), 200: ("an Idempotency-Key replay: the first job (or, with Prefer: wait, "
                                                         "the job as it is now)", "Job", JSON)},
          (400, 408, 409, 413, 415, 429, *_COMMON), {JSON: "GenerationRequest", "multipart/form-data": "JobMultipart"},
          (IDEMPOTENCY_KEY, PREFER_WAIT), headers={200: _PREFERENCE_APPLIED, 202: _PREFERENCE_APPLIED}),
    Route("get", "/jobs", "listJobs", "The client's own jobs, newest first, one page at a time",
          {200: ("a page of jobs", "JobList", JSON)}, (400, *_COMMON), None, (
              _query("status", {"type": "string", "enum": [str(s) for s in JobStatus]}),
              _query("provider", {"type": "string"}),
              _query("created_after", {"type": "string", "format": "date-time"}, "strictly after (RFC 3339, with a zone)"),
              _query("created_before", {"type": "string", "format": "date-time"}, "strictly before"),
              _query("order", {"type": "string", "enum": ["desc", "asc"]}),
              _query("limit", {"type": "integer", "minimum": 1, "maximum": 100}),
              _query("cursor", {"type": "string", "maxLength": 1024}, "a page's next_cursor"))),
    Route("get", "/jobs/{id}", "getJob", "A job", {200: ("the job", "Job", JSON)}, (400, 404, *_COMMON), None,
          (ID_PARAM, PREFER_WAIT), headers={200: _PREFERENCE_APPLIED}),
    Route("get", "/jobs/{id}/events", "jobEvents", "The job's changes as Server-Sent Events, until it ends",
          {200: ("text/event-stream: id (updated_at in microseconds), event (job.<status>, job.progress), data (the Job)",
                 "EventStream", "text/event-stream"), 204: ("the job had ended before Last-Event-ID: nothing more", None, "")},
          (400, 404, *_COMMON), None,
          (ID_PARAM, {"name": "Last-Event-ID", "in": "header", "required": False, "schema": {"type": "string"}})),
    Route("post", "/jobs/{id}:cancel", "cancelJob", "Cancel a job", {200: ("the job, cancelled", "Job", JSON)},
          (404, 409, *_COMMON), None, (ID_PARAM,)),
    Route("post", "/jobs/{id}/webhooks:redeliver", "redeliverWebhook", "Send the job's last webhook event again",
          {202: ("queued; the job", "Job", JSON)}, (400, 404, 409, *_COMMON), None, (ID_PARAM,)),
    Route("get", "/providers", "listProviders", "The enabled providers and what each can do",
          {200: ("capabilities by provider", "Providers", JSON)}, _COMMON, tag="providers"),
    Route("get", "/usage", "getUsage", "The client's spend and job counts by day, model and provider, and its budget",
          {200: ("usage", "Usage", JSON)}, (400, *_COMMON), None, (
              _query("from", {"type": "string", "format": "date"}, "first day (UTC, YYYY-MM-DD); default: the 1st of this month"),
              _query("to", {"type": "string", "format": "date"}, "last day, inclusive; default: today; at most 92 days")),
          tag="usage"),
    Route("get", "/openapi.json", "openapi", "This document (no key needed)",
          {200: ("the OpenAPI 3.1 document", "OpenAPIDocument", JSON)}, (), auth=False, tag="meta"),
    Route("get", "/console", "console", "The console: a web page for one client (it asks for the API key; no key needed "
          "to load it). Its files are /console/console.js and /console/console.css (edges/console.py)",
          {200: ("the page (Content-Security-Policy: this origin only, blob: for media)", "Html", "text/html")}, (),
          auth=False, tag="meta"),
    # OpenAI-compatible (edges/openai_videos.py)
    Route("post", "/v1/videos", "createVideo", "OpenAI: create a video (a veo-relay job)",
          {200: ("the video", "Video", JSON)}, (400, 404, 408, 409, 413, 415, 429, *_COMMON),
          {"multipart/form-data": "VideoCreateMultipart", JSON: "VideoCreate"}, (IDEMPOTENCY_KEY,), openai=True,
          headers={200: _POLL_AFTER}, tag="openai"),
    Route("get", "/v1/videos", "listVideos", "OpenAI: the client's videos, one page at a time",
          {200: ("a page of videos", "VideoList", JSON)}, (400, *_COMMON), None, (
              _query("after", JOB_ID, "the last id of the previous page"),
              _query("limit", {"type": "integer", "minimum": 1, "maximum": 100}),
              _query("order", {"type": "string", "enum": ["asc", "desc"]})), openai=True, tag="openai"),
    Route("get", "/v1/videos/{video_id}", "retrieveVideo", "OpenAI: a video", {200: ("the video", "Video", JSON)},
          (404, *_COMMON), None, (VIDEO_ID_PARAM,), openai=True, headers={200: _POLL_AFTER}, tag="openai"),
    Route("delete", "/v1/videos/{video_id}", "deleteVideo", "OpenAI: delete an ended video, its files and poster",
          {200: ("deleted", "VideoDeleted", JSON)}, (404, 409, *_COMMON), None, (VIDEO_ID_PARAM,), openai=True, tag="openai"),
    Route("get", "/v1/videos/{video_id}/content", "downloadVideoContent", "OpenAI: the video's bytes (or its poster)",
          {200: ("the MP4 (variant=video) or the poster JPEG (variant=thumbnail)", "Binary", "video/mp4")},
          (400, 404, 409, *_COMMON), None, (
              VIDEO_ID_PARAM,
              _query("variant", {"type": "string", "enum": ["video", "thumbnail", "spritesheet"]},
                     "spritesheet: 400 (not made)"),
              _query("index", {"type": "string", "pattern": "^[0-9]{1,2}$"}, "veo-relay: which output (default 0)")),
          openai=True, tag="openai"),
    Route("post", "/v1/videos/extensions", "extendVideo", "OpenAI: extend a completed video (Veo extension)",
          {200: ("the new video", "Video", JSON)}, (400, 404, 408, 409, 413, 415, *_COMMON),
          {"multipart/form-data": "VideoExtend", JSON: "VideoExtend"}, (IDEMPOTENCY_KEY,), openai=True, tag="openai"),
    Route("post", "/v1/videos/{video_id}/remix", "remixVideo", "OpenAI: remix (Veo cannot: always 400)",
          {}, (400, *_COMMON), {JSON: "AnyObject"}, (VIDEO_ID_PARAM,), openai=True, tag="openai"),
    Route("post", "/v1/videos/edits", "editVideo", "OpenAI: edit a video (Veo cannot: always 400)",
          {}, (400, *_COMMON), {"multipart/form-data": "AnyObject", JSON: "AnyObject"}, openai=True, tag="openai"),
    Route("post", "/v1/videos/characters", "createCharacter", "OpenAI: characters (Veo has none: always 400)",
          {}, (400, *_COMMON), {"multipart/form-data": "AnyObject"}, openai=True, tag="openai"),
    Route("get", "/v1/videos/characters/{character_id}", "getCharacter", "OpenAI: a character (always 400)",
          {}, (400, *_COMMON), None, ({"name": "character_id", "in": "path", "required": True,
                                       "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}},),
          openai=True, tag="openai"),
]

TAG_DESCRIPTIONS = {"openai": "OpenAI-compatible (docs/OPENAI.md)", "jobs": "the native job API"}

_EXTRA_SCHEMAS = {
    # One Server-Sent Event (OpenAPI 3.1: `schema` of text/event-stream describes each event); its
    # data is the job as JSON (edges/events.py).
    "EventStream": {"type": "object", "properties": {
        "id": {"type": "string", "pattern": "^[0-9]+$", "description": "the job's updated_at in microseconds"},
        "event": {"type": "string", "enum": ["job.accepted", "job.running", "job.progress", "job.downloading",
                                             "job.succeeded", "job.failed", "job.cancelled"]},
        "data": {"type": "string", "contentMediaType": "application/json", "contentSchema": _ref("Job")},
        "retry": {"type": "integer", "minimum": 0}}},
    "Binary": {"type": "string", "contentMediaType": "application/octet-stream"},
    "AnyObject": {"type": "object"},
    "OpenAPIDocument": {"type": "object", "required": ["openapi", "paths"]},
    "Html": {"type": "string", "contentMediaType": "text/html"},
}
_STATUS_TEXT = {400: "bad request", 401: "no valid API key (Authorization: Bearer <key>)", 404: "no such job or route",
                408: "the body did not arrive in time", 409: "conflict (see the message)", 413: "too large",
                415: "unsupported media type", 429: "budget_exceeded: a spend or in-flight cap of the client (Retry-After)",
                503: "veo-relay's backend did not answer: retry (Retry-After)"}


def _operation(route: Route) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, (description, schema, media) in route.responses.items():
        answer: dict[str, Any] = {"description": description}
        if schema is not None and media:
            content = {media: {"schema": _ref(schema)}}
            if route.path.endswith("/content") and status == 200:
                content["image/jpeg"] = {"schema": _ref(schema)}
            answer["content"] = content
        if status in route.headers:
            answer["headers"] = route.headers[status]
        responses[str(status)] = answer
    for status in route.errors:
        answer = {"description": _STATUS_TEXT.get(status, "error"),
                  "content": {JSON: {"schema": _ref("OpenAIError" if route.openai else "Error")}}}
        if status == 503:
            answer["headers"] = {"Retry-After": {"schema": {"type": "string"}}}
        if status == 401:
            answer["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
        responses[str(status)] = answer
    operation: dict[str, Any] = {"operationId": route.operation_id, "summary": route.summary, "tags": [route.tag],
                                 "responses": responses}
    if route.parameters:
        operation["parameters"] = list(route.parameters)
    if route.request:
        operation["requestBody"] = {"required": True, "content": {media: {"schema": _ref(name)}
                                                                  for media, name in route.request.items()}}
    if not route.auth:
        operation["security"] = []
    return operation


def request_schemas() -> dict[str, dict[str, Any]]:
    """GenerationRequest's JSON Schema (pydantic), its nested models as components of their own."""
    schema = GenerationRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    nested = schema.pop("$defs", {})
    return {"GenerationRequest": schema, **nested}


def document(routes: list[Route] | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `routes` (default: every public route)."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes if routes is not None else ROUTES:
        paths.setdefault(route.path, {})[route.method] = _operation(route)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "veo-relay", "version": "1",
                 "description": "Video generation jobs on Google Veo through one API: the native job API, and an "
                                "OpenAI-compatible /v1/videos for the openai SDK (docs/OPENAI.md)."},
        "paths": paths,
        "components": {
            "schemas": {**request_schemas(), **copy.deepcopy(SCHEMAS), **_EXTRA_SCHEMAS},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "an API key of VEO_API_KEYS"}},
        },
        "security": [{"bearer": []}],
        "tags": [{"name": tag, **({"description": TAG_DESCRIPTIONS[tag]} if tag in TAG_DESCRIPTIONS else {})}
                 for tag in dict.fromkeys(route.tag for route in (routes if routes is not None else ROUTES))],
    }
