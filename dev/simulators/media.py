"""The video bytes every dialect serves, and the download faults on them.

Each output = a clip of the shape the job asked for (clips.py: width x height from
resolution and aspect ratio, its duration, audio when on; ftyp, moov, mdat) + a
top-level `free` box naming the operation and output index + (when a size is asked
for) a padding `free` box up to that size. Players skip `free` boxes, so every output
is a valid, playable MP4 with its own sha256. Nothing is materialised: bytes are
produced on the fly from the segments below, so a 512 MiB download or hash uses
constant memory. `moov_last` serves ftyp, mdat, the padding, then moov: a reader must
seek to the end of the file for its index.
"""

from __future__ import annotations

import hashlib
import pathlib
import re
import struct
import threading
import time

from flask import Response, request

from . import clips
from .common import Operation, Output, html_page

SAMPLE_PATH = pathlib.Path(__file__).with_name("assets") / "sample.mp4"
SAMPLE = SAMPLE_PATH.read_bytes()
CHUNK = 1 << 20
_ZEROS = bytes(CHUNK)
_MAX32 = 0xFFFFFFFF


def _box_header(total_len: int) -> bytes:
    """Header of a `free` box whose total length (header included) is total_len."""
    if total_len <= _MAX32:
        return struct.pack(">I4s", total_len, b"free")
    return struct.pack(">I4sQ", 1, b"free", total_len)  # 64-bit "largesize" form


class Video:
    """The byte layout of one output; iterate ranges without building it."""

    def __init__(self, op_id: str, index: int, size: int | None, clip: bytes | None = None, moov_last: bool = False):
        sample = SAMPLE if clip is None else clip
        tag = f"veo-relay-sim op={op_id} output={index}\n".encode()
        natural = len(sample) + 8 + len(tag)
        gap = max(0, (size or 0) - natural)
        # A padding box needs >= 8 bytes; a smaller gap is folded into the tag box.
        if 0 < gap < 8:
            tag += b"\0" * gap
            gap = 0
        head, moov = (clips.split_moov(sample) if moov_last else (sample, b""))
        self.segments: list[bytes | int] = [head, _box_header(8 + len(tag)) + tag]
        if gap:
            header = _box_header(gap)
            if len(header) == 16 and gap < 16:  # pragma: no cover - impossible sizes
                raise ValueError("gap too small")
            self.segments += [header, gap - len(header)]  # int = that many zero bytes
        if moov:
            self.segments.append(moov)
        self.total = sum(s if isinstance(s, int) else len(s) for s in self.segments)

    def iter_range(self, start: int = 0, end: int | None = None):
        """Yield bytes [start, end) in chunks of at most CHUNK."""
        end = self.total if end is None else min(end, self.total)
        pos = 0
        for seg in self.segments:
            seg_len = seg if isinstance(seg, int) else len(seg)
            lo, hi = max(start, pos), min(end, pos + seg_len)
            if lo < hi:
                if isinstance(seg, int):
                    remaining = hi - lo
                    while remaining:
                        n = min(remaining, CHUNK)
                        yield _ZEROS[:n] if n < CHUNK else _ZEROS
                        remaining -= n
                else:
                    for off in range(lo - pos, hi - pos, CHUNK):
                        yield seg[off:min(off + CHUNK, hi - pos)]
            pos += seg_len
            if pos >= end:
                break

    def read_all(self) -> bytes:
        """Whole video in memory -- only for inline base64 answers (Vertex/newapi)."""
        return b"".join(self.iter_range())


def video_for(op: Operation, out: Output) -> Video:
    return Video(op.id, out.index, out.size, clip_for(op), moov_last=op.directives.has("moov_last"))


# What a generation makes when the request leaves it open: Veo's defaults (8 s, 720p, 16:9).
DEFAULT_SECONDS, DEFAULT_RESOLUTION, DEFAULT_ASPECT = 8.0, "720p", "16:9"
FRAME_SIZES = {"720p": (1280, 720), "1080p": (1920, 1080), "4k": (3840, 2160)}
_PORTRAIT = {"9:16", "VIDEO_ASPECT_RATIO_PORTRAIT", "IMAGE_ASPECT_RATIO_PORTRAIT"}


def requested_shape(op: Operation) -> dict:
    """What the job's request asked for, in the dialect's own fields: Google's `parameters`
    (gemini, litellm-gemini, vertex), newapi's `metadata` (the same names), genaipro's and
    flow's aspect ratio (they carry no duration nor resolution: 8 s 720p)."""
    extra = op.extra
    params = extra.get("parameters") or extra.get("metadata") or {}
    aspect = params.get("aspectRatio") or extra.get("aspect_ratio")
    if not aspect and extra.get("requests"):
        aspect = (extra["requests"][0] or {}).get("aspectRatio")
    if not aspect and str(op.model).endswith("portrait"):
        aspect = "9:16"
    resolution = str(params.get("resolution") or DEFAULT_RESOLUTION).lower()
    width, height = FRAME_SIZES.get(resolution, FRAME_SIZES[DEFAULT_RESOLUTION])
    if aspect in _PORTRAIT:
        width, height = height, width
    seconds = params.get("durationSeconds")
    audio = params.get("generateAudio")
    extends = extra.get("extends")  # an extension (extension.py): the source's frame, its length + 7 s
    if isinstance(extends, dict):
        width, height, seconds = extends["width"], extends["height"], extends["seconds"]
    return {
        "width": width, "height": height,
        "seconds": float(seconds) if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) else DEFAULT_SECONDS,
        "audio": audio if isinstance(audio, bool) else not str(op.model).startswith("veo-2"),  # Veo 3 makes sound; Veo 2 none
    }


