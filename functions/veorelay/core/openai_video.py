"""The OpenAI videos API (`/v1/videos`) as veo-relay speaks it: a create request mapped to a
veo-relay job request, a job shown as OpenAI's video object, a page of jobs as its list, and
errors in OpenAI's shape. Pure, no I/O; the routes are edges/openai_videos.py.

What the official `openai` SDK (3.51.0) sends and expects, read from its source
(src/openai/resources/videos.py, src/openai/types/video*.py; docs/OPENAI.md):
  - `create` always posts multipart/form-data: `prompt`, `model`, `seconds` ("4", "8"...: a
    string), `size` ("1280x720"), an `input_reference` file part; `extra_body` fields become
    form fields too, nested ones in bracket notation (`metadata[order]=7`, `webhook_events[]=...`).
    A JSON body (curl, other gateways) is the same object.
  - the video object: `id`, `object: "video"`, `model`, `status` (queued, in_progress,
    completed, failed), integer `progress`, `created_at` / `completed_at` / `expires_at` as unix
    seconds, `error {code, message}`, `seconds`, `size`, `prompt`.
  - a list page: `{object: "list", data, has_more, first_id, last_id}`; the SDK asks for the next
    page with `after=<last_id>` while `has_more`.
"""
from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from veorelay.core.cost import view as cost_view
from veorelay.core.errors import ApiError, ErrorCode
from veorelay.core.job import JOB_ID, Job, JobStatus
from veorelay.core.media import RESOLUTION_SIZES
from veorelay.core.poll_plan import next_delay

# OpenAI's `size` (width x height) <-> veo-relay's aspect ratio and resolution.
# Each resolution's frame (core/media.py), landscape then portrait: 1280x720, 720x1280, 1920x1080, ...
SIZES: dict[str, tuple[str, str]] = {
    f"{w}x{h}" if aspect == "16:9" else f"{h}x{w}": (aspect, resolution)
    for resolution, (w, h) in RESOLUTION_SIZES.items() for aspect in ("16:9", "9:16")
}
SIZE_OF = {shape: size for size, shape in SIZES.items()}
DEFAULT_ASPECT_RATIO, DEFAULT_RESOLUTION = "16:9", "720p"  # what Veo makes when a job names neither
DEFAULT_SECONDS = 8  # Veo's default clip length, shown when a job did not ask for one

STATUS = {
    JobStatus.ACCEPTED: "queued",
    JobStatus.RUNNING: "in_progress",
    JobStatus.DOWNLOADING: "in_progress",
    JobStatus.SUCCEEDED: "completed",
    JobStatus.FAILED: "failed",
    JobStatus.CANCELLED: "failed",  # OpenAI has no cancelled video: failed, error.code "cancelled"
}

# The create fields OpenAI defines, and veo-relay's own, accepted beside them (the SDK's
# `extra_body`). Each of veo-relay's is the GenerationRequest field of the same name.
OPENAI_FIELDS = ("prompt", "model", "seconds", "size", "input_reference")
VEORELAY_FIELDS = ("provider", "negative_prompt", "webhook_url", "webhook_events", "metadata", "seed",
                   "generate_audio", "person_generation", "sample_count", "deadline_seconds", "last_frame",
                   "reference_images", "image", "aspect_ratio", "resolution", "duration_seconds")
_INT_FIELDS = frozenset({"seed", "sample_count", "deadline_seconds", "duration_seconds"})
_BOOL_FIELDS = frozenset({"generate_audio"})
# What Veo cannot do: answered 400 (the SDK raises BadRequestError), never a 404.
UNSUPPORTED_ROUTES = {
    "remix": "remix is not supported: Veo cannot remix a video; create a new one, or extend it (POST /v1/videos/extensions)",
    "edits": "edits are not supported: Veo cannot edit an existing video; create a new one, or extend it",
    "characters": "characters are not supported: Veo has no reusable characters; pass reference images instead",
    "spritesheet": "variant=spritesheet is not supported: veo-relay keeps the video and its poster image "
                   "(variant=thumbnail) only",
}
MAX_LIMIT = 100
DEFAULT_LIMIT = 20
_SECONDS = re.compile(r"^[1-9][0-9]{0,2}$")
_BRACKETED = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<keys>(\[[^\[\]]*\])+)$")


class OpenAIError(ApiError):
    """A refusal on a /v1/videos route: the same status and code as veo-relay's, shown in
    OpenAI's error shape (openai_error_body)."""


def openai_error_body(status: int, code: str, message: str, param: str | None) -> dict[str, Any]:
    """{error: {message, type, param, code}}: what the openai SDK parses into APIStatusError.body
    (its class follows the status: 400 BadRequestError, 404 NotFoundError...)."""
    return {"error": {"message": message, "type": _error_type(status), "param": param, "code": code}}


