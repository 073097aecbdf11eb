"""The simulators serve real MP4s of the shape the request asked for (dev/simulators/clips.py,
media.py), and the directives that serve another shape, read back with PyAV as finalize does."""

from __future__ import annotations

import io

import av
import pytest
import requests

from dev.simulators.mp4check import check_mp4

KEY = {"x-goog-api-key": "sim-key-litellm-gemini"}


def served(sim, prompt: str, **parameters) -> bytes:
    r = requests.post(f"{sim.url}/gemini/v1beta/models/veo-3.1-generate-preview:predictLongRunning",
                      headers=KEY, json={"instances": [{"prompt": prompt}], "parameters": parameters})
    assert r.status_code == 200, r.text
    (out,) = sim.operation(r.json()["name"].rsplit("/", 1)[1])["outputs"]
    got = requests.get(out["download_url"], headers=KEY)
    assert got.status_code == 200 and len(got.content) == out["size"]
    return got.content


def shape(data: bytes) -> tuple[float | None, tuple[int, int] | None, str | None]:
    """(seconds, (width, height) of the video track, audio codec) as PyAV reads them."""
    with av.open(io.BytesIO(data)) as box:
        video = box.streams.video[0].codec_context if box.streams.video else None
        audio = box.streams.audio[0].codec_context.name if box.streams.audio else None
        seconds = box.duration / av.time_base if box.duration else None
        return seconds, (video.width, video.height) if video else None, audio


def test_a_default_request_gets_veos_default_8_s_720p_landscape_with_sound(sim):
    data = served(sim, "plain [sim:duration=0]")
    check_mp4(data)
    assert shape(data) == (8.0, (1280, 720), "aac")


@pytest.mark.parametrize("parameters, expected", [
    ({"durationSeconds": 6, "aspectRatio": "9:16"}, (6.0, (720, 1280), "aac")),
    ({"durationSeconds": 8, "resolution": "1080p", "aspectRatio": "16:9"}, (8.0, (1920, 1080), "aac")),
    ({"durationSeconds": 4}, (4.0, (1280, 720), "aac")),
    ({"generateAudio": False}, (8.0, (1280, 720), None)),
])
def test_the_clip_has_the_shape_the_request_asked_for(sim, parameters, expected):
    assert shape(served(sim, "asked [sim:duration=0]", **parameters)) == expected


@pytest.mark.parametrize("directive, expected", [
    ("clip_seconds=3", (3.0, (1280, 720), "aac")),
    ("clip_size=640x360", (8.0, (640, 360), "aac")),
    ("no_audio", (8.0, (1280, 720), None)),
    ("no_video_track", (8.0, None, "aac")),
])
def test_directives_serve_a_clip_unlike_the_request(sim, directive, expected):
    assert shape(served(sim, f"unlike [sim:duration=0,{directive}]", durationSeconds=8)) == expected


def test_zero_duration_keeps_the_tracks_but_they_last_nothing(sim):
    seconds, size, audio = shape(served(sim, "zero [sim:duration=0,zero_duration]"))
    assert not seconds and size == (1280, 720) and audio == "aac"


def test_moov_last_puts_the_index_after_the_padding(sim):
    data = served(sim, "last [sim:duration=0,moov_last,size=2MiB]")
    boxes = [b[0] for b in check_mp4(data)]
    assert boxes[-1] == b"moov" and boxes.index(b"mdat") < boxes.index(b"moov") and len(data) == 2 << 20
    assert shape(data) == (8.0, (1280, 720), "aac")


@pytest.mark.parametrize("bad", ["clip_size=12x12", "clip_size=big", "clip_seconds=0", "clip_seconds=x"])
def test_a_malformed_clip_directive_is_a_400(sim, bad):
    r = requests.post(f"{sim.url}/gemini/v1beta/models/veo-3.1-generate-preview:predictLongRunning",
                      headers=KEY, json={"instances": [{"prompt": f"bad [sim:{bad}]"}]})
    assert r.status_code == 400
