"""The public request schema and its validation: one clear 4xx error, before anything is
created or paid for."""
from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import ApiError, ErrorCode

MAX_PROMPT_CHARS = 4000
MAX_METADATA_BYTES = 2048


class GenerationRequest(BaseModel):
    """One video generation job, as a client asks for it (provider-neutral)."""

    # strict: "8" is not 8 and "true" is not True; forbid: a misspelt option is an error, not ignored.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    provider: str | None = None
    model: str | None = Field(default=None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._-]+$")
    negative_prompt: str | None = Field(default=None, max_length=MAX_PROMPT_CHARS)
    aspect_ratio: Literal["16:9", "9:16"] | None = None
    duration_seconds: int | None = Field(default=None, ge=1, le=60)
    resolution: Literal["720p", "1080p"] | None = None
    sample_count: int | None = Field(default=None, ge=1, le=4)
    seed: int | None = Field(default=None, ge=0, le=2**32 - 1)
    person_generation: Literal["allow_all", "allow_adult", "dont_allow"] | None = None
    generate_audio: bool | None = None
    webhook_url: str | None = Field(default=None, max_length=2048)
    metadata: dict[str, Any] | None = None

    @field_validator("prompt")
    @classmethod
    def _prompt_has_text(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("prompt must not be blank")
        return value

    @field_validator("webhook_url")
    @classmethod
    def _webhook_is_http(cls, value: str | None) -> str | None:
        if value is not None and not value.lower().startswith(("https://", "http://")):
            raise ValueError("webhook_url must be an https URL")
        return value

    @field_validator("metadata")
    @classmethod
    def _metadata_is_small(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and len(json.dumps(value, separators=(",", ":")).encode()) > MAX_METADATA_BYTES:
            raise ValueError(f"metadata must serialise to at most {MAX_METADATA_BYTES} bytes of JSON")
        return value

    def options(self) -> set[str]:
        """The optional fields the client actually set (what a provider must be able to honour)."""
        return {name for name in self.model_fields_set if name not in {"prompt", "provider", "webhook_url", "metadata"}}


def parse_request(body: Any) -> GenerationRequest:
    if not isinstance(body, dict):
        raise ApiError(400, ErrorCode.INVALID_REQUEST, "the request body must be a JSON object")
    try:
        return GenerationRequest.model_validate(body)
    except ValidationError as exc:
        raise _api_error(exc) from None


def _api_error(exc: ValidationError) -> ApiError:
    first = exc.errors(include_url=False)[0]
    field = ".".join(str(part) for part in first["loc"]) or None
    kind = first["type"]
    if kind == "extra_forbidden":
        message = f"unknown field {field!r}"
    elif kind == "missing":
        message = f"{field} is required"
    else:
        message = f"{field}: {first['msg']}"
    return ApiError(400, ErrorCode.INVALID_REQUEST, message, field)
