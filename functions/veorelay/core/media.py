"""What a stored video is (duration, dimensions, codecs, audio) and how it compares with what the
job asked for. Pure: gcp/media_probe.py reads the object and hands its findings here.

Two outcomes, kept apart on purpose:
- a file that is no video at all (no video track, nothing to play) is refused: `unplayable`
  raises PermanentError(download_invalid), and finalize removes the object as for any failed
  verification;
- a real video that differs from the request (its length, its resolution or orientation, its
  audio) is kept, and the difference becomes a job warning (`warnings_for`) that clients see in
  GET /jobs/{id}, webhook data and job.json.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

from veorelay.core.errors import ErrorCode, PermanentError

# Veo renders 4, 5, 6, 7 or 8 s; muxers round a track to its last frame or audio packet, so a
# real 8 s video measures 7.96-8.06 s. Half a second apart is another length, not rounding.
DURATION_TOLERANCE_S = 0.5
# A 16:9 frame is 1.777..; encoders pad to even sizes. Two per cent apart is another shape.
ASPECT_TOLERANCE = 0.02

# The frame a resolution names, landscape (16:9); portrait (9:16) swaps width and height.
RESOLUTION_SIZES: dict[str, tuple[int, int]] = {"720p": (1280, 720), "1080p": (1920, 1080), "4k": (3840, 2160)}
ASPECT_RATIOS: dict[str, float] = {"16:9": 16 / 9, "9:16": 9 / 16}

POSTER_CONTENT_TYPE = "image/jpeg"


class Media(TypedDict):
    """An output's `media` (core/job.py Output)."""

    duration_seconds: float
    width: int
    height: int
    video_codec: str
    audio_codec: str | None
    has_audio: bool


class Poster(TypedDict):
    """An output's `poster`: its first frame as a JPEG beside the video."""

    uri: str  # gs://BUCKET/<output prefix>/<job id>/<index>.jpg
    name: str
    size: int
    content_type: str  # image/jpeg


class JobWarning(TypedDict):
    """One entry of a job's `warnings`: the job succeeded, but not quite as asked."""

    code: str  # duration_mismatch | resolution_mismatch | aspect_ratio_mismatch | audio_missing | audio_unexpected | poster_unavailable
    message: str  # for people
    output: int | None  # the output's index; None: the whole job


@dataclass(frozen=True)
class Probe:
    """What a demuxer found in a file, before any judgement (None: not there / not known)."""

    duration_seconds: float | None  # the container's, else the longest track's
    video_codec: str | None  # the first video track's codec (None: the file has no video track)
    width: int | None
    height: int | None
    audio_codec: str | None  # the first audio track's codec


def unplayable(probe: Probe) -> str | None:
    """Why this file is not a video anyone can play (None: it is one)."""
    if probe.video_codec is None:
        return "the file has no video track"
    if not probe.width or not probe.height or probe.width < 0 or probe.height < 0:
        return "the video track has no picture size"
    if probe.duration_seconds is None or not probe.duration_seconds > 0:
        return "the video lasts zero seconds"
    return None


def media_of(probe: Probe) -> Media:
    """The output's `media`; a file that is no video raises PermanentError(download_invalid)."""
    why = unplayable(probe)
    if why is not None:
        raise PermanentError(ErrorCode.DOWNLOAD_INVALID, f"the stored file is not a playable video: {why}")
    return Media(duration_seconds=round(float(probe.duration_seconds or 0), 3), width=int(probe.width or 0),
                 height=int(probe.height or 0), video_codec=str(probe.video_codec), audio_codec=probe.audio_codec,
                 has_audio=probe.audio_codec is not None)


@dataclass(frozen=True)
class Expectation:
    """What the job asked for that a video can be held to (None: not asked; the provider chose)."""

    duration_seconds: float | None = None
    resolution: str | None = None  # a RESOLUTION_SIZES key
    aspect_ratio: str | None = None  # an ASPECT_RATIOS key
    audio: bool | None = None  # generate_audio as asked


def expectation_of(job: Mapping[str, Any]) -> Expectation:
    """The job's request as an Expectation. Only what the client set counts: a default is the
    provider's to choose. An extension's length is its source's plus what the provider adds, so
    a job that extends another is not held to a duration."""
    request = job.get("request") or {}
    extends = bool(job.get("extends") or request.get("extend"))
    duration = request.get("duration_seconds")
    resolution = request.get("resolution")
    aspect = request.get("aspect_ratio")
    audio = request.get("generate_audio")
    return Expectation(
        duration_seconds=float(duration) if isinstance(duration, (int, float)) and not isinstance(duration, bool) and not extends else None,
        resolution=str(resolution).lower() if isinstance(resolution, str) and resolution.lower() in RESOLUTION_SIZES else None,
        aspect_ratio=aspect if aspect in ASPECT_RATIOS else None,
        audio=audio if isinstance(audio, bool) else None,
    )


def expected_sizes(resolution: str, aspect_ratio: str | None) -> tuple[tuple[int, int], ...]:
    """The (width, height) a resolution means: landscape for 16:9, portrait for 9:16, either when
    no aspect ratio was asked for."""
    width, height = RESOLUTION_SIZES[resolution]
    if aspect_ratio == "16:9":
        return ((width, height),)
    if aspect_ratio == "9:16":
        return ((height, width),)
    return ((width, height), (height, width))


def warnings_for(expect: Expectation, index: int, media: Media) -> list[JobWarning]:
    """Every way output `index` differs from what was asked (empty: as asked)."""
    found: list[JobWarning] = []
    duration = media["duration_seconds"]
    if expect.duration_seconds is not None and abs(duration - expect.duration_seconds) > DURATION_TOLERANCE_S:
        found.append(JobWarning(code="duration_mismatch", output=index,
                                message=f"output {index} lasts {duration:g} s; {expect.duration_seconds:g} s were asked for"))
    size = (media["width"], media["height"])
    if expect.resolution is not None:
        sizes = expected_sizes(expect.resolution, expect.aspect_ratio)
        if size not in sizes:
            wanted = " or ".join(f"{w}x{h}" for w, h in sizes)
            found.append(JobWarning(code="resolution_mismatch", output=index,
                                    message=f"output {index} is {size[0]}x{size[1]}; {expect.resolution} "
                                            f"{expect.aspect_ratio or ''} means {wanted}".replace("  ", " ")))
    elif expect.aspect_ratio is not None and abs(size[0] / size[1] - ASPECT_RATIOS[expect.aspect_ratio]) > ASPECT_TOLERANCE:
        found.append(JobWarning(code="aspect_ratio_mismatch", output=index,
                                message=f"output {index} is {size[0]}x{size[1]}, not {expect.aspect_ratio}"))
    if expect.audio is True and not media["has_audio"]:
        found.append(JobWarning(code="audio_missing", output=index,
                                message=f"output {index} has no audio track; generate_audio was asked for"))
    elif expect.audio is False and media["has_audio"]:
        found.append(JobWarning(code="audio_unexpected", output=index,
                                message=f"output {index} has an audio track although generate_audio was false"))
    return found


def poster_missing(index: int, why: str) -> JobWarning:
    """The video is kept, but no poster could be made of it (a codec the decoder lacks)."""
    return JobWarning(code="poster_unavailable", output=index, message=f"output {index} has no poster: {why}"[:300])
