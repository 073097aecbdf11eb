"""A stored video read back from the bucket: its structure (PyAV, the FFmpeg libraries in its
wheel; no ffmpeg binary) and, when asked, its first keyframe as a JPEG poster.

The object is read through the client library's seekable reader (Blob.open("rb"), a
BlobReader: ranged GETs of PROBE_CHUNK_BYTES), never as a whole: the demuxer reads the box
headers, seeks over `mdat` when `moov` comes last, and the decoder reads the packets of the
first keyframe only. Memory is bounded by the reader's chunk, the demuxer's index and one
decoded frame (a 4K frame is ~12 MiB as YUV, ~25 MiB as RGB), whatever the file's size.

What the findings mean (no video track, zero seconds, not as asked) is core/media.py's.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import storage

from veorelay.core.errors import ErrorCode, PermanentError, TransientError
from veorelay.core.media import POSTER_CONTENT_TYPE, Poster, Probe, unplayable
from veorelay.gcp import logs
from veorelay.gcp.deadlines import GCS_CALL_S, GCS_CHUNK_S, GCS_RETRY

PROBE_CHUNK_BYTES = 1024 * 1024  # one ranged GET of the reader; the demuxer's reads are 64 KiB
AVIO_BUFFER_BYTES = 64 * 1024
MAX_POSTER_PACKETS = 64  # packets fed to the decoder to get the first picture (decoder delay, B-frames)
POSTER_QUALITY = 85


@dataclass(frozen=True)
class Inspection:
    probe: Probe
    poster_jpeg: bytes | None  # asked for and made
    poster_problem: str | None  # asked for and not made: why (the video is kept)
    bytes_read: int  # what the demuxer read through the reader, for the logs (a fraction of a big file)


class _CountingReader(io.RawIOBase):
    """The BlobReader as the demuxer sees it, counting what it reads."""

    def __init__(self, inner: Any):
        self._inner = inner
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data: bytes = self._inner.read(size)
        self.bytes_read += len(data)
        return data

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return int(self._inner.seek(offset, whence))

    def tell(self) -> int:
        return int(self._inner.tell())


def inspect_stored(bucket: storage.Bucket, name: str, *, with_poster: bool) -> Inspection:
    """Read the stored video `name`: duration, picture size, codecs, and (with_poster) its first
    keyframe as a JPEG. A file the demuxer cannot read at all is a PermanentError(download_invalid);
    the bucket failing under the read is a TransientError (the queue retries)."""
    # PyAV (FFmpeg, ~20 MiB resident) is imported by the first probe, not by every cold start
    # of the functions that import this module (finalize_job, api): docs/BENCHMARKS.md.
    import av

    try:
        blob = bucket.get_blob(name, timeout=GCS_CALL_S, retry=GCS_RETRY)
        if blob is None:
            raise TransientError(ErrorCode.INTERNAL, f"{name} was stored, then not found")
        with blob.open("rb", chunk_size=PROBE_CHUNK_BYTES, timeout=GCS_CHUNK_S, retry=GCS_RETRY) as raw:
            reader = _CountingReader(raw)
            probe, jpeg, problem = _read(reader, with_poster)
    except (TransientError, PermanentError):
        raise
    except gexc.GoogleAPIError as exc:
        raise TransientError(ErrorCode.INTERNAL, f"reading back {name} failed: {type(exc).__name__}") from exc
    except av.error.FFmpegError as exc:
        raise PermanentError(ErrorCode.DOWNLOAD_INVALID, "the stored file is not a readable MP4",
                             f"{type(exc).__name__}: {exc}"[:300]) from exc
    except (OSError, ValueError) as exc:  # the reader's transport (requests, urllib3) under the demuxer
        raise TransientError(ErrorCode.INTERNAL, f"reading back {name} failed: {type(exc).__name__}") from exc
    return Inspection(probe, jpeg, problem, reader.bytes_read)


def _read(reader: _CountingReader, with_poster: bool) -> tuple[Probe, bytes | None, str | None]:
    import av  # imported already by inspect_stored, the only caller

    with av.open(reader, mode="r", buffer_size=AVIO_BUFFER_BYTES, metadata_errors="ignore") as container:
        video = container.streams.video[0] if container.streams.video else None
        audio = container.streams.audio[0] if container.streams.audio else None
        probe = Probe(
            duration_seconds=_duration(container),
            video_codec=video.codec_context.name if video is not None else None,
            width=video.codec_context.width if video is not None else None,
            height=video.codec_context.height if video is not None else None,
            audio_codec=audio.codec_context.name if audio is not None else None,
        )
        if not with_poster or video is None or unplayable(probe) is not None:
            return probe, None, None  # nothing to decode; core/media.py media_of refuses it
        return probe, *_poster(container, video)


def _duration(container: Any) -> float | None:
    """The container's duration (mvhd), else its longest track's; None when neither says."""
    import av

    if container.duration:  # microseconds (AV_TIME_BASE)
        return float(container.duration / av.time_base)
    tracks = [float(s.duration * s.time_base) for s in container.streams if s.duration and s.time_base]
    return max(tracks) if tracks else (0.0 if container.duration == 0 else None)


def _poster(container: Any, video: Any) -> tuple[bytes | None, str | None]:
    """The first keyframe, decoded alone (non-key frames skipped, one thread: one frame in
    memory), as a JPEG of the video's own size."""
    import av

    context = video.codec_context
    try:
        context.skip_frame = "NONKEY"
        context.thread_type = "NONE"
        context.thread_count = 1
    except (AttributeError, ValueError, av.error.FFmpegError):  # a decoder that cannot be set so still decodes
        pass
    packets = 0
    try:
        for packet in container.demux(video):
            packets += 1
            for frame in packet.decode():
                return _jpeg(frame), None
            if packets >= MAX_POSTER_PACKETS:
                break
        for frame in video.decode(None):  # flush: the decoder holds frames it was waiting to reorder
            return _jpeg(frame), None
    except av.error.DecoderNotFoundError as exc:
        return None, f"no decoder for {context.name}: {exc}"[:200]
    except av.error.FFmpegError as exc:
        raise PermanentError(ErrorCode.DOWNLOAD_INVALID, "the video's first frame does not decode",
                             f"{type(exc).__name__}: {exc}"[:300]) from exc
    raise PermanentError(ErrorCode.DOWNLOAD_INVALID, f"no picture decoded from the video's first {packets} packets")


