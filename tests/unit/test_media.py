"""core/media.py: what a stored video is, when it is no video at all, and how it differs from
the request (the warnings a client sees)."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from veorelay.core.errors import ErrorCode, PermanentError
from veorelay.core.media import (
    DURATION_TOLERANCE_S,
    RESOLUTION_SIZES,
    Expectation,
    Media,
    Probe,
    expectation_of,
    expected_sizes,
    media_of,
    unplayable,
    warnings_for,
)


def media(seconds: float = 8.0, width: int = 1280, height: int = 720, audio: bool = True) -> Media:
    return media_of(Probe(seconds, "h264", width, height, "aac" if audio else None))


def test_a_video_track_with_a_size_and_a_length_is_its_media():
    assert media_of(Probe(8.0213, "h264", 1920, 1080, "aac")) == {
        "duration_seconds": 8.021, "width": 1920, "height": 1080, "video_codec": "h264", "audio_codec": "aac", "has_audio": True}
    assert media_of(Probe(4.0, "hevc", 720, 1280, None))["has_audio"] is False


@pytest.mark.parametrize("probe, why", [
    (Probe(2.0, None, None, None, "aac"), "no video track"),
    (Probe(0.0, "h264", 1280, 720, "aac"), "zero seconds"),
    (Probe(None, "h264", 1280, 720, None), "zero seconds"),
    (Probe(-1.0, "h264", 1280, 720, None), "zero seconds"),
    (Probe(8.0, "h264", 0, 720, None), "no picture size"),
])
def test_a_file_that_is_no_video_is_download_invalid(probe, why):
    assert why in (unplayable(probe) or "")
    with pytest.raises(PermanentError) as raised:
        media_of(probe)
    assert raised.value.code == ErrorCode.DOWNLOAD_INVALID and why in raised.value.message


def test_only_what_the_client_set_is_expected():
    assert expectation_of({"request": {"prompt": "p"}}) == Expectation()
    assert expectation_of({"request": {"prompt": "p", "duration_seconds": 6, "resolution": "1080p", "aspect_ratio": "9:16",
                                       "generate_audio": True}}) == Expectation(6.0, "1080p", "9:16", True)
    assert expectation_of({"request": {"resolution": "4K"}}).resolution == "4k"
    # An extension's length is its source's plus what the provider adds: no duration is held to.
    assert expectation_of({"request": {"duration_seconds": 8}, "extends": {"job_id": "a" * 32, "output": 0}}).duration_seconds is None
    assert expectation_of({"request": {"duration_seconds": 8, "extend": {"job_id": "a" * 32}}}).duration_seconds is None


def test_a_video_as_asked_has_no_warning():
    asked = Expectation(8.0, "720p", "16:9", True)
    assert warnings_for(asked, 0, media(8.02)) == []
    assert warnings_for(Expectation(6.0, "1080p", "9:16", False), 1, media(6.0, 1080, 1920, audio=False)) == []
    assert warnings_for(Expectation(), 0, media(1.0, 64, 36, audio=False)) == []  # nothing asked, nothing to differ from


def test_each_difference_is_one_warning_naming_its_output():
    found = warnings_for(Expectation(8.0, "1080p", "16:9", True), 2, media(4.0, 1280, 720, audio=False))
    assert found == [
        {"code": "duration_mismatch", "output": 2, "message": "output 2 lasts 4 s; 8 s were asked for"},
        {"code": "resolution_mismatch", "output": 2, "message": "output 2 is 1280x720; 1080p 16:9 means 1920x1080"},
        {"code": "audio_missing", "output": 2, "message": "output 2 has no audio track; generate_audio was asked for"},
    ]
    assert [w["code"] for w in warnings_for(Expectation(aspect_ratio="9:16"), 0, media())] == ["aspect_ratio_mismatch"]
    assert [w["code"] for w in warnings_for(Expectation(audio=False), 0, media())] == ["audio_unexpected"]


def test_a_resolution_without_an_aspect_ratio_accepts_either_orientation():
    assert expected_sizes("720p", None) == ((1280, 720), (720, 1280))
    assert warnings_for(Expectation(resolution="720p"), 0, media(width=720, height=1280)) == []
    assert [w["code"] for w in warnings_for(Expectation(resolution="720p", aspect_ratio="16:9"), 0,
                                            media(width=720, height=1280))] == ["resolution_mismatch"]


@given(asked=st.sampled_from([4, 5, 6, 7, 8]), off=st.floats(-3, 3, allow_nan=False))
def test_a_duration_is_a_mismatch_exactly_when_it_is_further_than_the_tolerance(asked, off):
    seconds = max(0.001, asked + off)
    found = warnings_for(Expectation(duration_seconds=float(asked)), 0, media(seconds))
    measured = media(seconds)["duration_seconds"]
    assert bool(found) == (abs(measured - asked) > DURATION_TOLERANCE_S)


@given(resolution=st.sampled_from(sorted(RESOLUTION_SIZES)), aspect=st.sampled_from([None, "16:9", "9:16"]),
       width=st.integers(2, 4096), height=st.integers(2, 4096), audio=st.booleans(), asked_audio=st.sampled_from([None, True, False]))
def test_a_resolution_mismatch_exactly_when_the_frame_is_not_one_it_names(resolution, aspect, width, height, audio, asked_audio):
    found = warnings_for(Expectation(resolution=resolution, aspect_ratio=aspect, audio=asked_audio), 0,
                         media(8.0, width, height, audio))
    codes = [w["code"] for w in found]
    assert ("resolution_mismatch" in codes) == ((width, height) not in expected_sizes(resolution, aspect))
    assert ("audio_missing" in codes) == (asked_audio is True and not audio)
    assert ("audio_unexpected" in codes) == (asked_audio is False and audio)
    assert all(w["output"] == 0 and w["message"].startswith("output 0 ") for w in found)
