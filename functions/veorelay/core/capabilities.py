"""Can this provider honour this request? Checked when a job is submitted, before anything is
stored or paid for: a refusal is a 400 `unsupported_option` naming the field at fault.

Two sources: what the dialect can send (its `options`, reference types, pairs it cannot combine:
providers/<dialect>.py) and what each model can do (the catalog, core/catalog.py: durations,
per-resolution durations, aspect ratios, frames, reference images, samples, audio, status)."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from veorelay.core.catalog import RESOLUTIONS, ModelSpec, ProviderCatalog
from veorelay.core.errors import ApiError, ErrorCode
from veorelay.core.request_limits import MAX_IMAGE_BYTES

if TYPE_CHECKING:
    from veorelay.core.request import GenerationRequest


@dataclass(frozen=True)
class Capabilities:
    """What a provider can honour; a request asking for more is refused before any call
    (check_request below reads these). GET /providers shows them as they are.

    Built from the catalog with `from_catalog` (every real provider): `specs` holds its models,
    retired ones too, and the provider-wide fields are what its offered models allow together.
    Without specs (test doubles) every model follows the provider-wide fields."""

    models: tuple[str, ...]  # the models a job may run on (not retired), the default first
    default_model: str
    options: frozenset[str]  # the request fields the dialect can send
    aspect_ratios: tuple[str, ...] = ("16:9", "9:16")
    durations: tuple[int, ...] = (4, 6, 8)
    resolutions: tuple[str, ...] = ("720p", "1080p")
    max_samples: int = 4
    max_reference_images: int = 0
    reference_types: tuple[str, ...] = ("asset", "style")
    image_types: tuple[str, ...] = ("image/png", "image/jpeg", "image/webp")
    max_image_bytes: int = MAX_IMAGE_BYTES
    # pairs of options the provider cannot combine in one job
    exclusive: tuple[tuple[str, str], ...] = ()
    streaming: bool = False  # answers with a stream held by stream_job, not polled
    notes: tuple[str, ...] = ()
    specs: tuple[ModelSpec, ...] = field(default=(), repr=False)  # the catalog's models

    @classmethod
    def from_catalog(cls, catalog: ProviderCatalog, *, options: Iterable[str], notes: Iterable[str] = (),
                     **dialect: Any) -> Capabilities:
        """The dialect's own limits (options, reference_types, exclusive, streaming...) with its
        catalog's models."""
        live = [m for m in catalog.models if not m.retired]
        return cls(
            models=catalog.offered, default_model=catalog.default_model, options=frozenset(options),
            aspect_ratios=tuple(dict.fromkeys(a for m in live for a in m.aspect_ratios)),
            durations=tuple(sorted({d for m in live for d in m.durations})),
            resolutions=tuple(r for r in RESOLUTIONS if any(r in m.resolutions for m in live)),
            max_samples=max(m.max_samples for m in live),
            max_reference_images=max(m.max_reference_images for m in live),
            notes=(*notes, *catalog.notes), specs=catalog.models, **dialect,
        )

    def model_spec(self, model_id: str) -> ModelSpec | None:
        """The catalog's entry for `model_id` (retired models too); None if the catalog has none."""
        return next((m for m in self.specs if m.id == model_id), None)

    def spec_for(self, model_id: str) -> ModelSpec:
        """The rules `model_id` follows: its catalog entry, else the provider-wide fields."""
        spec = self.model_spec(model_id)
        if spec is not None:
            return spec
        durations = self.durations or (8,)
        return ModelSpec(
            id=model_id, status="ga", tier="", durations=durations,
            resolutions=MappingProxyType(dict.fromkeys(self.resolutions or ("720p",), durations)),
            aspect_ratios=self.aspect_ratios, audio="optional", first_frame=True, last_frame=True,
            max_reference_images=self.max_reference_images, reference_durations=durations,
            max_samples=self.max_samples, price_per_second=MappingProxyType({}),
        )

    def to_dict(self) -> dict[str, Any]:
        """GET /providers: the provider-wide limits and, under `catalog`, every model with its
        status, replacement, rules and list prices."""
        return {
            "models": list(self.models), "default_model": self.default_model, "options": sorted(self.options),
            "aspect_ratios": list(self.aspect_ratios), "durations": list(self.durations),
            "resolutions": list(self.resolutions), "max_samples": self.max_samples,
            "max_reference_images": self.max_reference_images, "reference_types": list(self.reference_types),
            "image_types": list(self.image_types), "max_image_bytes": self.max_image_bytes,
            "exclusive": [list(pair) for pair in self.exclusive], "streaming": self.streaming, "notes": list(self.notes),
            "catalog": [spec.to_dict() for spec in self.specs],
        }


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
    if req.model is not None:
        _check_named_model(caps, req.model)
    _check_values(caps, req)
    _check_images(caps, req)
    return resolve_model(caps, req)


