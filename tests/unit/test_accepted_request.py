"""A job's request read back from its record (core/accepted.py) is what the provider is sent:
every dialect builds the same body from it as from the validated request it was stored from."""
from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from veorelay.core.accepted import AcceptedRequest, accepted_request
from veorelay.core.request import NOT_STORED, GenerationRequest, parse_request, stored_request
from veorelay.providers import flow, google_ops, newapi

MODEL = "veo-3.1-generate-preview"


def image(n: int) -> dict[str, str]:
    return {"gcs_uri": f"gs://veo-bucket/inputs/job/{n}.png", "mime_type": "image/png"}


def test_every_stored_field_of_the_request_is_read_back():
    """A field added to GenerationRequest is either kept out of the record or read by AcceptedRequest."""
    read = {f.name for f in dataclasses.fields(AcceptedRequest)}
    assert set(GenerationRequest.model_fields) - NOT_STORED == read


options = st.fixed_dictionaries({}, optional={
    "negative_prompt": st.sampled_from(["blurry", "text, watermark"]),
    "aspect_ratio": st.sampled_from(["16:9", "9:16"]),
    "duration_seconds": st.integers(4, 8),
    "resolution": st.sampled_from(["720p", "1080p", "4k"]),
    "sample_count": st.integers(1, 4),
    "seed": st.integers(0, 2**32 - 1),
    "person_generation": st.sampled_from(["allow_all", "allow_adult", "dont_allow"]),
    "generate_audio": st.booleans(),
    "webhook_url": st.just("https://example.com/hook"),
    "metadata": st.just({"order": 7}),
})
frames = st.sampled_from([{}, {"image": image(0)}, {"image": image(0), "last_frame": image(1)},
                          {"reference_images": [{"image": image(2), "type": "asset"}, {"image": image(3), "type": "style"}]}])


@settings(max_examples=60, deadline=None)
@given(options=options, frames=frames, prompt=st.sampled_from(["a fox at dawn", "  ocean\n\twaves  "]))
def test_every_dialect_builds_the_same_body_from_the_record(options, frames, prompt):
    req = parse_request({"prompt": prompt, "model": MODEL, **options, **frames})
    back = accepted_request(stored_request(req), MODEL)
    assert [(f, i.gcs_uri, i.mime_type) for f, i in back.images()] == [(f, i.gcs_uri, i.mime_type) for f, i in req.images()]

    def gcs(img):
        return {"gcsUri": img.gcs_uri, "mimeType": img.mime_type}

    assert google_ops.predict_body(back, {"storageUri": "gs://b/o/"}, image_field=gcs) == \
        google_ops.predict_body(req, {"storageUri": "gs://b/o/"}, image_field=gcs)

    def b64(img):
        return f"b64:{img.gcs_uri}"

    assert newapi.submit_body(back, b64) == newapi.submit_body(req, b64)
    references = [f"media-{i}" for i, _ in enumerate(req.reference_images or [])]
    seeded = dataclasses.replace(back, seed=back.seed if back.seed is not None else 1)  # flow draws a seed otherwise
    assert flow_body(seeded, references) == flow_body(req.model_copy(update={"seed": seeded.seed}), references)


def flow_body(req, references):
    """flow.video_body without what differs on every call: its scene ids (fresh UUIDs) and its
    session id (the time in milliseconds)."""
    body = flow.video_body(req, MODEL, "project", {}, references)
    body["clientContext"].pop("sessionId")
    for one in body["requests"]:
        one["metadata"].pop("sceneId")
    return body


def test_an_extension_reads_back_its_source_video():
    source = {"provider_uri": "https://generativelanguage.googleapis.com/v1beta/files/abc", "gcs_uri": "gs://veo-bucket/jobs/src/0.mp4",
              "mime_type": "video/mp4", "duration_seconds": 8.0}
    req = GenerationRequest.model_validate({"prompt": "and then", "model": MODEL,
                                           "extend": {"job_id": "a" * 32, "output": 1, "video": source}})
    back = accepted_request(stored_request(req), MODEL)
    assert back.extend is not None and back.extend.output == 1 and back.extend.video is not None
    assert dataclasses.asdict(back.extend.video) == source
    assert google_ops.predict_body(back) == google_ops.predict_body(req)


def test_the_record_is_read_not_validated_again():
    """A stored key no version reads any more is left alone, not a failed submission."""
    back = accepted_request({"prompt": "a fox", "retired_option": True}, None)
    assert back == AcceptedRequest(prompt="a fox")
