"""A job's request as accepted and stored: what the steps after acceptance hand a provider.

core/request.py validates a request once, when it is accepted, and the job record keeps it
(stored_request: images as gs:// inputs, never bytes). The steps that submit and stream the job
read that record back into these plain frozen dataclasses: the record is veo-relay's own, so
there is nothing to validate again, and the functions that run those steps (submit_job,
stream_job) never import pydantic nor build the request schema, their largest cost beyond the
Google clients at a cold start (docs/BENCHMARKS.md, part 5). Field names are GenerationRequest's
(tests/unit/test_accepted_request.py keeps them in step).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class AcceptedImage:
    """An input image as stored: its object in the bucket (steps/images.py copied it there)."""

    gcs_uri: str
    mime_type: str


@dataclass(frozen=True)
class AcceptedReference:
    image: AcceptedImage
    type: str = "asset"


@dataclass(frozen=True)
class AcceptedSourceVideo:
    """The video an extension continues (core/request.py SourceVideo)."""

    provider_uri: str | None = None
    gcs_uri: str | None = None
    mime_type: str = "video/mp4"
    duration_seconds: float | None = None


@dataclass(frozen=True)
class AcceptedExtend:
    job_id: str
    output: int = 0
    video: AcceptedSourceVideo | None = None


@dataclass(frozen=True)
class AcceptedRequest:
    """The provider-neutral request of one accepted job, its model resolved."""

    prompt: str
    model: str | None = None
    negative_prompt: str | None = None
    aspect_ratio: str | None = None
    duration_seconds: int | None = None
    resolution: str | None = None
    sample_count: int | None = None
    seed: int | None = None
    person_generation: str | None = None
    generate_audio: bool | None = None
    image: AcceptedImage | None = None
    last_frame: AcceptedImage | None = None
    reference_images: tuple[AcceptedReference, ...] | None = None
    extend: AcceptedExtend | None = None

    def images(self) -> list[tuple[str, AcceptedImage]]:
        """Every input image with the field that names it, in GenerationRequest.images' order."""
        found = [("image", self.image), ("last_frame", self.last_frame)]
        found += [(f"reference_images.{i}.image", ref.image) for i, ref in enumerate(self.reference_images or ())]
        return [(name, image) for name, image in found if image is not None]


_SCALARS = ("prompt", "negative_prompt", "aspect_ratio", "duration_seconds", "resolution", "sample_count", "seed",
            "person_generation", "generate_audio")


def accepted_request(request: Mapping[str, Any], model: str | None) -> AcceptedRequest:
    """A job record's `request` (and its `model`) as an AcceptedRequest; unknown keys are not read."""
    references = request.get("reference_images")
    extend = request.get("extend")
    return AcceptedRequest(
        **{name: request[name] for name in _SCALARS if request.get(name) is not None},
        model=model,
        image=_image(request.get("image")),
        last_frame=_image(request.get("last_frame")),
        reference_images=tuple(AcceptedReference(_stored(ref["image"]), ref.get("type", "asset")) for ref in references)
        if references else None,
        extend=AcceptedExtend(extend["job_id"], int(extend.get("output", 0)), _video(extend.get("video"))) if extend else None,
    )


def _image(stored: Mapping[str, Any] | None) -> AcceptedImage | None:
    return _stored(stored) if stored else None


def _stored(stored: Mapping[str, Any]) -> AcceptedImage:
    return AcceptedImage(stored["gcs_uri"], stored["mime_type"])


def _video(stored: Mapping[str, Any] | None) -> AcceptedSourceVideo | None:
    if not stored:
        return None
    return AcceptedSourceVideo(stored.get("provider_uri"), stored.get("gcs_uri"), stored.get("mime_type", "video/mp4"),
                               stored.get("duration_seconds"))