def _jpeg(frame: Any) -> bytes:
    """One decoded frame as a JPEG of its own size. The frame is converted once, to RGBX, and
    Pillow encodes straight from that buffer (frombuffer shares it): a 4K frame costs one 33 MiB
    copy, where Frame.to_image() makes three (about 70 MiB more at the peak). No `optimize`
    pass: it holds the whole image's coefficients again (~25 MiB at 4K)."""
    from PIL import Image

    rgbx = frame.reformat(format="rgb0")
    plane = rgbx.planes[0]
    image = Image.frombuffer("RGBX", (rgbx.width, rgbx.height), plane, "raw", "RGBX", plane.line_size, 1)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=POSTER_QUALITY)
    return out.getvalue()


def poster_of(bucket: storage.Bucket, name: str) -> Poster | None:
    """The poster an earlier attempt stored at `name`, or None."""
    try:
        blob = bucket.get_blob(name, timeout=GCS_CALL_S, retry=GCS_RETRY)
    except gexc.GoogleAPIError as exc:
        raise TransientError(ErrorCode.INTERNAL, f"reading {name} failed: {type(exc).__name__}") from exc
    if blob is None:
        return None
    return Poster(uri=f"gs://{bucket.name}/{name}", name=name, size=int(blob.size or 0), content_type=POSTER_CONTENT_TYPE)


def store_poster(bucket: storage.Bucket, name: str, jpeg: bytes, metadata: dict[str, str]) -> Poster:
    """Create the poster object (create-only: a concurrent or earlier attempt's poster is kept,
    so an output never has two)."""
    blob = bucket.blob(name)
    blob.metadata = metadata
    try:
        blob.upload_from_string(jpeg, content_type=POSTER_CONTENT_TYPE, if_generation_match=0, timeout=GCS_CALL_S, retry=GCS_RETRY)
    except gexc.PreconditionFailed:
        earlier = poster_of(bucket, name)
        if earlier is None:
            raise TransientError(ErrorCode.INTERNAL, f"{name} was reported to exist, then not found") from None
        return earlier
    except gexc.GoogleAPIError as exc:
        raise TransientError(ErrorCode.INTERNAL, f"writing the poster failed: {type(exc).__name__}") from exc
    logs.info("poster stored", object=name, size=len(jpeg))
    return Poster(uri=f"gs://{bucket.name}/{name}", name=name, size=len(jpeg), content_type=POSTER_CONTENT_TYPE)
