"""The model catalog: every model a provider offers, as data (functions/veorelay/catalog/*.toml).

Pure: this module turns already-read TOML documents (dicts) into frozen dataclasses and checks
them; config.py reads the files. A bad document is a CatalogError naming the file and the key
("vertex.toml: models[2] (veo-3.1-lite-generate-001).price_per_second.4k: ...").

One provider document (the file's name is the provider):

    default_model = "veo-3.1-generate-001"
    notes = ["..."]                      # optional
    [[models]]
    id = "veo-3.1-generate-001"
    status = "ga"                        # ga | preview | retired
    retired_on = 2026-06-30              # a TOML date; required when retired (else: announced shutdown)
    replacement = "..."                  # required when retired; a non-retired model of the same provider
    tier = "standard"                    # standard | fast | lite | ...
    durations = [4, 6, 8]
    resolutions = { "720p" = [4, 6, 8], "1080p" = [8], "4k" = [8] }   # resolution -> durations allowed
    aspect_ratios = ["16:9", "9:16"]
    audio = "optional"                   # always | optional | none
    first_frame = true
    last_frame = true
    max_reference_images = 3
    reference_durations = [8]            # default: durations
    reference_aspect_ratios = ["16:9"]   # default: aspect_ratios
    requires = ["image"]                 # options the model cannot run without (default none)
    max_samples = 4
    price_per_second = { "720p" = 0.40 }           # USD per second of video, as listed (with audio
    price_per_second_silent = { "720p" = 0.20 }    # where it always makes audio); silent: audio off
    notes = ["..."]
    [models.extension]                   # absent: the model cannot extend a video
    added_seconds = 7
    max_input_seconds = 141
    input_resolutions = ["720p"]
    max_source_age_hours = 48            # absent: no limit known

The override document (VEO_CATALOG_FILE) holds one such table per provider it changes,
`[<provider>]` / `[[<provider>.models]]`: a model with an id the provider has replaces it
whole, a new id is added; `default_model` may change. merge_catalog applies it.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from types import MappingProxyType
from typing import Any

STATUSES = ("ga", "preview", "retired")
AUDIO = ("always", "optional", "none")
RESOLUTIONS = ("720p", "1080p", "4k")
ASPECT_RATIOS = ("16:9", "9:16")
REQUIRABLE = ("image", "last_frame", "reference_images")
MAX_SAMPLES = 4
MAX_REFERENCE_IMAGES = 3

_PROVIDER_KEYS = frozenset({"default_model", "notes", "models"})
_MODEL_KEYS = frozenset({
    "id", "status", "retired_on", "replacement", "tier", "durations", "resolutions", "aspect_ratios", "audio",
    "first_frame", "last_frame", "max_reference_images", "reference_durations", "reference_aspect_ratios", "requires",
    "extension", "max_samples", "price_per_second", "price_per_second_silent", "notes",
})
_EXTENSION_KEYS = frozenset({"added_seconds", "max_input_seconds", "input_resolutions", "max_source_age_hours"})


class CatalogError(ValueError):
    """A catalog document that does not describe models; the message names the file and key."""


@dataclass(frozen=True)
class ExtensionSpec:
    """How a model extends a video it (or Veo) made: each extension adds `added_seconds`."""

    added_seconds: int
    max_input_seconds: int
    input_resolutions: tuple[str, ...]
    max_source_age_hours: int | None = None  # the provider keeps its videos this long (None: no limit known)


@dataclass(frozen=True)
class ModelSpec:
    """One model of one provider, as its catalog file describes it."""

    id: str
    status: str  # "ga" | "preview" | "retired"
    tier: str
    durations: tuple[int, ...]
    resolutions: Mapping[str, tuple[int, ...]]  # resolution -> the durations allowed at it
    aspect_ratios: tuple[str, ...]
    audio: str  # "always" | "optional" | "none"
    first_frame: bool
    last_frame: bool
    max_reference_images: int
    reference_durations: tuple[int, ...]
    max_samples: int
    price_per_second: Mapping[str, float]  # resolution -> USD per second, as listed
    price_per_second_silent: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    retired_on: date | None = None
    replacement: str | None = None
    extension: ExtensionSpec | None = None
    reference_aspect_ratios: tuple[str, ...] = ()  # empty: aspect_ratios
    requires: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def retired(self) -> bool:
        return self.status == "retired"

    @property
    def default_resolution(self) -> str:
        """What the provider makes when no resolution is asked: the first listed (720p)."""
        return next(iter(self.resolutions))

    @property
    def default_duration(self) -> int:
        """What the provider makes when no duration is asked: the longest (Veo's default is 8 s)."""
        return max(self.durations)

    def durations_at(self, resolution: str | None) -> tuple[int, ...]:
        return tuple(self.resolutions.get(resolution or self.default_resolution, ()))

    def to_dict(self) -> dict[str, Any]:
        """As GET /providers shows it (JSON-ready)."""
        return {
            "id": self.id, "status": self.status, "retired_on": self.retired_on.isoformat() if self.retired_on else None,
            "replacement": self.replacement, "tier": self.tier, "durations": list(self.durations),
            "resolutions": {r: list(d) for r, d in self.resolutions.items()}, "aspect_ratios": list(self.aspect_ratios),
            "audio": self.audio, "first_frame": self.first_frame, "last_frame": self.last_frame,
            "max_reference_images": self.max_reference_images, "reference_durations": list(self.reference_durations),
            "reference_aspect_ratios": list(self.reference_aspect_ratios or self.aspect_ratios),
            "requires": list(self.requires), "max_samples": self.max_samples,
            "extension": None if self.extension is None else {
                "added_seconds": self.extension.added_seconds, "max_input_seconds": self.extension.max_input_seconds,
                "input_resolutions": list(self.extension.input_resolutions),
                "max_source_age_hours": self.extension.max_source_age_hours},
            "price_per_second": dict(self.price_per_second), "price_per_second_silent": dict(self.price_per_second_silent),
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class ProviderCatalog:
    """One provider's models, in the file's order, and its default model (never a retired one)."""

    provider: str
    default_model: str
    models: tuple[ModelSpec, ...]
    notes: tuple[str, ...] = ()

    def get(self, model_id: str) -> ModelSpec | None:
        return next((m for m in self.models if m.id == model_id), None)

    @property
    def offered(self) -> tuple[str, ...]:
        """The ids a job may run on: every model not retired, the default first."""
        ids = [m.id for m in self.models if not m.retired]
        return (self.default_model, *(i for i in ids if i != self.default_model))


@dataclass(frozen=True)
class Catalog:
    providers: Mapping[str, ProviderCatalog]

    def provider(self, name: str) -> ProviderCatalog:
        try:
            return self.providers[name]
        except KeyError:
            raise CatalogError(f"the catalog has no provider {name!r}") from None


def list_price_usd(spec: ModelSpec, resolution: str | None, seconds: int | None, samples: int | None,
                   audio: bool = True) -> float | None:
    """The list price of a generation (an estimate): seconds x samples x the price per second at
    that resolution; the silent price when audio is off and the model lists one. Defaults: the
    model's default resolution and duration, one sample. None when the catalog lists no price
    there (gateways with their own billing). A filtered generation is not billed: that is for
    the caller to know."""
    res = resolution or spec.default_resolution
    table = spec.price_per_second_silent if (not audio and res in spec.price_per_second_silent) else spec.price_per_second
    per_second = table.get(res)
    if per_second is None:
        return None
    return round(per_second * (seconds or spec.default_duration) * (samples or 1), 6)


# ------------------------------------------------------------------------------ parsing
class _Where:
    """The place a value was read from, for messages: `<file>: <key path>`."""

    def __init__(self, source: str, path: str = ""):
        self.source, self.path = source, path

    def __truediv__(self, key: object) -> _Where:
        key = f"[{key}]" if isinstance(key, int) else str(key)
        return _Where(self.source, f"{self.path}{key}" if key.startswith("[") or not self.path else f"{self.path}.{key}")

    def error(self, problem: str) -> CatalogError:
        return CatalogError(f"{self.source}: {self.path}: {problem}" if self.path else f"{self.source}: {problem}")


def _table(where: _Where, value: Any, allowed: frozenset[str], required: Iterable[str] = ()) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise where.error("must be a table")
    for key in value:
        if key not in allowed:
            raise (where / key).error(f"unknown key (known: {', '.join(sorted(allowed))})")
    for key in required:
        if key not in value:
            raise (where / key).error("is required")
    return dict(value)


def _str(where: _Where, value: Any, choices: Iterable[str] | None = None) -> str:
    if not isinstance(value, str) or not value.strip():
        raise where.error("must be a non-empty string")
    allowed = tuple(choices) if choices is not None else None
    if allowed is not None and value not in allowed:
        raise where.error(f"must be one of {', '.join(allowed)}")
    return value


def _bool(where: _Where, value: Any) -> bool:
    if not isinstance(value, bool):
        raise where.error("must be true or false")
    return value


def _int(where: _Where, value: Any, low: int, high: int | None = None) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < low or (high is not None and value > high):
        raise where.error(f"must be a whole number {low}..{high}" if high is not None else f"must be a whole number >= {low}")
    return value


def _list(where: _Where, value: Any, item: Any, *, empty_ok: bool = False) -> tuple[Any, ...]:
    if not isinstance(value, list) or (not value and not empty_ok):
        raise where.error("must be a non-empty list" if not empty_ok else "must be a list")
    items = tuple(item(where / i, v) for i, v in enumerate(value))
    if len(set(items)) != len(items):
        raise where.error("must not repeat a value")
    return items


def _durations(where: _Where, value: Any, within: tuple[int, ...] | None = None, *, empty_ok: bool = False) -> tuple[int, ...]:
    found = _list(where, value, lambda w, v: _int(w, v, 1, 60), empty_ok=empty_ok)
    if within is not None:
        for i, d in enumerate(found):
            if d not in within:
                raise (where / i).error(f"{d} is not one of the model's durations ({', '.join(map(str, within))})")
    return found


def _choices(where: _Where, value: Any, choices: tuple[str, ...]) -> tuple[str, ...]:
    return _list(where, value, lambda w, v: _str(w, v, choices))


def _prices(where: _Where, value: Any, resolutions: Mapping[str, tuple[int, ...]]) -> Mapping[str, float]:
    if not isinstance(value, Mapping):
        raise where.error("must be a table of resolution = USD per second")
    prices = {}
    for res, price in value.items():
        at = where / res
        if res not in resolutions:
            raise at.error(f"is not one of the model's resolutions ({', '.join(resolutions)})")
        if not isinstance(price, (int, float)) or isinstance(price, bool) or not math.isfinite(price):
            raise at.error("must be a number (USD per second)")
        if price < 0:
            raise at.error("must not be negative")
        prices[res] = float(price)
    return MappingProxyType(prices)


def _extension(where: _Where, value: Any) -> ExtensionSpec:
    data = _table(where, value, _EXTENSION_KEYS, ("added_seconds", "max_input_seconds", "input_resolutions"))
    age = data.get("max_source_age_hours")
    return ExtensionSpec(
        added_seconds=_int(where / "added_seconds", data["added_seconds"], 1, 60),
        max_input_seconds=_int(where / "max_input_seconds", data["max_input_seconds"], 1),
        input_resolutions=_choices(where / "input_resolutions", data["input_resolutions"], RESOLUTIONS),
        max_source_age_hours=None if age is None else _int(where / "max_source_age_hours", age, 1),
    )


def parse_model(where: _Where, value: Any) -> ModelSpec:
    named = value.get("id") if isinstance(value, Mapping) else None
    if isinstance(named, str) and named.strip():  # messages name the model: "models[2] (veo-x).status"
        where = _Where(where.source, f"{where.path} ({named})")
    data = _table(where, value, _MODEL_KEYS, ("id", "status", "tier", "durations", "resolutions", "aspect_ratios", "audio",
                                               "first_frame", "last_frame", "max_samples"))
    model_id = _str(where / "id", data["id"])
    status = _str(where / "status", data["status"], STATUSES)
    durations = _durations(where / "durations", data["durations"])
    res_where = where / "resolutions"
    raw_res = data["resolutions"]
    if not isinstance(raw_res, Mapping) or not raw_res:
        raise res_where.error("must be a non-empty table of resolution = [durations]")
    resolutions = {}
    for res, allowed in raw_res.items():
        if res not in RESOLUTIONS:
            raise (res_where / res).error(f"unknown resolution (known: {', '.join(RESOLUTIONS)})")
        resolutions[res] = _durations(res_where / res, allowed, durations)
    max_refs = _int(where / "max_reference_images", data.get("max_reference_images", 0), 0, MAX_REFERENCE_IMAGES)
    aspect_ratios = _choices(where / "aspect_ratios", data["aspect_ratios"], ASPECT_RATIOS)
    ref_aspects = _choices(where / "reference_aspect_ratios", data["reference_aspect_ratios"], aspect_ratios) \
        if "reference_aspect_ratios" in data else ()
    audio = _str(where / "audio", data["audio"], AUDIO)
    frozen_res = MappingProxyType(resolutions)
    silent = _prices(where / "price_per_second_silent", data.get("price_per_second_silent", {}), frozen_res)
    if silent and audio != "optional":
        raise (where / "price_per_second_silent").error('is only for a model whose audio is "optional"')
    retired_on = data.get("retired_on")
    if retired_on is not None and (not isinstance(retired_on, date) or hasattr(retired_on, "hour")):
        raise (where / "retired_on").error("must be a TOML date (YYYY-MM-DD)")
    replacement = _str(where / "replacement", data["replacement"]) if "replacement" in data else None
    if status == "retired" and retired_on is None:
        raise (where / "retired_on").error("is required for a retired model")
    if status == "retired" and replacement is None:
        raise (where / "replacement").error("is required for a retired model")
    if replacement == model_id:
        raise (where / "replacement").error("must name another model")
    return ModelSpec(
        id=model_id, status=status, tier=_str(where / "tier", data["tier"]), durations=durations, resolutions=frozen_res,
        aspect_ratios=aspect_ratios, audio=audio, first_frame=_bool(where / "first_frame", data["first_frame"]),
        last_frame=_bool(where / "last_frame", data["last_frame"]), max_reference_images=max_refs,
        reference_durations=_durations(where / "reference_durations", data["reference_durations"], durations)
        if "reference_durations" in data else durations,
        reference_aspect_ratios=ref_aspects,
        requires=_choices(where / "requires", data["requires"], REQUIRABLE) if data.get("requires") else (),
        max_samples=_int(where / "max_samples", data["max_samples"], 1, MAX_SAMPLES),
        price_per_second=_prices(where / "price_per_second", data.get("price_per_second", {}), frozen_res),
        price_per_second_silent=silent, retired_on=retired_on, replacement=replacement,
        extension=_extension(where / "extension", data["extension"]) if "extension" in data else None,
        notes=_list(where / "notes", data["notes"], _str, empty_ok=True) if "notes" in data else (),
    )


def _models(where: _Where, value: Any) -> list[ModelSpec]:
    if not isinstance(value, list):
        raise where.error("must be an array of tables ([[models]])")
    return [parse_model(where / i, item) for i, item in enumerate(value)]


def _checked(provider: str, default: str, models: list[ModelSpec], notes: tuple[str, ...],
             place: list[_Where], default_at: _Where) -> ProviderCatalog:
    """The rules across models: unique ids, replacements that exist and run, a default that runs.
    `place[i]` is where models[i] was read (for messages), `default_at` where the default was."""
    if not models:
        raise (default_at / "models").error("the provider has no model")
    by_id: dict[str, ModelSpec] = {}
    for i, model in enumerate(models):
        if model.id in by_id:
            raise place[i].error(f"model {model.id!r} is listed twice")
        by_id[model.id] = model
    for i, model in enumerate(models):
        if model.replacement is None:
            continue
        at = _Where(place[i].source, f"{place[i].path} ({model.id}).replacement")
        target = by_id.get(model.replacement)
        if target is None:
            raise at.error(f"names {model.replacement!r}, which this provider does not have")
        if target.retired:
            raise at.error(f"names {model.replacement!r}, which is retired too")
    chosen = by_id.get(default)
    if chosen is None:
        raise default_at.error(f"names {default!r}, which this provider does not have")
    if chosen.retired:
        raise default_at.error(f"names {default!r}, which is retired (use {chosen.replacement!r})")
    return ProviderCatalog(provider=provider, default_model=default, models=tuple(models), notes=notes)


def parse_provider(source: str, provider: str, document: Any) -> ProviderCatalog:
    """One provider's file (`source` names it in errors) as its ProviderCatalog."""
    where = _Where(source)
    data = _table(where, document, _PROVIDER_KEYS, ("default_model", "models"))
    notes = _list(where / "notes", data["notes"], _str, empty_ok=True) if "notes" in data else ()
    models = _models(where / "models", data["models"])
    return _checked(provider, _str(where / "default_model", data["default_model"]), models, notes,
                    [where / "models" / i for i in range(len(models))], where / "default_model")


def parse_catalog(documents: Mapping[str, tuple[str, Any]]) -> Catalog:
    """provider -> (source, document): the shipped catalog."""
    return Catalog(MappingProxyType({name: parse_provider(source, name, doc) for name, (source, doc) in documents.items()}))


def merge_catalog(base: Catalog, source: str, document: Any) -> Catalog:
    """`base` with the override document applied: per provider, models replaced (same id) or
    added, and the default changed if it says so. The result is checked as a whole."""
    where = _Where(source)
    if not isinstance(document, Mapping):
        raise where.error("must be a table of [<provider>] tables")
    providers = dict(base.providers)
    for name, table in document.items():
        at = where / name
        if name not in providers:
            raise at.error(f"unknown provider (known: {', '.join(providers)})")
        data = _table(at, table, _PROVIDER_KEYS)
        current = providers[name]
        models = list(current.models)
        shipped = _Where(f"{source} (over {name}.toml)")
        place = [shipped / "models" / j for j in range(len(models))]
        for i, spec in enumerate(_models(at / "models", data.get("models", []))):
            index = next((j for j, m in enumerate(models) if m.id == spec.id), None)
            if index is None:
                models.append(spec)
                place.append(at / "models" / i)
            else:
                models[index], place[index] = spec, at / "models" / i
        default = _str(at / "default_model", data["default_model"]) if "default_model" in data else current.default_model
        notes = _list(at / "notes", data["notes"], _str, empty_ok=True) if "notes" in data else current.notes
        default_at = at / "default_model" if "default_model" in data else shipped / "default_model"
        providers[name] = _checked(name, default, models, notes, place, default_at)
    return Catalog(MappingProxyType(providers))
