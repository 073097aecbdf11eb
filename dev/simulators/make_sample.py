"""Make dev/simulators/assets/sample.mp4, the fixed clip the tests of the simulator's byte
layout use (tests/tooling/test_sim_admin_media.py). The videos the simulated providers serve
are made per request shape by clips.py (PyAV is a runtime dependency of the functions now, so
it is in .venv); this script also needs numpy:

    .venv/bin/pip install numpy   # or a throwaway venv with av and numpy
    .venv/bin/python dev/simulators/make_sample.py

The result is committed. The clip is
2 s, 320x180, 24 fps H.264 (yuv420p) plus a 1 s-period AAC tone, muxed with
`movflags=faststart` so the top-level boxes are ftyp, moov, ..., mdat: a real,
playable MP4 that ffprobe/browsers accept, small enough (~tens of KiB) to keep
in git. The simulator appends `free` boxes after it to make each output unique.
"""

from __future__ import annotations

import math
import pathlib

import av
import numpy as np

WIDTH, HEIGHT, FPS, SECONDS = 320, 180, 24, 2
AUDIO_RATE = 48000
OUT = pathlib.Path(__file__).with_name("assets") / "sample.mp4"


def frame_rgb(i: int) -> np.ndarray:
    """A moving colour gradient with a sliding white bar, so motion is visible."""
    t = i / (FPS * SECONDS)
    x = np.linspace(0, 1, WIDTH)[None, :]
    y = np.linspace(0, 1, HEIGHT)[:, None]
    r = (x * 255 + t * 255) % 256
    g = y * 255 * np.ones_like(x)
    b = ((1 - x) * 128 + 127 * math.sin(t * math.pi)) * np.ones_like(y)
    img = np.stack(np.broadcast_arrays(r, g, b), axis=-1).astype(np.uint8)
    bar = int(t * (WIDTH - 20))
    img[:, bar:bar + 20, :] = 255
    return img


def main() -> None:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(OUT), mode="w", options={"movflags": "faststart"}) as box:
        video = box.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        video.options = {"crf": "32", "preset": "veryslow"}
        audio = box.add_stream("aac", rate=AUDIO_RATE)
        audio.layout = "mono"

        for i in range(FPS * SECONDS):
            frame = av.VideoFrame.from_ndarray(frame_rgb(i), format="rgb24")
            box.mux(video.encode(frame))
        box.mux(video.encode(None))

        chunk = 1024
        total = AUDIO_RATE * SECONDS
        for start in range(0, total, chunk):
            n = min(chunk, total - start)
            ts = (np.arange(start, start + n) / AUDIO_RATE).astype(np.float32)
            tone = (0.2 * np.sin(2 * np.pi * 440 * ts)).astype(np.float32)[None, :]
            frame = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
            frame.sample_rate = AUDIO_RATE
            frame.pts = start
            box.mux(audio.encode(frame))
        box.mux(audio.encode(None))
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
