"""genaipro (doc 002 + public facts): SSE streams and histories."""

from __future__ import annotations

import hashlib
import json
import re
import time

import pytest
import requests

from dev.simulators.mp4check import check_mp4

AUTH = {"Authorization": "Bearer sim-key-genaipro"}
PNG = ("a.png", b"\x89PNG fake", "image/png")


def read_events(resp):
    """[(t_arrival, event, data_json, raw_block)] as the stream delivers them."""
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    events, buf = [], b""
    for chunk in resp.iter_content(chunk_size=None):
        buf += chunk
        while b"\n\n" in buf:
            block, buf = buf.split(b"\n\n", 1)
            text = block.decode()
            m = re.fullmatch(r"event: (\S+)\ndata: (.*)", text)
            assert m, f"badly framed block {text!r}"
            events.append((time.monotonic(), m.group(1), json.loads(m.group(2)), text))
    assert buf == b""
    return events


def text_to_video(sim, prompt, n=1, auth=AUTH, **extra):
    return requests.post(f"{sim.url}/api/v1/veo/text-to-video", headers=auth, stream=True,
                         json={"prompt": prompt, "aspect_ratio": "VIDEO_ASPECT_RATIO_LANDSCAPE",
                               "number_of_videos": n, **extra})


def histories(sim, **params):
    r = requests.get(f"{sim.url}/api/v1/veo/histories", headers=AUTH, params=params)
    assert r.status_code == 200
    return r.json()


def test_ingredients_stream_exact_framing(sim):
    t0 = time.monotonic()
    r = requests.post(f"{sim.url}/api/v1/veo/ingredients-to-video", headers=AUTH, stream=True,
                      files=[("reference_images", PNG), ("reference_images", PNG)],
                      data={"prompt": "Create a video combining these ingredients [sim:duration=0.6]",
                            "number_of_videos": "2"})
    assert r.status_code == 200
    events = read_events(r)
    assert [e[3] for e in events[:3]] == [
        'event: video_generation_status\ndata: "starting"',
        'event: video_generation_status\ndata: "uploading_images"',
        'event: video_generation_status\ndata: "processing"']
    assert events[0][0] - t0 < 0.3            # flushed at once, not at the end
    assert events[3][0] - events[2][0] > 0.3   # complete comes later
    kind, data = events[3][1], events[3][2]
    assert kind == "video_generation_complete" and len(data) == 2
    reported = {o["file_id"]: o for o in sim.operations(dialect="genaipro")[0]["outputs"]}
    for item in data:
        assert list(item) == ["id", "prompt", "file_url", "status", "created_at"]
        assert item["status"] == "MEDIA_GENERATION_STATUS_SUCCESSFUL"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", item["created_at"])
        assert item["prompt"].startswith("Create a video combining")
        video = requests.get(item["file_url"])
        assert video.status_code == 200
        check_mp4(video.content)
        assert hashlib.sha256(video.content).hexdigest() == reported[item["id"]]["sha256"]


def test_text_to_video_no_upload_event(sim):
    events = read_events(text_to_video(sim, "sunset", n=3))
    assert [e[2] for e in events[:2]] == ["starting", "processing"]
    assert events[-1][1] == "video_generation_complete" and len(events[-1][2]) == 3


def test_frames_to_video(sim):
    r = requests.post(f"{sim.url}/api/v1/veo/frames-to-video", headers=AUTH, stream=True,
                      files={"start_image": PNG, "end_image": PNG},
                      data={"prompt": "morph", "aspect_ratio": "VIDEO_ASPECT_RATIO_PORTRAIT",
                            "number_of_videos": "1"})
    events = read_events(r)
    assert [e[2] for e in events[:3]] == ["starting", "uploading_images", "processing"]
    assert events[-1][1] == "video_generation_complete"


def test_validation_and_auth(sim):
    assert text_to_video(sim, "x", auth={}).status_code == 401
    assert text_to_video(sim, "x", n=5).status_code == 400
    assert text_to_video(sim, "x", aspect_ratio="16:9").status_code == 400
    r = requests.post(f"{sim.url}/api/v1/veo/ingredients-to-video", headers=AUTH,
                      files=[("reference_images", PNG)] * 4, data={"prompt": "x", "number_of_videos": "1"})
    assert r.status_code == 400
    r = requests.post(f"{sim.url}/api/v1/veo/ingredients-to-video", headers=AUTH,
                      files=[("reference_images", PNG)], data={"prompt": "x"})
    assert r.status_code == 400  # number_of_videos is required here
    r = requests.post(f"{sim.url}/api/v1/veo/frames-to-video", headers=AUTH,
                      data={"prompt": "x", "number_of_videos": "1"})
    assert r.status_code == 400  # start_image required
    assert requests.get(f"{sim.url}/api/v1/veo/histories").status_code == 401