def clip_for(op: Operation) -> bytes:
    """The clip this operation's videos start with: the requested shape, unless a directive
    asks for another (clip_seconds, clip_size, no_audio, no_video_track, zero_duration)."""
    d = op.directives
    shape = requested_shape(op)
    width, height = d.clip_size() or (shape["width"], shape["height"])
    seconds = d.float("clip_seconds") or shape["seconds"]
    audio = shape["audio"] and not d.has("no_audio")
    if d.has("no_video_track"):
        return clips.audio_only(seconds)
    data = clips.clip(width, height, seconds, audio=audio, faststart=not d.has("moov_last"))
    return clips.zero_duration(data) if d.has("zero_duration") else data


_sha_cache: dict[tuple, str] = {}
_sha_lock = threading.Lock()


def sha256_of(op: Operation, out: Output) -> tuple[int, str]:
    """(size, sha256) of exactly what a full, fault-free download serves."""
    video = video_for(op, out)
    key = (op.id, out.index, video.total)
    with _sha_lock:
        if key in _sha_cache:
            return video.total, _sha_cache[key]
    h = hashlib.sha256()
    for chunk in video.iter_range():
        h.update(chunk)
    digest = h.hexdigest()
    with _sha_lock:
        if len(_sha_cache) > 10000:
            _sha_cache.clear()
        _sha_cache[key] = digest
    return video.total, digest


class ReaderStream:
    """File-like view of a Video, for streaming uploads with a Content-Length."""

    def __init__(self, video: Video):
        self._it = video.iter_range()
        self._buf = b""
        self.len = video.total  # requests' super_len() looks at .len

    def __len__(self) -> int:
        return self.len

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self._buf) < n:
            try:
                self._buf += next(self._it)
            except StopIteration:
                break
        if n < 0:
            data, self._buf = self._buf, b""
        else:
            data, self._buf = self._buf[:n], self._buf[n:]
        return data


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def serve_video(op: Operation, out: Output) -> Response:
    """Serve one output honouring the body-level faults of its operation:
    html_200, truncated, wrong_length. Single-range requests get a 206."""
    d = op.directives
    if d.has("html_200"):
        return html_page(200, "Sign in to continue")
    video = video_for(op, out)
    total = video.total
    headers = {"Content-Type": "video/mp4", "Accept-Ranges": "bytes",
               "Content-Disposition": f'attachment; filename="{op.id}_{out.index}.mp4"'}

    if d.has("truncated"):
        # Promise everything, deliver half, then the server closes the connection
        # (werkzeug always sends Connection: close), so the client sees a short read.
        headers["Content-Length"] = str(total)
        return Response(video.iter_range(0, total // 2), status=200, headers=headers,
                        direct_passthrough=True)
    if d.has("wrong_length"):
        headers["Content-Length"] = str(total + 4096)  # the lie
        return Response(video.iter_range(), status=200, headers=headers,
                        direct_passthrough=True)

    m = _RANGE.match(request.headers.get("Range", "").strip())
    if m and (m.group(1) or m.group(2)):
        if m.group(1):
            start = int(m.group(1))
            end = min(int(m.group(2)) + 1, total) if m.group(2) else total
        else:  # suffix range: last N bytes
            start, end = max(0, total - int(m.group(2))), total
        if start >= total or start >= end:
            return Response(status=416, headers={"Content-Range": f"bytes */{total}"})
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{total}"
        headers["Content-Length"] = str(end - start)
        return Response(video.iter_range(start, end), status=206, headers=headers,
                        direct_passthrough=True)

    headers["Content-Length"] = str(total)
    return Response(video.iter_range(), status=200, headers=headers, direct_passthrough=True)


def download(dialect: str, file_id: str, *, expired, not_found,
             always_redirect: bool = False) -> Response:
    """A dialect's download route: looks the file up, applies `expired` and
    `redirect`, then serves (or 302s to /_sim/blob/<file_id>, which serves).

    `expired` / `not_found` build the dialect's own error answer, because the
    status and body of those differ between providers."""
    from .common import base_url, state  # late: common imports nothing from here

    st = state()
    hit = st.by_file(file_id)
    op = hit[0] if hit else None
    if not hit or not op.is_done() or op.outcome != "success":
        resp = not_found()
    elif _expired(op):
        resp = expired()
    elif always_redirect or op.directives.has("redirect"):
        resp = Response(status=302, headers={"Location": f"{base_url()}/_sim/blob/{file_id}"})
    else:
        resp = serve_video(*hit)
    st.record(dialect, "download", op, resp.status_code, op_id=None)
    return resp


def _expired(op: Operation) -> bool:
    """`expired`: the URL is dead from the start; `expired=S`: S seconds after done."""
    if not op.directives.has("expired"):
        return False
    after = op.directives.float("expired")
    return after is None or time.time() > op.done_at + after
