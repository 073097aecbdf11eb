"""The public request schema and its validation: one clear 4xx error, before anything is
created or paid for."""
from __future__ import annotations

import json
import re
import unicodedata
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from veorelay.core.errors import ApiError, ErrorCode
from veorelay.core.job import JOB_ID_PATTERN

# The limits live apart (core/request_limits.py), for what reads them without pydantic.
from veorelay.core.request_limits import (
    IMAGE_SOURCES,
    MAX_DEADLINE_SECONDS,
    MAX_IMAGE_BYTES,
    MAX_METADATA_BYTES,
    MAX_PROMPT_CHARS,
    MAX_REFERENCE_IMAGES,
)
from veorelay.core.storable import NotStorable, check_field_value, check_unicode, render_path

# Control characters (Unicode category Cc) but newline and tab: never meant in a prompt, and a
# way to smuggle terminal escapes or NULs to a provider and into logs.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Characters that show nothing although they are not whitespace nor format (Cf) characters: Hangul
# fillers, the blank Braille pattern, the combining grapheme joiner, variation selectors.
_INVISIBLE = frozenset("\u115f\u1160\u3164\uffa0\u2800\u034f") | frozenset(map(chr, range(0xFE00, 0xFE10)))


class ImageInput(BaseModel):
    """One input image: inline `base64` with its `mime_type`, a `gs://` object, an https `url`,
    or (multipart/form-data) the name of an uploaded part. veo-relay copies it into its bucket
    when the job is accepted, so a stored job holds only {gcs_uri, mime_type} (steps/images.py)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    base64: str | None = Field(default=None, min_length=1, max_length=4 * (MAX_IMAGE_BYTES // 3 + 1))
    mime_type: Literal["image/png", "image/jpeg", "image/webp"] | None = None
    gcs_uri: str | None = Field(default=None, max_length=1100, pattern=r"^gs://[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]/[^\s]+$")
    url: str | None = Field(default=None, max_length=2048)
    upload: str | None = Field(default=None, min_length=1, max_length=100)

    @model_validator(mode="after")
    def _one_source(self) -> ImageInput:
        given = [name for name in IMAGE_SOURCES if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(IMAGE_SOURCES)}")
        if self.base64 is not None and self.mime_type is None:
            raise ValueError("base64 needs its mime_type")
        if self.url is not None and not self.url.lower().startswith(("https://", "http://")):
            raise ValueError("url must be an https URL")
        return self


class ReferenceImage(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    image: ImageInput
    type: Literal["asset", "style"] = "asset"


class SourceVideo(BaseModel):
    """The video an extension continues, as accepted (steps/extension.py fills it in from the
    source job; a client never gives it): the provider's own file URI (Gemini API), the stored
    object (gs://, Vertex), its length."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    provider_uri: str | None = Field(default=None, max_length=2048)
    gcs_uri: str | None = Field(default=None, max_length=1100)
    mime_type: Literal["video/mp4"] = "video/mp4"
    duration_seconds: float | None = None


class ExtendInput(BaseModel):
    """`extend`: continue the video of a finished job of the same client (its output `output`)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    job_id: str = Field(pattern=JOB_ID_PATTERN)
    output: int = Field(default=0, ge=0, le=3)
    # Set at acceptance only (parse_request refuses it from a client), so not in the public schema.
    video: SkipJsonSchema[SourceVideo | None] = None


class GenerationRequest(BaseModel):
    """One video generation job, as a client asks for it (provider-neutral)."""

    # strict: "8" is not 8 and "true" is not True; forbid: a misspelt option is an error, not ignored.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    provider: str | None = None
    # Providers to move to, in order, if `provider` refuses the job before accepting it (core/failover.py).
    fallback_providers: list[Annotated[str, Field(min_length=1, max_length=40)]] | None = Field(default=None, min_length=1, max_length=5)
    model: str | None = Field(default=None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._-]+$")
    negative_prompt: str | None = Field(default=None, max_length=MAX_PROMPT_CHARS)
    aspect_ratio: Literal["16:9", "9:16"] | None = None
    duration_seconds: int | None = Field(default=None, ge=1, le=60)
    resolution: Literal["720p", "1080p", "4k"] | None = None
    sample_count: int | None = Field(default=None, ge=1, le=4)
    seed: int | None = Field(default=None, ge=0, le=2**32 - 1)
    person_generation: Literal["allow_all", "allow_adult", "dont_allow"] | None = None
    generate_audio: bool | None = None
    image: ImageInput | None = None  # the first frame
    last_frame: ImageInput | None = None
    reference_images: list[ReferenceImage] | None = Field(default=None, min_length=1, max_length=MAX_REFERENCE_IMAGES)
    extend: ExtendInput | None = None  # continue a finished job's video (steps/extension.py)
    webhook_url: str | None = Field(default=None, max_length=2048)
    # Which events the webhook receives (default: all but job.progress). Kept in step with core.events.EVENT_TYPES.
    webhook_events: list[Literal["job.running", "job.progress", "job.succeeded", "job.failed", "job.cancelled"]] | None = Field(
        default=None, min_length=1, max_length=5)
    metadata: dict[str, Any] | None = None
    # The job fails with deadline_exceeded if it has not ended by then (default VEO_JOB_DEADLINE_SECONDS).
    deadline_seconds: int | None = Field(default=None, ge=10, le=MAX_DEADLINE_SECONDS)

    @model_validator(mode="before")
    @classmethod
    def _text_is_unicode(cls, data: Any) -> Any:
        # Every string and key, unknown fields too: Firestore keeps UTF-8 only, and a JSON escape
        # (\ud800) can give a lone surrogate that would fail at the write, not here.
        check_unicode(data)
        return data

    @field_validator("prompt", "negative_prompt")
    @classmethod
    def _prompt_is_text(cls, value: str | None) -> str | None:
        if value is None:
            return None
        control = _CONTROL.search(value)
        if control:
            raise ValueError(f"control character U+{ord(control[0]):04X}: only newline and tab are allowed")
        if all(_shows_nothing(char) for char in value):
            raise ValueError("must not be blank (nothing but whitespace or invisible characters)")
        return value

    @field_validator("fallback_providers")
    @classmethod
    def _fallbacks_differ(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("fallback_providers must not name a provider twice")
        return value

    @field_validator("webhook_url")
    @classmethod
    def _webhook_is_http(cls, value: str | None) -> str | None:
        if value is not None and not value.lower().startswith(("https://", "http://")):
            raise ValueError("webhook_url must be an https URL")
        return value

    @field_validator("webhook_events")
    @classmethod
    def _events_need_a_webhook(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        if value is not None and not info.data.get("webhook_url"):
            raise ValueError("webhook_events needs a webhook_url")
        return list(dict.fromkeys(value)) if value is not None else None

    @field_validator("metadata")
    @classmethod
    def _metadata_is_storable_and_small(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        check_field_value("metadata", value)  # kept as the job's `metadata` field, echoed back as JSON
        if len(json.dumps(value, separators=(",", ":")).encode()) > MAX_METADATA_BYTES:
            raise ValueError(f"metadata must serialise to at most {MAX_METADATA_BYTES} bytes of JSON")
        return value

    def images(self) -> list[tuple[str, ImageInput]]:
        """Every input image with the field that names it (for errors), in a fixed order."""
        found = [("image", self.image), ("last_frame", self.last_frame)]
        found += [(f"reference_images.{i}.image", ref.image) for i, ref in enumerate(self.reference_images or [])]
        return [(field, image) for field, image in found if image is not None]

    def options(self) -> set[str]:
        """The optional fields the client actually set (what a provider must be able to honour)."""
        not_options = {"prompt", "provider", "fallback_providers", "webhook_url", "webhook_events", "metadata", "deadline_seconds"}
        return {name for name in self.model_fields_set if name not in not_options}


# What a job keeps elsewhere (its webhook, metadata, provider, deadline) or never (the fallbacks, as attempts).
NOT_STORED = frozenset({"webhook_url", "webhook_events", "metadata", "provider", "fallback_providers", "deadline_seconds"})


def stored_request(req: GenerationRequest) -> dict[str, Any]:
    """The job record's `request`: what the provider is sent, read back by core/accepted.py."""
    return req.model_dump(exclude_none=True, exclude=set(NOT_STORED))


def parse_request(body: Any) -> GenerationRequest:
    if not isinstance(body, dict):
        raise ApiError(400, ErrorCode.INVALID_REQUEST, "the request body must be a JSON object")
    try:
        req = GenerationRequest.model_validate(body)
    except ValidationError as exc:
        raise _api_error(exc) from None
    if req.last_frame is not None and req.image is None:
        raise ApiError(400, ErrorCode.INVALID_REQUEST, "last_frame needs image (the first frame)", "last_frame")
    if req.extend is not None:
        _check_extend(req, req.extend)
    return req


# What an extension cannot be given: it continues its source video, at the source's length rule.
EXTEND_CONFLICTS = ("image", "last_frame", "reference_images", "duration_seconds")


def _check_extend(req: GenerationRequest, extend: ExtendInput) -> None:
    if extend.video is not None:  # filled in from the source job at acceptance, never taken from a client
        raise ApiError(400, ErrorCode.INVALID_REQUEST, "unknown field 'extend.video'", "extend.video")
    for name in EXTEND_CONFLICTS:
        if name in req.model_fields_set and getattr(req, name) is not None:
            why = ("an extension adds the model's own fixed length" if name == "duration_seconds"
                   else "an extension starts from its source video's last frames")
            raise ApiError(400, ErrorCode.INVALID_REQUEST, f"extend cannot be combined with {name}: {why}", name)


def _shows_nothing(char: str) -> bool:
    """Whitespace, a format character (Cf: zero-width space and joiners, U+2060, U+FEFF, bidi
    controls...) or another character that shows nothing."""
    return char.isspace() or char in _INVISIBLE or unicodedata.category(char) == "Cf" or 0xE0100 <= ord(char) <= 0xE01EF


def _api_error(exc: ValidationError) -> ApiError:
    first = exc.errors(include_url=False)[0]
    cause = (first.get("ctx") or {}).get("error")
    if isinstance(cause, NotStorable):  # the path below the field it was found in
        where = render_path((*first["loc"], *cause.path))
        return ApiError(400, ErrorCode.INVALID_REQUEST, f"{where}: {cause.reason}", where or None)
    field = render_path(tuple(first["loc"])) or None
    kind = first["type"]
    if kind == "extra_forbidden":
        message = f"unknown field {field!r}"
    elif kind == "missing":
        message = f"{field} is required"
    elif kind == "value_error" and cause is not None:  # our own validators' words, without pydantic's "Value error, "
        message = f"{field}: {cause}" if field else str(cause)
    else:
        message = f"{field}: {first['msg']}"
    return ApiError(400, ErrorCode.INVALID_REQUEST, message, field)
