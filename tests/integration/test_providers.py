"""Every provider dialect end to end on its simulator: videos, documented failures, and requests
refused before anything is paid for."""
from __future__ import annotations

import time

import pytest
import requests

from .helpers import unique_prompt
from .provider_helpers import assert_videos_match_the_provider, calls_since, inline, png, provider_calls, run_jobs
from .reliability import jobs_with_prompt

pytestmark = pytest.mark.integration

IMAGE = inline(png())


def test_providers_lists_every_dialect_with_what_it_can_do(client):
    resp = requests.get(f"{client.api}/providers", headers=client.auth, timeout=10)
    assert resp.status_code == 200
    table = resp.json()["providers"]
    assert set(table) == {"litellm-gemini", "newapi", "genaipro", "flow", "gemini", "vertex"}
    assert table["genaipro"]["streaming"] is True and table["newapi"]["streaming"] is False
    assert table["newapi"]["max_samples"] == 1
    references = {m["id"]: m["max_reference_images"] for m in table["newapi"]["catalog"] if m["status"] != "retired"}
    assert references == {"veo-3.1-generate-preview": 3, "veo-3.1-fast-generate-preview": 0}
    assert table["vertex"]["default_model"] == "veo-3.1-generate-001" and table["gemini"]["default_model"] == "veo-3.1-generate-preview"
    assert set(table["flow"]["models"]) == {"veo_3_1_t2v_fast", "veo_3_1_t2v_fast_portrait", "veo_3_1_i2v_s_fast_fl", "veo_3_0_r2v_fast_ultra"}
    assert "generate_audio" in table["vertex"]["options"] and "generate_audio" not in table["gemini"]["options"]
    for caps in table.values():
        assert caps["image_types"] == ["image/png", "image/jpeg", "image/webp"] and caps["max_image_bytes"] > 0


# One job with one video and one with several, side by side, per dialect.
ONE_AND_SEVERAL = {
    "newapi": [{}, {"prompt": "an inline video [sim:upstream=vertex]"}],  # one video per task: several = two shapes
    "genaipro": [{}, {"sample_count": 3}],
    "flow": [{}, {"sample_count": 2, "aspect_ratio": "9:16"}],
    "gemini": [{}, {"sample_count": 2}],
    "vertex": [{}, {"sample_count": 2}],
    "litellm-gemini": [{"image": IMAGE}, {"sample_count": 2}],
}


@pytest.mark.parametrize("provider", list(ONE_AND_SEVERAL))
def test_each_dialect_makes_one_and_several_verified_videos(client, bucket, provider):
    bodies = [{"provider": provider, **extra} for extra in ONE_AND_SEVERAL[provider]]
    jobs = run_jobs(client, bodies)
    for body, job in zip(bodies, jobs):
        count = body.get("sample_count", 1)
        assert_videos_match_the_provider(client, bucket, job, count)
        assert job["provider"] == provider
        assert len(provider_calls(client, job["request"]["prompt"], "submit")) == 1
    if provider == "vertex":  # Vertex wrote them into the bucket itself: verified and moved, none left behind
        assert all(not list(bucket.list_blobs(prefix=f"vertex/{job['id']}/")) for job in jobs)
    if provider == "flow":
        assert jobs[1]["model"] == "veo_3_1_t2v_fast_portrait"  # chosen from the aspect ratio


# (provider, prompt directive, extra request fields, error code the job ends with)
FAILURES = [
    ("newapi", "[sim:op_error]", {}, "provider_error"),  # message in data.url, data.error null
    ("newapi", "[sim:rai_filtered]", {}, "rai_filtered"),
    ("newapi", "[sim:empty_success]", {}, "provider_error"),
    ("genaipro", "[sim:op_error]", {}, "provider_error"),  # event: error GENERATION_FAILED
    ("genaipro", "[sim:rai_filtered]", {}, "rai_filtered"),  # event: error CONTENT_FILTERED
    ("genaipro", "[sim:empty_success]", {}, "provider_error"),  # complete with []
    ("flow", "[sim:op_error]", {}, "provider_error"),  # MEDIA_GENERATION_STATUS_ERROR_INTERNAL
    ("flow", "[sim:rai_filtered]", {}, "rai_filtered"),  # _ERROR_UNSAFE_GENERATION
    ("flow", "[sim:token_expired]", {}, "access_denied"),  # the Google token expired: no hang
    ("flow", "[sim:empty_success]", {}, "provider_error"),  # SUCCESSFUL without fifeUrl
    ("gemini", "[sim:op_error=8]", {}, "quota_exceeded"),
    ("gemini", "[sim:rai_filtered]", {}, "rai_filtered"),
    ("vertex", "[sim:op_error]", {}, "provider_error"),
    ("vertex", "[sim:rai_filtered]", {}, "rai_filtered"),
    ("vertex", "[sim:empty_success]", {}, "provider_error"),
    ("newapi", "[sim:expired]", {}, "download_expired"),  # the content URL answers 404
]