def _error_type(status: int) -> str:
    if status == 401:
        return "authentication_error"
    if status == 403:
        return "permission_error"
    if status == 404:
        return "not_found_error"
    if status == 429:
        return "rate_limit_error"
    if status >= 500:
        return "server_error"
    return "invalid_request_error"


def _refuse(message: str, param: str | None, code: str = ErrorCode.INVALID_REQUEST) -> OpenAIError:
    return OpenAIError(400, code, message, param)


# ---------------------------------------------------------------------------------------------
# create


def size_to_shape(size: Any) -> tuple[str, str]:
    """`size` ("1280x720") as (aspect ratio, resolution); 400 naming the sizes Veo makes."""
    if not isinstance(size, str) or size not in SIZES:
        raise _refuse(f"size must be one of {', '.join(SIZES)} (Veo makes 16:9 and 9:16 videos at 720p, 1080p "
                      f"and, on models that can, 4k); got {size!r}", "size", ErrorCode.UNSUPPORTED_OPTION)
    return SIZES[size]


def seconds_to_duration(seconds: Any) -> int:
    """`seconds` as the SDK sends it (a string, "8") or as a JSON number: whole seconds."""
    if isinstance(seconds, bool):
        raise _refuse("seconds must be a whole number of seconds, such as \"8\"", "seconds")
    if isinstance(seconds, int):
        text = str(seconds)
    elif isinstance(seconds, str):
        text = seconds.strip()
    else:
        raise _refuse("seconds must be a whole number of seconds, such as \"8\"", "seconds")
    if not _SECONDS.match(text):
        raise _refuse(f"seconds must be a whole number of seconds, such as \"8\"; got {seconds!r}", "seconds")
    return int(text)


