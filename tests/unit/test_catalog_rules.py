"""Every rule of the capability check that the catalog supplies: resolutions and their
durations (1080p and 4k: 8 s), reference images (8 s, 16:9), lite limits, frames, samples,
audio, and retired models refused with their replacement — all before anything is paid for."""
from __future__ import annotations

import pytest

from veorelay.config import shipped_catalog
from veorelay.core.capabilities import Capabilities, check_request
from veorelay.core.catalog import parse_provider
from veorelay.core.errors import ApiError
from veorelay.core.request import parse_request
from veorelay.providers import FACTORIES

IMG = {"gcs_uri": "gs://veo-bucket/inputs/x/image.png", "mime_type": "image/png"}
REF = {"image": IMG, "type": "asset"}
ALL_OPTIONS = {"model", "aspect_ratio", "duration_seconds", "resolution", "sample_count", "generate_audio",
               "image", "last_frame", "reference_images"}


def caps_of(provider: str) -> Capabilities:
    return FACTORIES[provider].capabilities_for(shipped_catalog().provider(provider))  # type: ignore[attr-defined]


GEMINI, VERTEX, NEWAPI = caps_of("gemini"), caps_of("vertex"), caps_of("newapi")


def model_for(caps, **fields):
    return check_request(caps, parse_request({"prompt": "p", **fields}))


def refused(caps, **fields) -> ApiError:
    with pytest.raises(ApiError) as caught:
        model_for(caps, **fields)
    assert (caught.value.status, caught.value.code) == (400, "unsupported_option")
    return caught.value


@pytest.mark.parametrize("caps", [GEMINI, VERTEX], ids=["gemini", "vertex"])
@pytest.mark.parametrize("resolution", ["1080p", "4k"])
def test_1080p_and_4k_need_8_seconds(caps, resolution):
    assert model_for(caps, resolution=resolution, duration_seconds=8) == caps.default_model
    assert model_for(caps, resolution=resolution) == caps.default_model  # no duration: the 8 s default
    for seconds in (4, 6):
        error = refused(caps, resolution=resolution, duration_seconds=seconds)
        assert error.field == "duration_seconds"
        assert error.message == f"{resolution} on model {caps.default_model} needs duration_seconds 8"
    assert model_for(caps, resolution="720p", duration_seconds=4) == caps.default_model


@pytest.mark.parametrize("caps,standard", [(GEMINI, "veo-3.1-generate-preview"), (VERTEX, "veo-3.1-generate-001")],
                         ids=["gemini", "vertex"])
def test_reference_images_need_8_seconds_and_landscape(caps, standard):
    assert model_for(caps, reference_images=[REF] * 3, duration_seconds=8) == standard
    error = refused(caps, reference_images=[REF], duration_seconds=6)
    assert (error.field, error.message) == ("duration_seconds", f"reference images on model {standard} need duration_seconds 8")
    error = refused(caps, reference_images=[REF], aspect_ratio="9:16")
    assert (error.field, error.message) == ("aspect_ratio", f"reference images on model {standard} need aspect_ratio 16:9")
    assert model_for(caps, aspect_ratio="9:16") == standard  # portrait without references is fine


@pytest.mark.parametrize("caps,lite", [(GEMINI, "veo-3.1-lite-generate-preview"), (VERTEX, "veo-3.1-lite-generate-001")],
                         ids=["gemini", "vertex"])
def test_lite_models_have_their_own_limits(caps, lite):
    assert model_for(caps, model=lite, resolution="1080p", duration_seconds=8) == lite
    assert model_for(caps, model=lite, duration_seconds=4, image=IMG, last_frame=IMG) == lite
    error = refused(caps, model=lite, resolution="4k")
    assert (error.field, error.message) == ("resolution", f"model {lite} makes 720p, 1080p videos only")
    error = refused(caps, model=lite, reference_images=[REF])
    assert error.field == "reference_images" and "(not " + lite + ")" in error.message
    assert refused(caps, model=lite, resolution="1080p", duration_seconds=6).field == "duration_seconds"


@pytest.mark.parametrize("caps,retired,replacement,date", [
    (VERTEX, "veo-3.0-generate-001", "veo-3.1-generate-001", "2026-06-30"),
    (VERTEX, "veo-3.0-fast-generate-001", "veo-3.1-fast-generate-001", "2026-06-30"),
    (VERTEX, "veo-2.0-generate-001", "veo-3.1-generate-001", "2026-06-30"),
    (VERTEX, "veo-3.1-generate-preview", "veo-3.1-generate-001", "2026-04-02"),
    (GEMINI, "veo-3.0-generate-001", "veo-3.1-generate-preview", "2026-06-30"),
    (NEWAPI, "veo-3.0-fast-generate-001", "veo-3.1-fast-generate-preview", "2026-06-30"),
])
def test_a_retired_model_is_refused_naming_its_replacement(caps, retired, replacement, date):
    # even with options the retired model could not run: the model is the first thing said
    error = refused(caps, model=retired, resolution="1080p", duration_seconds=4)
    assert error.field == "model"
    assert error.message == f"model {retired!r} was retired on {date}; use {replacement!r} instead"
    assert model_for(caps, model=replacement) == replacement


