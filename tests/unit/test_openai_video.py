"""The OpenAI videos mapping (core/openai_video.py): sizes, seconds, the SDK's multipart fields,
the video object, list pages, errors and the poll-after hint."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from veorelay.core import openai_video as ov
from veorelay.core.errors import ApiError
from veorelay.core.request import parse_request

T0 = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(("size", "shape"), [
    ("1280x720", ("16:9", "720p")), ("720x1280", ("9:16", "720p")),
    ("1920x1080", ("16:9", "1080p")), ("1080x1920", ("9:16", "1080p")),
    ("3840x2160", ("16:9", "4k")), ("2160x3840", ("9:16", "4k")),
])
def test_sizes_map_to_aspect_ratio_and_resolution_and_back(size, shape):
    assert ov.size_to_shape(size) == shape
    assert ov.video_size({"aspect_ratio": shape[0], "resolution": shape[1]}) == size


@pytest.mark.parametrize("size", ["1792x1024", "1024x1792", "1280X720", "", None, 720])
def test_sizes_veo_does_not_make_are_refused_naming_the_ones_it_does(size):
    with pytest.raises(ApiError) as err:
        ov.size_to_shape(size)
    assert err.value.status == 400 and err.value.field == "size" and "1920x1080" in err.value.message


@pytest.mark.parametrize(("seconds", "duration"), [("8", 8), ("4", 4), (" 6 ", 6), (8, 8), ("12", 12)])
def test_seconds_as_the_sdk_sends_them(seconds, duration):
    assert ov.seconds_to_duration(seconds) == duration


@pytest.mark.parametrize("seconds", ["0", "-4", "8.0", "eight", "", True, 8.5, None, "1234"])
def test_seconds_that_are_no_whole_number_are_refused(seconds):
    with pytest.raises(ApiError) as err:
        ov.seconds_to_duration(seconds)
    assert err.value.field == "seconds"


def test_a_create_becomes_a_job_request_the_schema_accepts():
    body = ov.create_to_job_body({"prompt": "a fox", "seconds": "8", "size": "720x1280", "provider": "gemini",
                                  "negative_prompt": "rain", "webhook_url": "https://example.com/h",
                                  "metadata": {"order": 7}})
    assert body == {"prompt": "a fox", "duration_seconds": 8, "aspect_ratio": "9:16", "resolution": "720p",
                    "provider": "gemini", "negative_prompt": "rain", "webhook_url": "https://example.com/h",
                    "metadata": {"order": 7}}
    req = parse_request(body)
    assert (req.duration_seconds, req.aspect_ratio) == (8, "9:16")


def test_an_uploaded_input_reference_becomes_the_first_frame():
    assert ov.create_to_job_body({"prompt": "p"}, upload_part="input_reference")["image"] == {"upload": "input_reference"}
    data = ov.create_to_job_body({"prompt": "p", "input_reference": {"image_url": "data:image/png;base64,iVBOR"}})
    assert data["image"] == {"base64": "iVBOR", "mime_type": "image/png"}
    url = ov.create_to_job_body({"prompt": "p", "input_reference": {"image_url": "https://example.com/a.png"}})
    assert url["image"] == {"url": "https://example.com/a.png"}


@pytest.mark.parametrize(("body", "field"), [
    ({"seconds": "8"}, "prompt"),
    ({"prompt": "p", "model": "sora-2"}, "model"),
    ({"prompt": "p", "input_reference": {"file_id": "file-1"}}, "input_reference.file_id"),
    ({"prompt": "p", "colour": "red"}, "colour"),
    ({"prompt": "p", "size": "1280x720", "aspect_ratio": "16:9"}, "size"),
    ({"prompt": "p", "seconds": "8", "duration_seconds": 8}, "duration_seconds"),
])
def test_create_refusals_name_the_field(body, field):
    with pytest.raises(ApiError) as err:
        ov.create_to_job_body(body)
    assert err.value.status == 400 and err.value.field == field


def test_the_sdks_multipart_fields_unfold_like_its_json():
    fields = [("prompt", "a fox"), ("seconds", "8"), ("metadata[order]", "7"), ("metadata[who]", "ann"),
              ("webhook_events[]", "job.succeeded"), ("webhook_events[]", "job.failed"), ("seed", "42"),
              ("generate_audio", "false")]
    assert ov.form_to_body(fields) == {"prompt": "a fox", "seconds": "8", "metadata": {"order": "7", "who": "ann"},
                                       "webhook_events": ["job.succeeded", "job.failed"], "seed": 42,
                                       "generate_audio": False}
    assert ov.form_to_body([("metadata", '{"order": 7}')]) == {"metadata": {"order": 7}}


@pytest.mark.parametrize("fields", [
    [("prompt", "a"), ("prompt", "b")],
    [("metadata[a]", "1"), ("metadata[a]", "2")],
    [("metadata", "x"), ("metadata[a]", "1")],
    [("seed", "forty")],
    [("generate_audio", "yes")],
    [("metadata", "{not json")],
])
def test_ambiguous_or_mistyped_form_fields_are_refused(fields):
    with pytest.raises(ApiError):
        ov.form_to_body(fields)


def test_extend_names_the_job_it_extends():
    body = ov.extend_to_job_body({"prompt": "then it jumps", "seconds": "8", "video": {"id": "a" * 32}})
    assert body == {"prompt": "then it jumps", "extend": {"job_id": "a" * 32}}
    with pytest.raises(ApiError) as err:
        ov.extend_to_job_body({"prompt": "p", "seconds": "8", "video": "a" * 32})
    assert err.value.field == "video"


def job(status: str, **more) -> dict:
    base = {"id": "f" * 32, "status": status, "provider": "litellm-gemini", "model": "veo-3.1-generate-preview",
            "request": {"prompt": "a fox", "aspect_ratio": "9:16", "resolution": "1080p", "duration_seconds": 6},
            "progress": {"percent": 40, "stage": "running"}, "created_at": T0, "timestamps": {"accepted": T0},
            "metadata": {"order": 7}, "error": None}
    return {**base, **more}


@pytest.mark.parametrize(("status", "shown"), [("accepted", "queued"), ("running", "in_progress"),
                                               ("downloading", "in_progress"), ("succeeded", "completed"),
                                               ("failed", "failed"), ("cancelled", "failed")])
def test_statuses_as_openai_names_them(status, shown):
    assert ov.video_object(job(status))["status"] == shown


def test_the_video_object_as_the_sdk_types_it():
    done = T0 + timedelta(seconds=90)
    video = ov.video_object(job("succeeded", timestamps={"accepted": T0, "succeeded": done}, expire_at=done + timedelta(days=30),
                                outputs=[{"index": 0, "media": {"duration_seconds": 6.04}}]))
    assert video == {"id": "f" * 32, "object": "video", "model": "veo-3.1-generate-preview", "status": "completed",
                     "progress": 100, "created_at": int(T0.timestamp()), "completed_at": int(done.timestamp()),
                     "expires_at": int((done + timedelta(days=30)).timestamp()), "error": None, "seconds": "6",
                     "size": "1080x1920", "prompt": "a fox", "remixed_from_video_id": None,
                     "provider": "litellm-gemini", "metadata": {"order": 7}, "veorelay_status": "succeeded", "cost": None}
    from openai.types import Video

    # The SDK's own type validates it, every field as typed (its `size` type lists Sora's sizes,
    # 720p among them; it parses answers without validating, so 1080p and 4k sizes reach clients too).
    parsed = Video.model_validate({**video, "size": "720x1280"})
    assert parsed.status == "completed" and parsed.progress == 100 and parsed.seconds == "6"


def test_a_cancelled_job_is_a_failed_video_with_its_error():
    video = ov.video_object(job("cancelled", error={"code": "cancelled", "message": "cancelled by the client"},
                                timestamps={"cancelled": T0}))
    assert video["status"] == "failed" and video["error"] == {"code": "cancelled", "message": "cancelled by the client"}
    assert video["completed_at"] == int(T0.timestamp()) and video["progress"] == 40


def test_a_job_without_size_or_seconds_shows_veos_defaults():
    video = ov.video_object(job("running", request={"prompt": "p"}, progress={"percent": None, "stage": "running"}))
    assert (video["size"], video["seconds"], video["progress"], video["completed_at"]) == ("1280x720", "8", 0, None)


def test_a_list_page_carries_first_and_last_ids():
    page = ov.list_page([job("succeeded", id="a" * 32), job("running", id="b" * 32)], has_more=True)
    assert (page["object"], page["has_more"], page["first_id"], page["last_id"]) == ("list", True, "a" * 32, "b" * 32)
    assert ov.list_page([], has_more=False) == {"object": "list", "data": [], "has_more": False, "first_id": None, "last_id": None}


@pytest.mark.parametrize(("args", "expected"), [({}, (None, 20, "desc")),
                                                ({"after": "a" * 32, "limit": "5", "order": "asc"}, ("a" * 32, 5, "asc"))])
def test_list_parameters(args, expected):
    assert ov.list_params(args) == expected


@pytest.mark.parametrize("args", [{"limit": "0"}, {"limit": "101"}, {"limit": "x"}, {"order": "up"}, {"after": "vid_1"},
                                  {"page": "2"}])
def test_bad_list_parameters_are_400(args):
    with pytest.raises(ApiError) as err:
        ov.list_params(args)
    assert err.value.status == 400


def test_errors_in_openais_shape():
    assert ov.openai_error_body(404, "not_found", "no such video", "video_id") == {
        "error": {"message": "no such video", "type": "not_found_error", "param": "video_id", "code": "not_found"}}
    assert ov.openai_error_body(400, "unsupported_option", "m", None)["error"]["type"] == "invalid_request_error"
    assert ov.openai_error_body(401, "unauthenticated", "m", None)["error"]["type"] == "authentication_error"


def test_poll_after_follows_the_learned_schedule():
    times = (30.0, 45.0, 60.0)
    # Running for 20 s: veo-relay's next check is at 30 s (10 s from now); a change shows just after it.
    assert ov.poll_after_ms("running", times, 20.0, 1.0, 15.0) == 10_250
    # 45 s is too close (under the min gap): the next check is at 60 s, 15.5 s away, capped at the 15 s max gap.
    assert ov.poll_after_ms("running", times, 44.5, 1.0, 15.0) == 15_250
    assert ov.poll_after_ms("accepted", times, 0.0, 1.0, 15.0) == 1000
    assert ov.poll_after_ms("succeeded", times, 100.0, 1.0, 15.0) is None
