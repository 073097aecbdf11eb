"""Video extension, pure: whether a finished job's video can be extended by this provider and
model, and what the new job records (`extends`) and sends (the request's `extend.video`).

Checked at acceptance (steps/accept.py), before anything is stored or paid for. Every refusal
is a 400 naming the field at fault: a job that is not the client's (or does not exist, or was
deleted) is `invalid_request` on `extend.job_id`, worded like a missing one, so no client learns
of another's jobs; a video the provider cannot extend is `unsupported_option`.

What each provider can extend (docs/PROVIDERS.md "Video extension"):
- gemini, litellm-gemini (the Gemini API): only a video the same API made, named by its file
  URI (`video: {uri}`), while Google still keeps it (2 days: ExtensionSpec.max_source_age_hours);
  so the source job must be of the same provider and carry that URI (`provider_uri`);
- vertex: a Veo video in Cloud Storage (`video: {gcsUri, mimeType}`): the source job's stored
  output in our bucket, whichever provider made it.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from veorelay.core.catalog import ExtensionSpec, ModelSpec
from veorelay.core.errors import ApiError, ErrorCode
from veorelay.core.media import RESOLUTION_SIZES
from veorelay.core.request import GenerationRequest, SourceVideo

# Providers that extend only the videos they made themselves, named by their own file URI.
OWN_VIDEOS_ONLY = frozenset({"gemini", "litellm-gemini"})
# Providers that read the source from Cloud Storage (our stored output).
FROM_BUCKET = frozenset({"vertex"})
# The submission must reach the provider while it still holds the source: a source this close to
# the provider's retention is refused rather than sent to fail.
AGE_MARGIN = timedelta(hours=1)
DEFAULT_SOURCE_SECONDS = 8.0
# A frame's shorter side -> its resolution (core/media.py RESOLUTION_SIZES): 720 -> 720p, 2160 -> 4k.
_HEIGHT_TO_RESOLUTION = {height: resolution for resolution, (_, height) in RESOLUTION_SIZES.items()}


@dataclass(frozen=True)
class Extension:
    """What an accepted extension records on its job and sends to its provider."""

    source: SourceVideo  # the request's `extend.video`
    extends: dict[str, Any]  # the job's `extends`


def _no_such_job() -> ApiError:
    return ApiError(400, ErrorCode.INVALID_REQUEST, "extend.job_id: no such job", "extend.job_id")


def _unsupported(field: str, message: str) -> ApiError:
    return ApiError(400, ErrorCode.UNSUPPORTED_OPTION, message, field)


def source_seconds(source: Mapping[str, Any], output: Mapping[str, Any]) -> float:
    """How long the source video lasts: what the stored file measures (`media`), else what its
    job asked for (an extension: its own source's length plus what it added), else Veo's 8 s."""
    media = output.get("media") or {}
    measured = media.get("duration_seconds")
    if isinstance(measured, (int, float)) and not isinstance(measured, bool) and measured > 0:
        return float(measured)
    extends = source.get("extends") or {}
    if isinstance(extends.get("duration_seconds"), (int, float)):
        return float(extends["duration_seconds"])
    asked = (source.get("request") or {}).get("duration_seconds")
    return float(asked) if isinstance(asked, int) and not isinstance(asked, bool) else DEFAULT_SOURCE_SECONDS


def source_resolution(source: Mapping[str, Any], output: Mapping[str, Any]) -> str:
    """The source's resolution: from its measured frame (the shorter side), else as asked, else 720p."""
    media = output.get("media") or {}
    width, height = media.get("width"), media.get("height")
    if isinstance(width, int) and isinstance(height, int) and min(width, height) in _HEIGHT_TO_RESOLUTION:
        return _HEIGHT_TO_RESOLUTION[min(width, height)]
    asked = (source.get("request") or {}).get("resolution")
    return asked if isinstance(asked, str) else "720p"


def source_aspect_ratio(source: Mapping[str, Any], output: Mapping[str, Any]) -> str | None:
    media = output.get("media") or {}
    width, height = media.get("width"), media.get("height")
    if isinstance(width, int) and isinstance(height, int) and width != height:
        return "16:9" if width > height else "9:16"
    asked = (source.get("request") or {}).get("aspect_ratio")
    return asked if isinstance(asked, str) else None


def provider_uri_of(source: Mapping[str, Any], index: int) -> str | None:
    """The provider's own URI of the source's output `index`: recorded on the output by finalize,
    else on the reference its poll kept (`pending_outputs[].extra.provider_uri`)."""
    for output in source.get("outputs") or []:
        if output.get("index") == index and isinstance(output.get("provider_uri"), str):
            return str(output["provider_uri"])
    for ref in source.get("pending_outputs") or []:
        if int(ref.get("index", -1)) == index:
            uri = (ref.get("extra") or {}).get("provider_uri")
            if isinstance(uri, str):
                return uri
    return None


def _source_time(source: Mapping[str, Any]) -> datetime | None:
    """When the provider made the source video: its job started downloading it (else succeeded, else was created)."""
    stamps = source.get("timestamps") or {}
    for value in (stamps.get("downloading"), stamps.get("succeeded"), source.get("created_at")):
        if isinstance(value, datetime):
            return value
    return None


def check_extension(req: GenerationRequest, source: Mapping[str, Any] | None, *, client_id: str, provider: str,
                    spec: ModelSpec, now: datetime) -> Extension:
    """Whether `provider`'s model `spec` can extend the source job's video; what to record.
    `source`: the job `req.extend.job_id` names, as stored (None: none)."""
    ask = req.extend
    if ask is None:
        raise ValueError("check_extension needs a request with `extend`")
    if source is None or source.get("client_id") != client_id or source.get("deleted_at") is not None:
        raise _no_such_job()
    if source.get("status") != "succeeded":
        raise _unsupported("extend.job_id", f"job {ask.job_id} is {source.get('status')}: only a succeeded job's video can be extended")
    output = next((o for o in source.get("outputs") or [] if o.get("index") == ask.output), None)
    if output is None:
        raise ApiError(400, ErrorCode.INVALID_REQUEST, f"extend.output: job {ask.job_id} has no output {ask.output}", "extend.output")
    media = output.get("media") or {}
    if output.get("content_type") not in (None, "video/mp4") or (media and not media.get("video_codec")):
        raise _unsupported("extend.job_id", f"output {ask.output} of job {ask.job_id} is not a Veo video the provider can extend")
    rule = spec.extension
    if rule is None:  # core/capabilities.py refuses it first; kept for callers that skip it
        raise _unsupported("extend", f"model {spec.id} cannot extend videos")
    seconds = source_seconds(source, output)
    _check_shape(req, ask.job_id, source, output, spec.id, rule, seconds)
    if rule.max_source_age_hours is not None:
        made = _source_time(source)
        limit = timedelta(hours=rule.max_source_age_hours)
        if made is None or now - made > limit - AGE_MARGIN:
            raise _unsupported("extend.job_id", f"job {ask.job_id}'s video is too old: {provider} keeps its videos "
                               f"{rule.max_source_age_hours} h, and an extension must reach it before then")
    source_video = _source_video(ask.job_id, ask.output, source, output, provider, seconds)
    root = (source.get("extends") or {}).get("root_job_id") or ask.job_id
    depth = int((source.get("extends") or {}).get("depth") or 0) + 1
    extends = {"job_id": ask.job_id, "output": ask.output, "root_job_id": root, "depth": depth,
               "source_uri": output.get("uri"), "source_seconds": seconds,
               "duration_seconds": seconds + rule.added_seconds, "added_seconds": rule.added_seconds}
    return Extension(source=source_video, extends=extends)


def _check_shape(req: GenerationRequest, job_id: str, source: Mapping[str, Any], output: Mapping[str, Any], model: str,
                 rule: ExtensionSpec, seconds: float) -> None:
    """The source's length and resolution within what model `model` extends (`rule`); the
    request's resolution and aspect ratio (when given) the source's own."""
    if seconds > rule.max_input_seconds:
        raise _unsupported("extend.job_id", f"job {job_id}'s video lasts {seconds:g} s; model {model} extends videos of "
                           f"at most {rule.max_input_seconds} s")
    resolution = source_resolution(source, output)
    if resolution not in rule.input_resolutions:
        raise _unsupported("extend.job_id", f"job {job_id}'s video is {resolution}; model {model} extends "
                           f"{' or '.join(rule.input_resolutions)} videos only")
    if req.resolution is not None and req.resolution != resolution:
        raise _unsupported("resolution", f"an extension keeps its source's resolution ({resolution})")
    aspect = source_aspect_ratio(source, output)
    if req.aspect_ratio is not None and aspect is not None and req.aspect_ratio != aspect:
        raise _unsupported("aspect_ratio", f"an extension keeps its source's aspect ratio ({aspect})")


def _source_video(job_id: str, index: int, source: Mapping[str, Any], output: Mapping[str, Any], provider: str,
                  seconds: float) -> SourceVideo:
    """How `provider` is sent the source: its own file URI, or our stored object."""
    if provider in OWN_VIDEOS_ONLY:
        if source.get("provider") != provider:
            raise _unsupported("extend.job_id", f"{provider} extends only videos it made itself; job {job_id} was made by "
                               f"{source.get('provider')}")
        uri = provider_uri_of(source, index)
        if not uri:
            raise _unsupported("extend.job_id", f"job {job_id} keeps no {provider} file URI of its video: it cannot be extended there")
        return SourceVideo(provider_uri=uri, duration_seconds=seconds)
    gcs_uri = output.get("uri")
    if provider in FROM_BUCKET and isinstance(gcs_uri, str) and gcs_uri.startswith("gs://"):
        return SourceVideo(gcs_uri=gcs_uri, duration_seconds=seconds)
    raise _unsupported("extend", f"provider {provider} cannot extend videos")