def _check_named_model(caps: Capabilities, model: str) -> None:
    """A model the provider does not offer: retired (named with its replacement) or unknown."""
    spec = caps.model_spec(model)
    if spec is not None and spec.retired:
        raise retired(spec)
    if model not in caps.models:
        raise unsupported("model", f"model {model!r} is not offered; choose one of {', '.join(caps.models)}")


def retired(spec: ModelSpec) -> ApiError:
    when = f" on {spec.retired_on.isoformat()}" if spec.retired_on else ""
    return unsupported("model", f"model {spec.id!r} was retired{when}; use {spec.replacement!r} instead")


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
        _check_named_model(caps, req.model)
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


def _having(caps: Capabilities, test: Any) -> str:
    """The offered models that pass `test`, for a message ("A or B")."""
    found = [m for m in caps.models if test(caps.spec_for(m))]
    return " or ".join(found) if found else "a model this provider does not offer"


def model_problem(caps: Capabilities, model: str, req: GenerationRequest) -> ApiError | None:
    """Why `model` cannot run `req` (the first rule it breaks), or None. Every rule reads the
    model's catalog entry."""
    spec = caps.spec_for(model)
    if spec.retired:
        return retired(spec)
    return _inputs_problem(caps, spec, req) or _shape_problem(spec, req) or _output_problem(spec, req)


def _inputs_problem(caps: Capabilities, spec: ModelSpec, req: GenerationRequest) -> ApiError | None:
    """First frame, last frame, reference images, and the inputs the model cannot run without."""
    model = spec.id
    refs = len(req.reference_images or [])
    if req.image is not None and not spec.first_frame:
        return unsupported("image", f"image needs model {_having(caps, lambda s: s.first_frame)} on this provider (not {model})")
    if req.last_frame is not None and not spec.last_frame:
        having = _having(caps, lambda s: s.last_frame)
        return unsupported("last_frame", f"last_frame needs model {having} on this provider (not {model})")
    if refs > spec.max_reference_images:
        if spec.max_reference_images == 0:
            return unsupported("reference_images", f"reference_images needs model "
                               f"{_having(caps, lambda s: s.max_reference_images > 0)} on this provider (not {model})")
        return unsupported("reference_images", f"model {model} takes at most {spec.max_reference_images} reference images")
    if req.extend is not None and spec.extension is None:
        extending = _having(caps, lambda s: s.extension is not None)
        return unsupported("extend", f"extend needs model {extending} on this provider (not {model})")
    asked = req.options()
    for option in spec.requires:
        if option not in asked:
            return unsupported(option, f"model {model} needs {option}")
    return None


def _shape_problem(spec: ModelSpec, req: GenerationRequest) -> ApiError | None:
    """Aspect ratio, duration and resolution, and the durations each resolution and reference
    images allow (1080p and 4k: 8 s; reference images: 8 s)."""
    model = spec.id
    refs = bool(req.reference_images)
    if req.aspect_ratio is not None and req.aspect_ratio not in spec.aspect_ratios:
        return unsupported("aspect_ratio", f"model {model} makes {' or '.join(spec.aspect_ratios)} videos only")
    ref_aspects = spec.reference_aspect_ratios or spec.aspect_ratios
    if refs and req.aspect_ratio is not None and req.aspect_ratio not in ref_aspects:
        return unsupported("aspect_ratio", f"reference images on model {model} need aspect_ratio {' or '.join(ref_aspects)}")
    if req.duration_seconds is not None and req.duration_seconds not in spec.durations:
        return unsupported("duration_seconds", f"model {model} takes duration_seconds {', '.join(map(str, spec.durations))}")
    if req.resolution is not None and req.resolution not in spec.resolutions:
        return unsupported("resolution", f"model {model} makes {', '.join(spec.resolutions)} videos only")
    resolution = req.resolution or spec.default_resolution
    seconds = req.duration_seconds or spec.default_duration
    allowed = spec.durations_at(resolution)
    if seconds not in allowed:
        return unsupported("duration_seconds" if req.duration_seconds is not None else "resolution",
                           f"{resolution} on model {model} needs duration_seconds {' or '.join(map(str, allowed))}")
    if refs and seconds not in spec.reference_durations:
        return unsupported("duration_seconds", f"reference images on model {model} need duration_seconds "
                           f"{' or '.join(map(str, spec.reference_durations))}")
    return None


def _output_problem(spec: ModelSpec, req: GenerationRequest) -> ApiError | None:
    """How many videos, and audio."""
    model = spec.id
    if req.sample_count is not None and req.sample_count > spec.max_samples:
        return unsupported("sample_count", f"model {model} makes at most {spec.max_samples} videos per job")
    if req.generate_audio is False and spec.audio == "always":
        return unsupported("generate_audio", f"model {model} always makes audio")
    if req.generate_audio is True and spec.audio == "none":
        return unsupported("generate_audio", f"model {model} makes no audio")
    return None
