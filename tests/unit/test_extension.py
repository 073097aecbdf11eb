"""Video extension, pure parts: the `extend` request field (strict, its conflicts), the body each
Google dialect sends (Gemini API `video: {uri}`, Vertex `video: {gcsUri, mimeType}`), the cost of
an extension (the seconds it adds) and what the catalog says each model extends."""
from __future__ import annotations

import pytest

from veorelay.config import shipped_catalog
from veorelay.core.cost import estimate
from veorelay.core.errors import ApiError, ErrorCode
from veorelay.core.request import GenerationRequest, SourceVideo, parse_request
from veorelay.providers import google_ops
from veorelay.providers.vertex import _gcs_video

JOB = "0123456789abcdef0123456789abcdef"


def refused(body: dict) -> ApiError:
    with pytest.raises(ApiError) as caught:
        parse_request(body)
    assert caught.value.status == 400
    return caught.value


def test_extend_names_a_job_and_optionally_its_output():
    req = parse_request({"prompt": "and then it rains", "extend": {"job_id": JOB}})
    assert req.extend is not None and (req.extend.job_id, req.extend.output, req.extend.video) == (JOB, 0, None)
    assert "extend" in req.options()  # a provider must be able to honour it (core/capabilities.py)
    assert parse_request({"prompt": "p", "extend": {"job_id": JOB, "output": 3}}).extend.output == 3  # type: ignore[union-attr]


@pytest.mark.badinput
@pytest.mark.parametrize("extend, field", [
    ({"job_id": "not-a-job"}, "extend.job_id"),
    ({"job_id": JOB.upper()}, "extend.job_id"),
    ({}, "extend.job_id"),
    ({"job_id": JOB, "seconds": 7}, "extend.seconds"),
    ({"job_id": JOB, "output": 4}, "extend.output"),
    ({"job_id": JOB, "output": "0"}, "extend.output"),
    ("0123456789abcdef0123456789abcdef", "extend"),
])
def test_a_malformed_extend_is_refused_naming_its_field(extend, field):
    err = refused({"prompt": "p", "extend": extend})
    assert (err.code, err.field) == (ErrorCode.INVALID_REQUEST, field)


@pytest.mark.badinput
def test_a_client_cannot_give_the_source_video():
    err = refused({"prompt": "p", "extend": {"job_id": JOB, "video": {"gcs_uri": "gs://b/videos/x/0.mp4"}}})
    assert (err.field, err.message) == ("extend.video", "unknown field 'extend.video'")


def test_extend_needs_a_prompt():
    assert refused({"extend": {"job_id": JOB}}).field == "prompt"


@pytest.mark.badinput
@pytest.mark.parametrize("field, value", [
    ("image", {"gcs_uri": "gs://bucket/in.png", "mime_type": "image/png"}),
    ("reference_images", [{"image": {"gcs_uri": "gs://bucket/in.png", "mime_type": "image/png"}}]),
    ("duration_seconds", 8),
])
def test_extend_conflicts_with_frames_references_and_a_duration(field, value):
    err = refused({"prompt": "p", "extend": {"job_id": JOB}, field: value})
    assert (err.code, err.field) == (ErrorCode.INVALID_REQUEST, field) and "extend cannot be combined" in err.message


def test_the_public_schema_shows_job_id_and_output_only():
    schema = GenerationRequest.model_json_schema()["$defs"]["ExtendInput"]
    assert set(schema["properties"]) == {"job_id", "output"} and schema["additionalProperties"] is False


def _stored(video: SourceVideo) -> GenerationRequest:
    """The request as the submit step reads it back: with the source accepted onto it."""
    return GenerationRequest.model_validate({"prompt": "go on", "extend": {"job_id": JOB, "video": video.model_dump()}})


def test_the_gemini_api_is_sent_the_sources_file_uri():
    uri = "https://generativelanguage.googleapis.com/v1beta/files/abc123:download?alt=media"
    body = google_ops.predict_body(_stored(SourceVideo(provider_uri=uri, duration_seconds=8.0)))
    assert body == {"instances": [{"prompt": "go on", "video": {"uri": uri}}]}  # no duration: the model adds its own


def test_vertex_is_sent_the_stored_object():
    video = SourceVideo(gcs_uri="gs://bucket/videos/" + JOB + "/0.mp4", duration_seconds=8.0)
    body = google_ops.predict_body(_stored(video), {"storageUri": "gs://bucket/vertex/x/"}, video_field=_gcs_video)
    assert body["instances"] == [{"prompt": "go on", "video": {"gcsUri": video.gcs_uri, "mimeType": "video/mp4"}}]


def test_an_extension_without_its_source_never_reaches_a_provider():
    with pytest.raises(ValueError):
        google_ops.predict_body(GenerationRequest.model_validate({"prompt": "go on", "extend": {"job_id": JOB}}))


def test_the_gemini_operation_keeps_the_apis_file_uri_beside_the_download_url():
    uri = "https://generativelanguage.googleapis.com/v1beta/files/abc123:download?alt=media"
    op = {"done": True, "response": {"generateVideoResponse": {"generatedSamples": [{"video": {"uri": uri}}]}}}
    progress = google_ops.parse_operation(op, lambda u: "https://proxy.example/download/abc123")
    assert progress.outputs[0].url == "https://proxy.example/download/abc123"
    assert progress.outputs[0].extra == {"provider_uri": uri}


def test_an_extension_costs_the_seconds_it_adds():
    spec = shipped_catalog().provider("gemini").get("veo-3.1-generate-preview")
    assert spec is not None and spec.extension is not None
    plain = estimate(spec, {"prompt": "p"})
    extended = estimate(spec, {"prompt": "p", "extend": {"job_id": JOB}})
    assert plain["basis"]["seconds"] == 8 and extended["basis"]["seconds"] == spec.extension.added_seconds == 7
    assert extended["estimated_usd"] == pytest.approx(plain["estimated_usd"] * 7 / 8)


def test_the_catalog_says_which_models_extend():
    catalog = shipped_catalog()
    gemini = catalog.provider("gemini").get("veo-3.1-generate-preview")
    vertex = catalog.provider("vertex").get("veo-3.1-generate-001")
    assert gemini is not None and gemini.extension is not None and gemini.extension.max_input_seconds == 141
    assert gemini.extension.max_source_age_hours == 48 and gemini.extension.input_resolutions == ("720p",)
    assert vertex is not None and vertex.extension is not None and vertex.extension.max_input_seconds == 30
    lite = catalog.provider("gemini").get("veo-3.1-lite-generate-preview")
    assert lite is not None and lite.extension is None