def test_a_model_no_catalog_knows_is_not_offered():
    error = refused(VERTEX, model="veo-9-ultra")
    assert error.field == "model" and error.message.startswith("model 'veo-9-ultra' is not offered; choose one of veo-3.1-generate-001")
    assert "veo-3.0-generate-001" not in error.message  # retired models are not offered


def test_last_frame_runs_on_the_models_that_have_it():
    catalog = parse_provider("p.toml", "p", {"default_model": "old-style", "models": [
        rules(id="old-style", last_frame=False), rules(id="frames")]})
    caps = Capabilities.from_catalog(catalog, options=ALL_OPTIONS)
    assert model_for(caps, image=IMG, last_frame=IMG) == "frames"  # picked: the default has no last frame
    error = refused(caps, model="old-style", image=IMG, last_frame=IMG)
    assert (error.field, error.message) == ("last_frame", "last_frame needs model frames on this provider (not old-style)")


def rules(**fields):
    base = {"id": "m", "status": "ga", "tier": "standard", "durations": [4, 6, 8], "resolutions": {"720p": [4, 6, 8]},
            "aspect_ratios": ["16:9", "9:16"], "audio": "optional", "first_frame": True, "last_frame": True, "max_samples": 4}
    return {**base, **fields}


def test_samples_and_audio_follow_each_model():
    catalog = parse_provider("p.toml", "p", {"default_model": "one", "models": [
        rules(id="one", max_samples=1, audio="always"), rules(id="silent", audio="none", max_samples=2)]})
    caps = Capabilities.from_catalog(catalog, options=ALL_OPTIONS)
    assert caps.max_samples == 2
    error = refused(caps, model="one", sample_count=2)
    assert (error.field, error.message) == ("sample_count", "model one makes at most 1 videos per job")
    assert model_for(caps, sample_count=2) == "silent"  # without a model: the one that can
    assert refused(caps, model="one", generate_audio=False).field == "generate_audio"  # it always makes audio
    assert refused(caps, model="silent", generate_audio=True).field == "generate_audio"  # it makes none
    assert model_for(caps, model="silent", generate_audio=False) == "silent"


def test_vertex_can_turn_audio_off_the_gemini_api_cannot():
    assert model_for(VERTEX, generate_audio=False) == "veo-3.1-generate-001"
    assert refused(GEMINI, generate_audio=False).field == "generate_audio"  # the dialect cannot send it


def test_model_spec_gives_the_catalog_entry_retired_models_too():
    assert VERTEX.model_spec("veo-3.1-generate-001").price_per_second["4k"] == 0.60
    assert VERTEX.model_spec("veo-3.0-generate-001").replacement == "veo-3.1-generate-001"
    assert VERTEX.model_spec("veo-9") is None
    assert VERTEX.models == ("veo-3.1-generate-001", "veo-3.1-fast-generate-001", "veo-3.1-lite-generate-001")
    assert VERTEX.resolutions == ("720p", "1080p", "4k") and VERTEX.durations == (4, 6, 8)


def test_get_providers_shows_every_model_with_status_replacement_rules_and_prices():
    table = VERTEX.to_dict()
    entries = {entry["id"]: entry for entry in table["catalog"]}
    assert table["default_model"] == "veo-3.1-generate-001" and "veo-3.0-generate-001" not in table["models"]
    assert entries["veo-3.0-generate-001"]["status"] == "retired"
    assert (entries["veo-3.0-generate-001"]["replacement"], entries["veo-3.0-generate-001"]["retired_on"]) == (
        "veo-3.1-generate-001", "2026-06-30")
    standard = entries["veo-3.1-generate-001"]
    assert standard["resolutions"] == {"720p": [4, 6, 8], "1080p": [8], "4k": [8]}
    assert standard["price_per_second"] == {"720p": 0.4, "1080p": 0.4, "4k": 0.6}
    assert standard["extension"] == {"added_seconds": 7, "max_input_seconds": 30, "input_resolutions": ["720p", "1080p"],
                                     "max_source_age_hours": None}
    assert standard["reference_durations"] == [8] and standard["reference_aspect_ratios"] == ["16:9"]
