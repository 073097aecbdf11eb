"""Can this provider honour this request? Checked when a job is submitted, before anything is
stored or paid for: a refusal is a 400 `unsupported_option` naming the field at fault."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from veorelay.core.errors import ApiError, ErrorCode
from veorelay.core.request import MAX_IMAGE_BYTES, GenerationRequest


@dataclass(frozen=True)
class Capabilities:
    """What a provider can honour; a request asking for more is refused before any call
    (check_request below reads these). GET /providers shows them as they are."""

    models: tuple[str, ...]
    default_model: str
    options: frozenset[str]
    aspect_ratios: tuple[str, ...] = ("16:9", "9:16")
    durations: tuple[int, ...] = (4, 6, 8)
    resolutions: tuple[str, ...] = ("720p", "1080p")
    max_samples: int = 4
    max_reference_images: int = 0
    reference_types: tuple[str, ...] = ("asset", "style")
    image_types: tuple[str, ...] = ("image/png", "image/jpeg", "image/webp")
    max_image_bytes: int = MAX_IMAGE_BYTES
    # option -> the only models that honour it (e.g. last_frame on Veo 3.1 only)
    option_models: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # model -> options it cannot run without (Flow's image-to-video model needs an image)
    model_requires: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # model -> its own aspect ratios / durations where they differ from the provider's
    model_aspect_ratios: dict[str, tuple[str, ...]] = field(default_factory=dict)
    model_durations: dict[str, tuple[int, ...]] = field(default_factory=dict)
    # pairs of options the provider cannot combine in one job
    exclusive: tuple[tuple[str, str], ...] = ()
    streaming: bool = False  # answers with a stream held by stream_job, not polled
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["options"] = sorted(self.options)
        return data


def unsupported(field: str, message: str) -> ApiError:
    return ApiError(400, ErrorCode.UNSUPPORTED_OPTION, message, field)


def check_request(caps: Capabilities, req: GenerationRequest) -> str:
    """Refuse what the provider cannot do; return the model the job will run on."""
    asked = req.options()
    for option in sorted(asked - caps.options):
        raise unsupported(option, f"this provider does not support {option}")
    for first, second in caps.exclusive:
        if first in asked and second in asked:
            raise unsupported(second, f"this provider cannot combine {first} with {second}")
    _check_values(caps, req)
    _check_images(caps, req)
    return resolve_model(caps, req)


def _check_values(caps: Capabilities, req: GenerationRequest) -> None:
    """Aspect ratio, duration, resolution and sample count within what the provider offers."""
    if req.aspect_ratio is not None and req.aspect_ratio not in caps.aspect_ratios:
        raise unsupported("aspect_ratio", f"aspect_ratio must be one of {', '.join(caps.aspect_ratios)}")
    if req.duration_seconds is not None and req.duration_seconds not in caps.durations:
        raise unsupported("duration_seconds", f"duration_seconds must be one of {', '.join(map(str, caps.durations))}")
    if req.resolution is not None and req.resolution not in caps.resolutions:
        raise unsupported("resolution", f"resolution must be one of {', '.join(caps.resolutions)}")
    if req.sample_count is not None and req.sample_count > caps.max_samples:
        raise unsupported("sample_count", f"sample_count must be at most {caps.max_samples} on this provider")


def _check_images(caps: Capabilities, req: GenerationRequest) -> None:
    """Reference images (how many, which types) and every image's declared type."""
    refs = req.reference_images or []
    if len(refs) > caps.max_reference_images:
        raise unsupported("reference_images", f"this provider takes at most {caps.max_reference_images} reference images")
    for i, ref in enumerate(refs):
        if ref.type not in caps.reference_types:
            raise unsupported(f"reference_images.{i}.type", f"reference image type must be one of {', '.join(caps.reference_types)}")
    for name, image in req.images():
        if image.mime_type is not None and image.mime_type not in caps.image_types:
            raise unsupported(f"{name}.mime_type", f"images must be one of {', '.join(caps.image_types)}")


def resolve_model(caps: Capabilities, req: GenerationRequest) -> str:
    """The client's model if it honours every option asked; without one, the first model (the
    default first) that does, so `last_frame` alone picks a model that supports it. A duration
    never changes the model (a silent switch to an older model would surprise more than help)."""
    if req.model is not None:
        if req.model not in caps.models:
            raise unsupported("model", f"model {req.model!r} is not offered; choose one of {', '.join(caps.models)}")
        problem = model_problem(caps, req.model, req)
        if problem:
            raise problem
        return req.model
    candidates = [caps.default_model] + [m for m in caps.models if m != caps.default_model]
    first_problem = None
    for model in candidates:
        problem = model_problem(caps, model, req)
        if problem is None:
            return model
        if model == caps.default_model and problem.field == "duration_seconds":
            raise problem
        first_problem = first_problem or problem
    raise first_problem  # type: ignore[misc]  # candidates is never empty


def model_problem(caps: Capabilities, model: str, req: GenerationRequest) -> ApiError | None:
    asked = req.options()
    for option, models in caps.option_models.items():
        if option in asked and model not in models:
            return unsupported(option, f"{option} needs model {' or '.join(models)} on this provider (not {model})")
    for option in caps.model_requires.get(model, ()):
        if option not in asked:
            return unsupported(option, f"model {model} needs {option}")
    aspects = caps.model_aspect_ratios.get(model)
    if aspects and req.aspect_ratio is not None and req.aspect_ratio not in aspects:
        return unsupported("aspect_ratio", f"model {model} makes {' or '.join(aspects)} videos only")
    durations = caps.model_durations.get(model)
    if durations and req.duration_seconds is not None and req.duration_seconds not in durations:
        return unsupported("duration_seconds", f"model {model} takes duration_seconds {', '.join(map(str, durations))}")
    return None