@pytest.mark.faults
def test_documented_failures_end_failed_with_their_code(client, bucket):
    bodies = [{"provider": p, "prompt": f"a failing job {directive}", **extra} for p, directive, extra, _ in FAILURES]
    jobs = run_jobs(client, bodies)
    for (provider, directive, _, code), job in zip(FAILURES, jobs):
        assert (job["status"], job["error"]["code"]) == ("failed", code), (provider, directive, job["error"])
        assert job["error"]["message"] and job["error"]["retryable"] is False
        assert job["outputs"] == [] and not list(bucket.list_blobs(prefix=f"videos/{job['id']}/"))
    token = next(job for (p, d, _, _), job in zip(FAILURES, jobs) if d == "[sim:token_expired]")
    assert "VEO_FLOW_GOOGLE_TOKEN" in token["error"]["message"]


# (provider, request fields, the field named in the 400)
UNSUPPORTED = [
    ("newapi", {"sample_count": 2}, "sample_count"),  # one video per task
    ("newapi", {"model": "veo-3.0-generate-001", "image": IMAGE, "last_frame": IMAGE}, "model"),  # retired: its replacement named
    ("newapi", {"model": "veo-3.1-fast-generate-preview", "reference_images": [{"image": IMAGE}]}, "reference_images"),
    ("newapi", {"seed": 7}, "seed"),
    ("genaipro", {"duration_seconds": 8}, "duration_seconds"),
    ("genaipro", {"reference_images": [{"image": IMAGE}], "aspect_ratio": "9:16"}, "aspect_ratio"),  # landscape only
    ("genaipro", {"reference_images": [{"image": IMAGE, "type": "style"}]}, "reference_images.0.type"),
    ("flow", {"model": "veo_3_1_t2v_fast", "aspect_ratio": "9:16"}, "aspect_ratio"),
    ("flow", {"model": "veo_3_1_i2v_s_fast_fl"}, "image"),  # the frames model needs a first frame
    ("flow", {"image": IMAGE, "reference_images": [{"image": IMAGE}]}, "image"),
    ("gemini", {"generate_audio": True}, "generate_audio"),
    ("gemini", {"resolution": "1080p", "duration_seconds": 4}, "duration_seconds"),  # 1080p and 4k need 8 s
    ("gemini", {"model": "veo-3.1-lite-generate-preview", "resolution": "4k"}, "resolution"),  # no 4k on lite
    ("vertex", {"model": "veo-3.0-generate-001", "image": IMAGE, "last_frame": IMAGE}, "model"),  # retired 2026-06-30
    ("vertex", {"reference_images": [{"image": IMAGE}], "duration_seconds": 6}, "duration_seconds"),  # references: 8 s
    ("vertex", {"resolution": "8k"}, "resolution"),
]


@pytest.mark.badinput
@pytest.mark.parametrize("provider,fields,field", UNSUPPORTED, ids=[f"{p}-{f}" for p, _, f in UNSUPPORTED])
def test_an_option_the_provider_cannot_honour_is_refused_before_any_call(client, stack, provider, fields, field):
    prompt = unique_prompt("an impossible request")
    resp = client.submit({"provider": provider, "prompt": prompt, **fields})
    error = resp.json()["error"]
    if fields.get("resolution") == "8k":  # not even a valid value: refused by the schema, still before any call
        assert (resp.status_code, error["code"], error["field"]) == (400, "invalid_request", field)
    else:
        assert (resp.status_code, error["code"], error["field"]) == (400, "unsupported_option", field), error
    assert error["message"]
    # No job was recorded, so no task exists that could ever call the provider.
    assert jobs_with_prompt(stack, prompt) == []
    assert provider_calls(client, prompt) == []


@pytest.mark.faults
@pytest.mark.parametrize("fault", ["stream_break", "stream_reset"])
def test_a_genaipro_stream_broken_midway_is_found_in_the_histories_not_submitted_again(client, bucket, fault):
    since = time.time()
    [job] = run_jobs(client, [{"provider": "genaipro", "prompt": f"a broken stream [sim:{fault}]", "sample_count": 2}])
    assert_videos_match_the_provider(client, bucket, job, 2)
    prompt = job["request"]["prompt"]
    assert len(provider_calls(client, prompt, "submit")) == 1  # paid once
    [stream] = provider_calls(client, prompt, "stream")
    assert stream["end"] == {"stream_break": "break", "stream_reset": "reset"}[fault]
    assert calls_since(client, since, "histories"), "the job was found again through GET /api/v1/veo/histories"


@pytest.mark.faults
def test_a_refused_genaipro_submit_is_looked_up_then_sent_again_once(client, bucket):
    """A 503 to the POST: the retry first looks in the histories (the POST might have gone
    through), finds nothing, and submits again: one accepted submission in all."""
    [job] = run_jobs(client, [{"provider": "genaipro", "prompt": "a busy gateway [sim:submit_503x1]"}])
    assert_videos_match_the_provider(client, bucket, job, 1)
    submits = provider_calls(client, job["request"]["prompt"], "submit")
    assert [c["status"] for c in submits] == [503, 200]
    histories = calls_since(client, submits[0]["at"], "histories")
    assert histories and histories[0]["at"] < submits[1]["at"]


def test_genaipro_progress_follows_the_stream_events(client):
    resp = client.submit({"provider": "genaipro", "prompt": unique_prompt("a slow stream [sim:duration=6]")})
    job_id = resp.json()["id"]
    seen = set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = client.job(job_id)
        seen.add((job["status"], job["progress"]["stage"]))
        if job["status"] in ("succeeded", "failed"):
            break
        time.sleep(0.2)
    assert job["status"] == "succeeded"
    assert ("running", "processing") in seen
