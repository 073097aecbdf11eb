"""Real MP4 clips of a given shape, made with PyAV (the FFmpeg libraries in its wheel: libx264
and FFmpeg's own AAC encoder), for the simulated providers and the tests.

A generated job's clip matches what it asked for (width x height from resolution and aspect
ratio, its duration, an audio track when audio is on), so a normal job has no warnings; the
mismatch directives (media.py) serve another shape, an audio-less clip, one with no video track
(`audio_only`) or one whose tracks last zero seconds (`zero_duration`).

The picture is a still two-colour frame at a low frame rate (FPS): veo-relay checks no frame
rate, and a still frame costs the encoder almost nothing, so even a 4K 8 s clip is made in about
a second and weighs tens of KiB. Clips are cached per shape in the process.
"""
from __future__ import annotations

import functools
import os
import struct
import tempfile
import threading

FPS = 8
AUDIO_RATE = 24000
_lock = threading.Lock()

# Boxes that hold other boxes, on the way to the durations (ISO/IEC 14496-12).
_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts"}


def _encode(path: str, width: int, height: int, seconds: float, audio: bool, video: bool, faststart: bool) -> None:
    import av  # late: only a process that makes clips needs it
    from PIL import Image

    options = {"movflags": "faststart"} if faststart else {}
    with av.open(path, mode="w", format="mp4", options=options) as box:
        vstream = astream = None
        if video:
            vstream = box.add_stream("libx264", rate=FPS)
            vstream.width, vstream.height, vstream.pix_fmt = width, height, "yuv420p"
            vstream.options = {"crf": "40", "preset": "ultrafast", "tune": "stillimage"}
        if audio:
            astream = box.add_stream("aac", rate=AUDIO_RATE)
            astream.layout = "mono"
        if vstream is not None:
            picture = Image.new("RGB", (width, height), (40, 90, 200))
            picture.paste((230, 180, 40), (0, height // 2, width, height))
            for i in range(max(1, round(FPS * seconds))):
                frame = av.VideoFrame.from_image(picture)
                frame.pts = i
                box.mux(vstream.encode(frame))
            box.mux(vstream.encode(None))
        if astream is not None:
            total, chunk = round(AUDIO_RATE * seconds), 1024
            for start in range(0, total, chunk):
                n = min(chunk, total - start)
                frame = av.AudioFrame(format="fltp", layout="mono", samples=n)
                for plane in frame.planes:
                    plane.update(bytes(plane.buffer_size))  # silence: an audio track that weighs nothing
                frame.sample_rate, frame.pts = AUDIO_RATE, start
                box.mux(astream.encode(frame))
            box.mux(astream.encode(None))


@functools.lru_cache(maxsize=64)
def clip(width: int, height: int, seconds: float, audio: bool = True, video: bool = True, faststart: bool = True) -> bytes:
    """An MP4 of this shape (H.264 + AAC). `faststart=False` puts `moov` after `mdat`."""
    with _lock:
        fd, path = tempfile.mkstemp(suffix=".mp4")
        os.close(fd)
        try:
            _encode(path, width, height, seconds, audio, video, faststart)
            with open(path, "rb") as fh:
                return fh.read()
        finally:
            os.unlink(path)


def audio_only(seconds: float = 2.0) -> bytes:
    """An MP4 with an audio track and no video track."""
    return clip(16, 16, seconds, audio=True, video=False)


def split_moov(data: bytes) -> tuple[bytes, bytes]:
    """(every top-level box but moov, moov), for a file whose moov is its last box (a clip made
    with faststart=False): whatever goes between them, a reader must seek past to find the index."""
    pos = 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack_from(">I4s", data, pos)
        if kind == b"moov" and pos + size == len(data):
            return data[:pos], data[pos:]
        pos += max(size, 8)
    raise ValueError("the clip does not end with its moov box")


def zero_duration(data: bytes) -> bytes:
    """The same file with every duration zeroed (mvhd, tkhd, mdhd, elst, and each sample's in
    stts): the tracks and their bytes are there, but they last zero seconds."""
    out = bytearray(data)
    _zero(out, 0, len(out))
    return bytes(out)


def _zero(buf: bytearray, start: int, end: int) -> None:
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", buf, pos)
        header = 8
        if size == 1:
            size, header = struct.unpack_from(">Q", buf, pos + 8)[0], 16
        elif size == 0:
            size = end - pos
        body = pos + header
        if kind in _CONTAINERS:
            _zero(buf, body, pos + size)
        elif kind in (b"mvhd", b"mdhd"):
            version = buf[body]
            offset = body + (4 + 16 + 4 if version == 1 else 4 + 8 + 4)  # after flags, times, timescale
            struct.pack_into(">Q" if version == 1 else ">I", buf, offset, 0)
        elif kind == b"tkhd":
            version = buf[body]
            offset = body + (4 + 16 + 8 if version == 1 else 4 + 8 + 8)  # after flags, times, track id, reserved
            struct.pack_into(">Q" if version == 1 else ">I", buf, offset, 0)
        elif kind == b"stts":
            (count,) = struct.unpack_from(">I", buf, body + 4)
            for i in range(count):
                struct.pack_into(">I", buf, body + 8 + 8 * i + 4, 0)
        elif kind == b"elst":
            version = buf[body]
            (count,) = struct.unpack_from(">I", buf, body + 4)
            width = 8 if version == 1 else 4
            for i in range(count):
                struct.pack_into(">Q" if version == 1 else ">I", buf, body + 8 + i * (2 * width + 4), 0)
        pos += size
