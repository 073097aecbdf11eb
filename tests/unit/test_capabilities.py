"""What each provider can honour, checked before anything is paid for, and the model a job runs on."""
import pytest

from veorelay.core.capabilities import check_request
from veorelay.core.errors import ApiError
from veorelay.core.request import parse_request
from veorelay.providers import flow, gemini, genaipro, litellm_gemini, newapi, vertex

IMG = {"gcs_uri": "gs://veo-bucket/inputs/x/image.png", "mime_type": "image/png"}
REF = {"image": IMG, "type": "asset"}


def model_for(caps, **fields):
    return check_request(caps, parse_request({"prompt": "p", **fields}))


def refused(caps, **fields) -> ApiError:
    with pytest.raises(ApiError) as caught:
        model_for(caps, **fields)
    assert caught.value.status == 400 and caught.value.code == "unsupported_option"
    return caught.value


@pytest.mark.parametrize("fields,model", [
    ({}, "veo-3.0-fast-generate-001"),
    ({"image": IMG, "last_frame": IMG}, "veo-3.1-fast-generate-preview"),  # lastFrame needs Veo 3.1
    ({"reference_images": [REF]}, "veo-3.1-generate-preview"),  # the only model with references
    ({"model": "veo-3.1-generate-preview", "image": IMG, "last_frame": IMG, "reference_images": [REF] * 3}, "veo-3.1-generate-preview"),
])
def test_newapi_picks_a_model_that_honours_the_request(fields, model):
    assert model_for(newapi.CAPABILITIES, **fields) == model


@pytest.mark.parametrize("fields,field", [
    ({"sample_count": 2}, "sample_count"),
    ({"model": "veo-3.0-generate-001", "image": IMG, "last_frame": IMG}, "last_frame"),
    ({"model": "veo-3.1-fast-generate-preview", "reference_images": [REF]}, "reference_images"),
    ({"seed": 1}, "seed"),
    ({"generate_audio": False}, "generate_audio"),
])
def test_newapi_refuses_what_the_gateway_would_fail_later(fields, field):
    assert refused(newapi.CAPABILITIES, **fields).field == field


@pytest.mark.parametrize("fields,model", [
    ({}, "veo_3_1_t2v_fast"),
    ({"aspect_ratio": "9:16"}, "veo_3_1_t2v_fast_portrait"),
    ({"image": IMG}, "veo_3_1_i2v_s_fast_fl"),
    ({"image": IMG, "last_frame": IMG, "aspect_ratio": "9:16"}, "veo_3_1_i2v_s_fast_fl"),
    ({"reference_images": [REF, REF]}, "veo_3_0_r2v_fast_ultra"),
])
def test_flow_chooses_its_model_key_from_the_request(fields, model):
    assert model_for(flow.CAPABILITIES, **fields) == model


@pytest.mark.parametrize("fields,field", [
    ({"model": "veo_3_1_t2v_fast_portrait", "aspect_ratio": "16:9"}, "aspect_ratio"),
    ({"model": "veo_3_0_r2v_fast_ultra"}, "reference_images"),
    ({"image": IMG, "reference_images": [REF]}, "image"),
    ({"reference_images": [{"image": IMG, "type": "style"}]}, "reference_images.0.type"),
    ({"duration_seconds": 8}, "duration_seconds"),
    ({"negative_prompt": "no"}, "negative_prompt"),
])
def test_flow_refusals_name_the_field(fields, field):
    assert refused(flow.CAPABILITIES, **fields).field == field


@pytest.mark.parametrize("fields,field", [
    ({"image": IMG, "reference_images": [REF]}, "reference_images"),
    ({"reference_images": [REF], "aspect_ratio": "16:9"}, "aspect_ratio"),
    ({"model": "veo-3.1-generate-preview"}, "model"),
    ({"resolution": "1080p"}, "resolution"),
])
def test_genaipro_refusals_name_the_field(fields, field):
    assert refused(genaipro.CAPABILITIES, **fields).field == field


@pytest.mark.parametrize("caps", [gemini.CAPABILITIES, vertex.CAPABILITIES, litellm_gemini.CAPABILITIES])
def test_google_dialects_keep_frames_and_references_to_the_models_that_have_them(caps):
    assert model_for(caps, image=IMG, last_frame=IMG) == "veo-3.1-generate-preview"  # lastFrame needs Veo 3.1
    assert model_for(caps, reference_images=[REF]) == "veo-3.1-generate-preview"
    assert refused(caps, model="veo-3.1-fast-generate-preview", reference_images=[REF]).field == "reference_images"
    assert model_for(caps, image=IMG) == caps.default_model


def test_a_duration_never_switches_the_model_silently():
    assert refused(gemini.CAPABILITIES, duration_seconds=5).field == "duration_seconds"
    assert model_for(gemini.CAPABILITIES, model="veo-2.0-generate-001", duration_seconds=5) == "veo-2.0-generate-001"
    assert refused(gemini.CAPABILITIES, model="veo-2.0-generate-001", duration_seconds=4).field == "duration_seconds"


def test_capabilities_serialise_for_get_providers():
    table = flow.CAPABILITIES.to_dict()
    assert table["options"] == sorted(table["options"])
    assert table["model_requires"] == {"veo_3_1_i2v_s_fast_fl": ("image",), "veo_3_0_r2v_fast_ultra": ("reference_images",)}
    assert genaipro.CAPABILITIES.to_dict()["exclusive"] == (("image", "reference_images"), ("reference_images", "aspect_ratio"))