def form_to_body(fields: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """The text fields of a multipart create as the object a JSON body would be: bracket
    notation unfolded (`metadata[order]=7` -> {"metadata": {"order": "7"}}, `webhook_events[]=a`
    -> {"webhook_events": ["a"]}), veo-relay's number and boolean fields converted from their
    text, a `metadata` field holding a JSON object parsed. A field given twice is refused."""
    body: dict[str, Any] = {}
    for raw_key, value in fields:
        match = _BRACKETED.match(raw_key)
        if match is None:
            if raw_key in body:
                raise _refuse(f"the field {raw_key!r} is given twice; send it once", raw_key)
            body[raw_key] = value
            continue
        name, keys = match["name"], re.findall(r"\[([^\[\]]*)\]", match["keys"])
        _put(body, name, keys, value, raw_key)
    for name in _INT_FIELDS & body.keys():
        if isinstance(body[name], str):
            if not re.fullmatch(r"-?[0-9]{1,12}", body[name]):
                raise _refuse(f"{name} must be a whole number; got {body[name]!r}", name)
            body[name] = int(body[name])
    for name in _BOOL_FIELDS & body.keys():
        if isinstance(body[name], str):
            if body[name].lower() not in ("true", "false"):
                raise _refuse(f"{name} must be true or false; got {body[name]!r}", name)
            body[name] = body[name].lower() == "true"
    if isinstance(body.get("metadata"), str):
        try:
            body["metadata"] = json.loads(body["metadata"])
        except ValueError:
            raise _refuse("metadata must be a JSON object (or metadata[key] fields)", "metadata") from None
    return body


def _put(body: dict[str, Any], name: str, keys: list[str], value: str, raw_key: str) -> None:
    target: Any = body
    path: list[str] = [name, *keys]
    for i, key in enumerate(path[:-1]):
        nxt: Any = [] if path[i + 1] == "" else {}
        if isinstance(target, list):
            raise _refuse(f"the field {raw_key!r} nests inside an array, which is not supported", name)
        existing = target.get(key)
        if existing is None:
            target[key] = nxt
        elif type(existing) is not type(nxt):
            raise _refuse(f"the field {raw_key!r} conflicts with another field of the same name", name)
        target = target[key]
    leaf = path[-1]
    if leaf == "":
        if not isinstance(target, list):
            raise _refuse(f"the field {raw_key!r} conflicts with another field of the same name", name)
        target.append(value)
    elif isinstance(target, dict):
        if leaf in target:
            raise _refuse(f"the field {raw_key!r} is given twice; send it once", name)
        target[leaf] = value
    else:
        raise _refuse(f"the field {raw_key!r} nests inside an array, which is not supported", name)


def create_to_job_body(body: Mapping[str, Any], upload_part: str | None = None) -> dict[str, Any]:
    """An OpenAI create request (JSON, or a multipart's fields via form_to_body) as veo-relay's
    job request (core/request.py GenerationRequest, which then checks every value).

    `upload_part`: the name of the uploaded `input_reference` file part, if one came; it becomes
    the first frame. `input_reference` as JSON is {"image_url": "https://..." | "data:<type>;base64,..."}
    (OpenAI's ImageInputReferenceParam); `file_id` (OpenAI's Files API) is refused."""
    unknown = sorted(set(body) - set(OPENAI_FIELDS) - set(VEORELAY_FIELDS))
    if unknown:
        raise _refuse(f"unknown field {unknown[0]!r} (OpenAI's fields: {', '.join(OPENAI_FIELDS)}; veo-relay's own, "
                      f"through extra_body: {', '.join(VEORELAY_FIELDS)})", unknown[0])
    job: dict[str, Any] = {k: v for k, v in body.items() if k in VEORELAY_FIELDS}
    if "prompt" not in body:
        raise _refuse("prompt is required", "prompt")
    job["prompt"] = body["prompt"]
    model = body.get("model")
    if model is not None:
        if isinstance(model, str) and model.lower().startswith("sora"):
            raise _refuse(f"model {model!r} is OpenAI's; veo-relay runs Veo models: leave model out for the "
                          "provider's default, or name one GET /providers lists", "model", ErrorCode.UNSUPPORTED_OPTION)
        job["model"] = model
    if body.get("seconds") is not None:
        if "duration_seconds" in body:
            raise _refuse("give seconds or duration_seconds, not both", "duration_seconds")
        job["duration_seconds"] = seconds_to_duration(body["seconds"])
    if body.get("size") is not None:
        if "aspect_ratio" in body or "resolution" in body:
            raise _refuse("give size or aspect_ratio/resolution, not both", "size")
        job["aspect_ratio"], job["resolution"] = size_to_shape(body["size"])
    reference = _first_frame(body, upload_part)
    if reference is not None:
        job["image"] = reference
    return job


def _first_frame(body: Mapping[str, Any], upload_part: str | None) -> dict[str, Any] | None:
    """`input_reference` (an uploaded part, or {"image_url"}) as the job's first frame."""
    reference = body.get("input_reference")
    if upload_part is not None:
        if reference is not None:
            raise _refuse("input_reference is given both as a file and as a field; send one", "input_reference")
        frame = {"upload": upload_part}
    elif reference is not None:
        frame = _reference_image(reference)
    else:
        return None
    if "image" in body:
        raise _refuse("give input_reference or image, not both", "input_reference")
    return frame


def _reference_image(reference: Any) -> dict[str, Any]:
    if not isinstance(reference, Mapping):
        raise _refuse("input_reference must be an uploaded file (multipart) or {\"image_url\": ...}", "input_reference")
    if "file_id" in reference:
        raise _refuse("input_reference.file_id is not supported (veo-relay has no Files API): upload the file, "
                      "or give image_url", "input_reference.file_id", ErrorCode.UNSUPPORTED_OPTION)
    url = reference.get("image_url")
    if set(reference) != {"image_url"} or not isinstance(url, str):
        raise _refuse("input_reference must be {\"image_url\": \"https://...\" or a data: URL}", "input_reference")
    data = re.fullmatch(r"data:(?P<type>image/[a-z0-9.+-]+);base64,(?P<data>.+)", url, re.S)
    if data:
        return {"base64": data["data"], "mime_type": data["type"]}
    return {"url": url}


def extend_to_job_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """POST /v1/videos/extensions ({prompt, seconds, video: {id}}; the SDK's `extend`) as a
    veo-relay request that extends that job's video (`extend: {"job_id": ...}`). `seconds` is
    checked but not sent: a Veo extension adds the model's own fixed length (docs/OPENAI.md)."""
    unknown = sorted(set(body) - {"prompt", "seconds", "video", "provider", "model", "webhook_url",
                                  "webhook_events", "metadata", "negative_prompt", "deadline_seconds"})
    if unknown:
        raise _refuse(f"unknown field {unknown[0]!r}", unknown[0])
    video = body.get("video")
    if not isinstance(video, Mapping) or not isinstance(video.get("id"), str) or set(video) != {"id"}:
        raise _refuse("video must be {\"id\": \"<the id of a completed video>\"} (an uploaded video cannot be extended)",
                      "video")
    if "prompt" not in body:
        raise _refuse("prompt is required", "prompt")
    if body.get("seconds") is not None:
        seconds_to_duration(body["seconds"])
    job = {k: v for k, v in body.items() if k not in ("video", "seconds")}
    job["extend"] = {"job_id": video["id"]}
    return job


# ---------------------------------------------------------------------------------------------
# the video object


def unix(value: Any) -> int | None:
    return int(value.timestamp()) if isinstance(value, datetime) else None


def video_size(request: Mapping[str, Any]) -> str:
    shape = (request.get("aspect_ratio") or DEFAULT_ASPECT_RATIO, request.get("resolution") or DEFAULT_RESOLUTION)
    return SIZE_OF.get(shape, SIZE_OF[(DEFAULT_ASPECT_RATIO, DEFAULT_RESOLUTION)])


def video_seconds(job: Job) -> str:
    """The clip's length: what the stored video measures (outputs' media, when known), else what
    was asked, else Veo's default."""
    for output in job.get("outputs") or []:
        media: Any = dict(output).get("media")
        if isinstance(media, Mapping) and isinstance(media.get("duration_seconds"), (int, float)):
            return str(round(media["duration_seconds"]))
    asked = (job.get("request") or {}).get("duration_seconds")
    return str(asked if isinstance(asked, int) else DEFAULT_SECONDS)


def video_object(job: Job) -> dict[str, Any]:
    """A job as OpenAI's video object (the SDK's `Video`), with veo-relay's `provider`,
    `metadata` and native `veorelay_status` beside it (the SDK keeps unknown fields)."""
    status = JobStatus(job["status"])
    request = job.get("request") or {}
    timestamps = job.get("timestamps") or {}
    progress_record: Mapping[str, Any] = job.get("progress") or {}
    percent = progress_record.get("percent")
    progress = 100 if status == JobStatus.SUCCEEDED else int(percent) if isinstance(percent, (int, float)) else 0
    error = job.get("error") if status in (JobStatus.FAILED, JobStatus.CANCELLED) else None
    return {
        "id": job["id"],
        "object": "video",
        "model": job.get("model") or "",
        "status": STATUS[status],
        "progress": max(0, min(progress, 100)),
        "created_at": unix(job.get("created_at")) or 0,
        "completed_at": unix(timestamps.get(str(status))) if status.terminal else None,
        "expires_at": unix(job.get("expire_at")) if status.terminal else None,
        "error": {"code": str(error.get("code") or "error"), "message": str(error.get("message") or "")} if error else None,
        "seconds": video_seconds(job),
        "size": video_size(request),
        "prompt": request.get("prompt"),
        "remixed_from_video_id": None,
        "provider": job.get("provider"),
        "metadata": job.get("metadata"),
        "veorelay_status": str(status),
        "cost": cost_view(job),  # veo-relay's list-price estimate, and whether it was billed (core/cost.py)
    }


def deleted_object(job_id: str) -> dict[str, Any]:
    return {"id": job_id, "object": "video.deleted", "deleted": True}


def list_page(jobs: Sequence[Job], has_more: bool) -> dict[str, Any]:
    data = [video_object(job) for job in jobs]
    return {"object": "list", "data": data, "has_more": has_more,
            "first_id": data[0]["id"] if data else None, "last_id": data[-1]["id"] if data else None}


def list_params(args: Mapping[str, str]) -> tuple[str | None, int, str]:
    """`after`, `limit` (1..100, default 20), `order` (asc|desc, default desc) of GET /v1/videos."""
    unknown = sorted(set(args) - {"after", "limit", "order"})
    if unknown:
        raise _refuse(f"unknown query parameter {unknown[0]!r} (after, limit, order)", unknown[0])
    raw_limit = args.get("limit")
    limit = DEFAULT_LIMIT
    if raw_limit is not None:
        if not re.fullmatch(r"[0-9]{1,4}", raw_limit) or not 1 <= int(raw_limit) <= MAX_LIMIT:
            raise _refuse(f"limit must be a whole number from 1 to {MAX_LIMIT}; got {raw_limit!r}", "limit")
        limit = int(raw_limit)
    order = args.get("order") or "desc"
    if order not in ("asc", "desc"):
        raise _refuse(f"order must be asc or desc; got {order!r}", "order")
    after = args.get("after") or None
    if after is not None and not JOB_ID.fullmatch(after):
        raise _refuse("after must be the id of a video from a previous page", "after")
    return after, limit, order


def poll_after_ms(status: JobStatus | str, plan_times: tuple[float, ...], elapsed_s: float,
                  min_gap_s: float, max_gap_s: float) -> int | None:
    """`openai-poll-after-ms` for a job not ended yet (None once it has): when asking again is
    worth it. Running: just after veo-relay's own next check of the provider, from the learned
    schedule (core/poll_plan.py), when a change can first show. Queued or downloading: soon
    (submission and the copy into the bucket take seconds)."""
    status = JobStatus(status)
    if status.terminal:
        return None
    if status == JobStatus.RUNNING:
        wait_s = next_delay(plan_times, elapsed_s, min_gap_s, max_gap_s) + 0.25
    else:
        wait_s = min(max(min_gap_s, 0.5), 2.0)
    return max(250, min(math.ceil(wait_s * 1000), 60_000))
