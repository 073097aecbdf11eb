"""Admin API, the MP4 outputs themselves, and the `python -m dev.simulators` entry point."""

from __future__ import annotations

import hashlib
import itertools
import pathlib
import socket
import struct
import subprocess
import sys
import time

import pytest
import requests

from dev.simulators import media
from dev.simulators.mp4check import check_mp4

ROOT = pathlib.Path(__file__).resolve().parents[2]

KEY = {"x-goog-api-key": "sim-key-litellm-gemini"}


def submit(sim, prompt):
    r = requests.post(f"{sim.url}/gemini/v1beta/models/veo-3.1-generate-preview:predictLongRunning",
                      headers=KEY, json={"instances": [{"prompt": prompt}]})
    assert r.status_code == 200
    return r.json()["name"].rsplit("/", 1)[1]


def test_sample_asset_is_a_real_mp4():
    boxes = check_mp4(media.SAMPLE)
    assert [b[0] for b in boxes][:2] == [b"ftyp", b"moov"]  # faststart
    assert b"avc1" in media.SAMPLE and b"mp4a" in media.SAMPLE  # H.264 + AAC tracks


@pytest.mark.parametrize("size", [None, 0, len(media.SAMPLE) + 60, len(media.SAMPLE) + 100,
                                  1 << 20])
def test_video_layout(size):
    video = media.Video("opid", 2, size)
    data = video.read_all()
    assert len(data) == video.total
    if size:  # every size here leaves room for a padding box: the video is exactly that size
        assert video.total == size
    boxes = check_mp4(data)
    # The sample's own boxes, then the `free` box tagging the output, then (a size asked for)
    # the `free` box padding it to that size.
    sample = [b[0] for b in check_mp4(media.SAMPLE)]
    assert [b[0] for b in boxes] == sample + [b"free"] + ([b"free"] if size else [])
    assert b"op=opid output=2" in data
    # arbitrary ranges stitch back to the whole
    cut = [0, 7, len(media.SAMPLE) - 1, len(media.SAMPLE) + 3, video.total]
    parts = b"".join(b"".join(video.iter_range(a, b)) for a, b in itertools.pairwise(cut))
    assert parts == data


def test_video_over_4gib_uses_largesize_header():
    video = media.Video("big", 0, 5 << 30)
    assert video.total == 5 << 30
    header = video.segments[2]
    size_field, kind, large = struct.unpack(">I4sQ", header)
    assert (size_field, kind) == (1, b"free") and large == video.total - len(media.SAMPLE) - len(video.segments[1])


def test_large_download_streams_and_hashes(sim, until):
    op_id = submit(sim, "big [sim:size=64M,duration=0]")
    (out,) = sim.operation(op_id)["outputs"]
    assert out["size"] == 64 << 20
    h, n = hashlib.sha256(), 0
    with requests.get(out["download_url"], headers=KEY, stream=True) as r:
        assert int(r.headers["Content-Length"]) == 64 << 20
        for chunk in r.iter_content(1 << 20):
            h.update(chunk)
            n += len(chunk)
    assert n == 64 << 20 and h.hexdigest() == out["sha256"]


def test_calls_operations_reset_config(sim):
    op_id = submit(sim, "logged")
    requests.get(f"{sim.url}/gemini/v1beta/models/veo-3.1-generate-preview/operations/{op_id}",
                 headers=KEY)
    calls = sim.calls(dialect="litellm-gemini")
    assert [c["kind"] for c in calls] == ["submit", "poll"]
    assert set(calls[0]) >= {"dialect", "kind", "op_id", "prompt", "at", "status"}
    assert calls[0]["op_id"] == op_id and calls[0]["prompt"] == "logged"
    assert sim.calls(kind="poll")[0]["status"] == 200
    assert sim.calls(dialect="newapi") == []
    ops = sim.operations()
    assert [o["id"] for o in ops] == [op_id]
    assert set(ops[0]) >= {"id", "dialect", "prompt", "model", "outputs"}
    assert set(ops[0]["outputs"][0]) >= {"index", "size", "sha256", "url"}
    assert "sha256" not in sim.operations(hash=0)[0]["outputs"][0]

    assert requests.get(f"{sim.url}/_sim/health").json()["ok"] is True
    r = requests.post(f"{sim.url}/_sim/config", json={"duration": 1})
    assert r.status_code == 400  # typo'd key is refused, not ignored
    assert sim.config(duration_s=0.7)["duration_s"] == 0.7
    requests.post(f"{sim.url}/_sim/reset").raise_for_status()
    assert sim.operations() == [] and sim.calls() == []
    assert requests.get(f"{sim.url}/_sim/config").json()["duration_s"] == 2.0


def test_keys_come_from_environment(sim, monkeypatch):
    monkeypatch.setenv("VEO_LITELLM_GEMINI_API_KEY", "custom")
    url = f"{sim.url}/gemini/v1beta/models/m:predictLongRunning"
    body = {"instances": [{"prompt": "x"}]}
    assert requests.post(url, headers=KEY, json=body).status_code == 401
    assert requests.post(url, headers={"x-goog-api-key": "custom"}, json=body).status_code == 200


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_module_entry_point():
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "dev.simulators", "--host", "127.0.0.1",
                             "--port", str(port), "--quiet"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}/_sim/health", timeout=1).ok:
                    break
            except requests.ConnectionError:
                pass
            assert proc.poll() is None, proc.stdout.read().decode()
            assert time.monotonic() < deadline, "simulator did not start"
            time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(timeout=5)
