from veorelay.config import ProviderSettings
from veorelay.core.request import parse_request
from veorelay.providers import google_ops
from veorelay.providers.litellm_gemini import LiteLLMGemini

ADAPTER = LiteLLMGemini(ProviderSettings("litellm-gemini", "https://api.thucchien.ai", "k"), session=None)
NAME = "models/veo-3.0-generate-preview/operations/idrk08ltkg0a"


def parse(op):
    return google_ops.parse_operation(op, ADAPTER.download_url)


def test_running_operation_has_no_done_field():
    assert parse({"name": NAME}).state == "running"


def test_done_operation_yields_the_rewritten_download_url():
    # The exact answer of seed document 000.
    progress = parse({
        "name": NAME, "done": True,
        "response": {
            "@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse",
            "generateVideoResponse": {"generatedSamples": [{"video": {"uri": "https://generativelanguage.googleapis.com/v1beta/files/3j6svp4106e7:download?alt=media"}}]},
        },
    })
    assert progress.state == "succeeded"
    assert [o.url for o in progress.outputs] == ["https://api.thucchien.ai/gemini/download/v1beta/files/3j6svp4106e7:download?alt=media"]


def test_several_samples_become_several_outputs():
    samples = [{"video": {"uri": f"https://generativelanguage.googleapis.com/v1beta/files/f{i}:download?alt=media"}} for i in range(3)]
    progress = parse({"name": NAME, "done": True, "response": {"generateVideoResponse": {"generatedSamples": samples}}})
    assert [o.index for o in progress.outputs] == [0, 1, 2]


def test_rai_filtered_operation_is_a_failure_not_an_empty_success():
    progress = parse({"name": NAME, "done": True, "response": {"generateVideoResponse": {
        "raiMediaFilteredCount": 1, "raiMediaFilteredReasons": ["Unsafe content detected"]}}})
    assert progress.state == "failed"
    assert progress.error.code == "rai_filtered"
    assert "Unsafe content detected" in progress.error.message


def test_operation_error_maps_to_the_vocabulary():
    progress = parse({"name": NAME, "done": True, "error": {"code": 8, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED"}})
    assert progress.state == "failed"
    assert (progress.error.code, progress.error.message) == ("quota_exceeded", "Quota exceeded")
    assert parse({"name": NAME, "done": True, "error": {"code": 3, "message": "bad"}}).error.code == "invalid_request"
    assert parse({"name": NAME, "done": True, "error": {"code": 13, "message": "boom"}}).error.code == "provider_error"


def test_done_without_video_or_filter_is_a_provider_error():
    assert parse({"name": NAME, "done": True, "response": {}}).error.code == "provider_error"


def test_predict_body_maps_options_to_gemini_parameters():
    req = parse_request({"prompt": "p", "aspect_ratio": "9:16", "duration_seconds": 8, "negative_prompt": "rain", "sample_count": 2, "seed": 3})
    assert google_ops.predict_body(req) == {
        "instances": [{"prompt": "p"}],
        "parameters": {"aspectRatio": "9:16", "durationSeconds": 8, "negativePrompt": "rain", "sampleCount": 2, "seed": 3},
    }
    assert google_ops.predict_body(parse_request({"prompt": "p"})) == {"instances": [{"prompt": "p"}]}
