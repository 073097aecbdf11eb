"""What each provider can honour, checked before anything is paid for, and the model a job runs on."""
import pytest

from veorelay.config import shipped_catalog
from veorelay.core.capabilities import check_request
from veorelay.core.errors import ApiError
from veorelay.core.request import parse_request
from veorelay.providers import FACTORIES

IMG = {"gcs_uri": "gs://veo-bucket/inputs/x/image.png", "mime_type": "image/png"}
REF = {"image": IMG, "type": "asset"}


def caps_of(provider: str):
    """The provider's capabilities over the shipped catalog (what a deployment without VEO_CATALOG_FILE has)."""
    return FACTORIES[provider].capabilities_for(shipped_catalog().provider(provider))  # type: ignore[attr-defined]


NEWAPI, FLOW, GENAIPRO, GEMINI, VERTEX, LITELLM = map(caps_of, ("newapi", "flow", "genaipro", "gemini", "vertex", "litellm-gemini"))


def model_for(caps, **fields):
    return check_request(caps, parse_request({"prompt": "p", **fields}))


def refused(caps, **fields) -> ApiError:
    with pytest.raises(ApiError) as caught:
        model_for(caps, **fields)
    assert caught.value.status == 400 and caught.value.code == "unsupported_option"
    return caught.value


@pytest.mark.parametrize("fields,model", [
    ({}, "veo-3.1-fast-generate-preview"),
    ({"image": IMG, "last_frame": IMG}, "veo-3.1-fast-generate-preview"),  # lastFrame needs Veo 3.1
    ({"reference_images": [REF]}, "veo-3.1-generate-preview"),  # the only model with references
    ({"model": "veo-3.1-generate-preview", "image": IMG, "last_frame": IMG, "reference_images": [REF] * 3}, "veo-3.1-generate-preview"),
])
def test_newapi_picks_a_model_that_honours_the_request(fields, model):
    assert model_for(NEWAPI, **fields) == model


@pytest.mark.parametrize("fields,field", [
    ({"sample_count": 2}, "sample_count"),
    ({"model": "veo-3.0-generate-001", "image": IMG, "last_frame": IMG}, "model"),  # retired: refused before its rules
    ({"model": "veo-3.1-fast-generate-preview", "reference_images": [REF]}, "reference_images"),
    ({"seed": 1}, "seed"),
    ({"generate_audio": False}, "generate_audio"),
])
def test_newapi_refuses_what_the_gateway_would_fail_later(fields, field):
    assert refused(NEWAPI, **fields).field == field


@pytest.mark.parametrize("fields,model", [
    ({}, "veo_3_1_t2v_fast"),
    ({"aspect_ratio": "9:16"}, "veo_3_1_t2v_fast_portrait"),
    ({"image": IMG}, "veo_3_1_i2v_s_fast_fl"),
    ({"image": IMG, "last_frame": IMG, "aspect_ratio": "9:16"}, "veo_3_1_i2v_s_fast_fl"),
    ({"reference_images": [REF, REF]}, "veo_3_0_r2v_fast_ultra"),
])
def test_flow_chooses_its_model_key_from_the_request(fields, model):
    assert model_for(FLOW, **fields) == model


@pytest.mark.parametrize("fields,field", [
    ({"model": "veo_3_1_t2v_fast_portrait", "aspect_ratio": "16:9"}, "aspect_ratio"),
    ({"model": "veo_3_0_r2v_fast_ultra"}, "reference_images"),
    ({"image": IMG, "reference_images": [REF]}, "image"),
    ({"reference_images": [{"image": IMG, "type": "style"}]}, "reference_images.0.type"),
    ({"duration_seconds": 8}, "duration_seconds"),
    ({"negative_prompt": "no"}, "negative_prompt"),
])
def test_flow_refusals_name_the_field(fields, field):
    assert refused(FLOW, **fields).field == field


@pytest.mark.parametrize("fields,field", [
    ({"image": IMG, "reference_images": [REF]}, "reference_images"),
    ({"reference_images": [REF], "aspect_ratio": "16:9"}, "aspect_ratio"),
    ({"model": "veo-3.1-generate-preview"}, "model"),
    ({"resolution": "1080p"}, "resolution"),
])
def test_genaipro_refusals_name_the_field(fields, field):
    assert refused(GENAIPRO, **fields).field == field


@pytest.mark.parametrize("caps,standard,fast", [
    (GEMINI, "veo-3.1-generate-preview", "veo-3.1-fast-generate-preview"),
    (LITELLM, "veo-3.1-generate-preview", "veo-3.1-fast-generate-preview"),
    (VERTEX, "veo-3.1-generate-001", "veo-3.1-fast-generate-001"),
], ids=["gemini", "litellm-gemini", "vertex"])
def test_google_dialects_keep_frames_and_references_to_the_models_that_have_them(caps, standard, fast):
    assert caps.default_model == standard
    assert model_for(caps, image=IMG, last_frame=IMG) == standard
    assert model_for(caps, reference_images=[REF]) == standard
    assert refused(caps, model=fast, reference_images=[REF]).field == "reference_images"
    assert model_for(caps, model=fast, image=IMG, last_frame=IMG) == fast
    assert model_for(caps, image=IMG) == caps.default_model


def test_a_duration_never_switches_the_model_silently():
    assert refused(GEMINI, duration_seconds=5).field == "duration_seconds"  # no model offered takes 5 s
    # 1080p at 4 s: the default refuses it, and no other model is tried in its place
    error = refused(GEMINI, resolution="1080p", duration_seconds=4)
    assert error.field == "duration_seconds" and "needs duration_seconds 8" in error.message


def test_capabilities_serialise_for_get_providers():
    table = FLOW.to_dict()
    assert table["options"] == sorted(table["options"])
    requires = {entry["id"]: entry["requires"] for entry in table["catalog"]}
    assert requires == {"veo_3_1_t2v_fast": [], "veo_3_1_t2v_fast_portrait": [],
                        "veo_3_1_i2v_s_fast_fl": ["image"], "veo_3_0_r2v_fast_ultra": ["reference_images"]}
    assert GENAIPRO.to_dict()["exclusive"] == [["image", "reference_images"], ["reference_images", "aspect_ratio"]]