def test_error_events(sim):
    for directive, code in (("op_error", "GENERATION_FAILED"), ("rai_filtered", "CONTENT_FILTERED")):
        events = read_events(text_to_video(sim, f"x [sim:{directive}]"))
        assert events[-1][1] == "error" and events[-1][2]["code"] == code
        assert events[-1][2]["message"]


def test_stream_break_then_histories(sim, until):
    prompt = "broken [sim:stream_break,duration=0.4]"
    events = read_events(text_to_video(sim, prompt, n=2))
    assert [e[2] for e in events] == ["starting", "processing"]  # ends, no complete
    running = histories(sim)["data"]
    assert running and all(h["file_urls"] == [] for h in running)
    # "processing" was sent at 20 % of the duration: from then on the history says ACTIVE.
    assert {h["status"] for h in running} == {"MEDIA_GENERATION_STATUS_ACTIVE"}
    doc = until(lambda: (lambda d: d if all(h["file_urls"] for h in d["data"]) else None)(
        histories(sim)))
    assert doc["total"] == 2 and {h["prompt"] for h in doc["data"]} == {prompt}
    for h in doc["data"]:
        assert h["status"] == "MEDIA_GENERATION_STATUS_SUCCESSFUL"
        check_mp4(requests.get(h["file_urls"][0]).content)


def test_history_twin_shows_a_second_generation_of_the_prompt(sim, until):
    prompt = "twins [sim:history_twin,duration=0.2]"
    events = read_events(text_to_video(sim, prompt))
    [ours] = events[-1][2]  # the complete event names our one video
    doc = until(lambda: (lambda d: d if len(d["data"]) == 2 and all(h["file_urls"] for h in d["data"]) else None)(histories(sim)))
    assert {h["prompt"] for h in doc["data"]} == {prompt} and doc["data"][0]["id"] == ours["id"]  # ours is the newer
    assert doc["data"][0]["created_at"] != doc["data"][1]["created_at"]
    assert [c["kind"] for c in requests.get(f"{sim.url}/_sim/calls").json() if c.get("kind") == "submit"] == ["submit"]


def test_stream_reset_cuts_connection(sim):
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        read_events(text_to_video(sim, "x [sim:stream_reset]"))


def test_never_finish_keeps_stream_open(sim):
    r = requests.post(f"{sim.url}/api/v1/veo/text-to-video", headers=AUTH, stream=True,
                      json={"prompt": "x [sim:never_finish]", "number_of_videos": 1}, timeout=1.0)
    with pytest.raises(requests.exceptions.ConnectionError):  # read timeout
        read_events(r)
    r.close()


def test_histories_paging_and_grouping(sim, until):
    for i in range(3):
        read_events(text_to_video(sim, f"p{i} [sim:duration=0]", n=2))
    doc = histories(sim, page=1, page_size=4)
    assert doc["total"] == 6 and doc["total_pages"] == 2 and doc["page"] == 1
    assert doc["page_size"] == 4 and len(doc["data"]) == 4
    assert doc["data"][0]["prompt"].startswith("p2")  # newest first
    assert list(doc["data"][0]) == ["id", "prompt", "status", "created_at", "file_urls"]
    assert len(histories(sim, page=2, page_size=4)["data"]) == 2
    sim.config(genaipro_history_grouping="per_generation")
    doc = histories(sim)
    assert doc["total"] == 3 and all(len(h["file_urls"]) == 2 for h in doc["data"])


def test_submit_faults_and_download_faults(sim):
    r = text_to_video(sim, "x [sim:submit_429]")
    assert r.status_code == 429 and r.headers["Retry-After"] == "2"
    events = read_events(text_to_video(sim, "x [sim:expired]"))
    assert requests.get(events[-1][2][0]["file_url"]).status_code == 404
    events = read_events(text_to_video(sim, "x [sim:html_200]"))
    r = requests.get(events[-1][2][0]["file_url"])
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
