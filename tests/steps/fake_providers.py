"""Providers with scripted answers, behind providers/base.py's Provider and StreamingProvider.

An answer is a value, an exception (raised), or a callable (called with the method's arguments,
then treated the same way: a test can change the world "while the provider is working", e.g.
cancel the job). Answers are given in order and the last one repeats, as a provider asked
again keeps saying the same thing. Every call is recorded, so a test can assert that a late or
duplicate task reached no provider.
"""
from __future__ import annotations

import struct
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import requests

from dev.simulators import clips
from veorelay.core.capabilities import Capabilities
from veorelay.core.errors import ErrorCode, JobError, PermanentError, TransientError
from veorelay.core.request import GenerationRequest
from veorelay.providers.base import Generation, Handle, OutputRef, Progress, StreamBroken

FAKE_CAPABILITIES = Capabilities(
    models=("veo-fake-1", "veo-fake-2"),
    default_model="veo-fake-1",
    options=frozenset({"model", "aspect_ratio", "duration_seconds", "sample_count", "negative_prompt", "seed", "image", "last_frame"}),
    resolutions=(),
)
FAKE_STREAMING_CAPABILITIES = replace(FAKE_CAPABILITIES, streaming=True)

MP4_HEAD = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"


def mp4(size: int = 4096, seed: int = 0, clip: bytes | None = None) -> bytes:
    """A real, playable MP4 of `size` bytes (at least its clip's): `clip` (default: a 2 s 64x36
    H.264 + AAC clip, dev/simulators/clips.py, ~3 KB) then a top-level `free` box naming `seed`,
    so two videos differ, padded to `size`. Players and demuxers skip `free` boxes, so
    finalize's read-back (gcp/media_probe.py) finds the clip's tracks whatever the size."""
    head = clip if clip is not None else small_clip()
    tag = f"fake video seed={seed}\n".encode()
    room = size - len(head) - 8
    if room > len(tag):
        tag += bytes((i * 7 + seed) % 251 for i in range(min(room - len(tag), 65536)))
        tag = (tag * (room // len(tag) + 1))[:room]
    return head + struct.pack(">I4s", 8 + len(tag), b"free") + tag


def small_clip() -> bytes:
    return clips.clip(64, 36, 2.0)


# ---------------------------------------------------------------------------- answers


class Script:
    """Answers in order; the last one repeats. Empty: calling it is a test error."""

    def __init__(self, what: str, *answers: Any):
        self.what = what
        self._answers = list(answers)

    def then(self, *answers: Any) -> Script:
        self._answers.extend(answers)
        return self

    def set(self, *answers: Any) -> Script:
        self._answers = list(answers)
        return self

    def next(self, *args: Any) -> Any:
        if not self._answers:
            raise AssertionError(f"no answer scripted for {self.what}")
        answer = self._answers.pop(0) if len(self._answers) > 1 else self._answers[0]
        if callable(answer) and not isinstance(answer, type):
            answer = answer(*args)
        if isinstance(answer, BaseException):
            raise answer
        return answer


def running(percent: int | None = None) -> Progress:
    return Progress("running", percent=percent)


def succeeded(*urls: str) -> Progress:
    """Finished, with one output per URL (gs:// URLs are outputs the provider wrote to a bucket)."""
    refs = tuple(OutputRef(i, gcs_uri=u) if u.startswith("gs://") else OutputRef(i, url=u) for i, u in enumerate(urls))
    return Progress("succeeded", percent=100, outputs=refs)


def failed(code: ErrorCode = ErrorCode.PROVIDER_ERROR, message: str = "generation failed") -> Progress:
    return Progress("failed", error=JobError(str(code), message))


def rai_filtered() -> Progress:
    return failed(ErrorCode.RAI_FILTERED, "the prompt was blocked by the provider's safety filters")


def throttled(retry_after_s: float | None = 30.0) -> TransientError:
    """What providers/http.py raises for a 429 (with its Retry-After)."""
    return TransientError(ErrorCode.QUOTA_EXCEEDED, "fake is throttling (429)", "slow down", retry_after_s)


def unavailable() -> TransientError:
    return TransientError(ErrorCode.PROVIDER_UNAVAILABLE, "fake answered 503", "try later")


def refused(code: ErrorCode = ErrorCode.INVALID_REQUEST, message: str = "fake rejected the request (400)") -> PermanentError:
    return PermanentError(code, message, "bad request")


# ---------------------------------------------------------------------------- downloads


@dataclass(frozen=True)
class Video:
    """How one download behaves: its bytes, its headers, and where the connection breaks."""

    data: bytes
    content_type: str | None = "video/mp4"
    declared_length: int | None = None  # Content-Length when it differs from len(data)
    unknown_length: bool = False  # no Content-Length (chunked transfer)
    cut_after: int | None = None  # the connection breaks after this many bytes

    @property
    def content_length(self) -> int | None:
        if self.unknown_length:
            return None
        return self.declared_length if self.declared_length is not None else len(self.data)


class FakeDownload:
    """providers.base.Download over a Video; records what was read and whether it was closed."""

    def __init__(self, video: Video):
        self.video = video
        self.content_length = video.content_length
        self.content_type = video.content_type
        self.bytes_served = 0
        self.closed = False

    def iter_bytes(self, chunk_size: int) -> Iterator[bytes]:
        data, limit = self.video.data, self.video.cut_after
        end = len(data) if limit is None else min(limit, len(data))
        for start in range(0, end, chunk_size):
            piece = data[start:min(start + chunk_size, end)]
            self.bytes_served += len(piece)
            yield piece
        if limit is not None and limit < len(data):
            # What requests raises when a body stops before its end.
            raise requests.exceptions.ChunkedEncodingError("Connection broken: IncompleteRead")

    def close(self) -> None:
        self.closed = True


# ---------------------------------------------------------------------------- providers


@dataclass
class Call:
    method: str
    args: tuple[Any, ...]


class FakeProvider:
    """A polled provider: submit → handle, check → Progress, open_output → FakeDownload."""

    def __init__(self, name: str = "fake", capabilities: Capabilities = FAKE_CAPABILITIES):
        self.name = name
        self.capabilities = capabilities
        self.submits = Script(f"{name}.submit", lambda job_id, req: {"operation": f"operations/{job_id}"})
        self.checks = Script(f"{name}.check")
        self.videos: dict[str, Script] = {}  # by the output's url (or gcs_uri)
        self.calls: list[Call] = []
        self.downloads: list[FakeDownload] = []

    # --- the Provider interface

    def submit(self, job_id: str, req: GenerationRequest) -> Handle:
        self.calls.append(Call("submit", (job_id, req)))
        return self.submits.next(job_id, req)

    def check(self, handle: Handle) -> Progress:
        self.calls.append(Call("check", (handle,)))
        return self.checks.next(handle)

    def job_folder(self, job_id: str) -> str:
        """Where it writes a job's videos into the bucket itself (its gs:// outputs), as Vertex does."""
        return f"vertex/{job_id}/"

    def open_output(self, ref: OutputRef) -> FakeDownload:
        self.calls.append(Call("open_output", (ref,)))
        key = ref.url or ref.gcs_uri or str(ref.index)
        if key not in self.videos:
            raise AssertionError(f"no video scripted for {key}")
        answer = self.videos[key].next(ref)
        download = FakeDownload(answer if isinstance(answer, Video) else Video(answer))
        self.downloads.append(download)
        return download

    # --- scripting and inspection

    def serve(self, url: str, *answers: Video | bytes | BaseException | Callable[..., Any]) -> None:
        """What opening `url` gives, attempt by attempt (the last repeats)."""
        self.videos[url] = Script(f"{self.name}.open_output({url})", *answers)

    def count(self, method: str | None = None) -> int:
        return sum(1 for c in self.calls if method is None or c.method == method)

    def requests(self) -> list[GenerationRequest]:
        return [c.args[1] for c in self.calls if c.method == "submit"]


@dataclass(frozen=True)
class FakeEvent:
    """What stream_job reads from a stream (genaipro's StreamEvent has the same fields)."""

    kind: str  # "status" | "complete" | "error"
    stage: str | None = None
    percent: int | None = None
    outputs: tuple[OutputRef, ...] = ()
    error: JobError | None = None
    generation_ids: tuple[str, ...] = ()  # a completion's: the provider's ids of the generation's records


def status(stage: str, percent: int | None = None) -> FakeEvent:
    return FakeEvent("status", stage=stage, percent=percent)


def complete(*urls: str, ids: tuple[str, ...] = ()) -> FakeEvent:
    return FakeEvent("complete", outputs=tuple(OutputRef(i, url=u) for i, u in enumerate(urls)), generation_ids=ids)


def error_event(code: ErrorCode = ErrorCode.PROVIDER_ERROR, message: str = "generation failed") -> FakeEvent:
    return FakeEvent("error", error=JobError(str(code), message))


def broken(reason: str = "ConnectionResetError") -> StreamBroken:
    return StreamBroken(reason)


class FakeStream:
    """An open event stream: its items in order (an exception among them is raised there)."""

    def __init__(self, items: Sequence[FakeEvent | BaseException], on_event: Callable[[FakeEvent], None] | None = None):
        self.items = list(items)
        self.on_event = on_event  # called before each event is handed over (to act "meanwhile")
        self.read = 0
        self.closed = False

    def events(self) -> Iterator[FakeEvent]:
        for item in self.items:
            if isinstance(item, BaseException):
                raise item
            if self.on_event is not None:
                self.on_event(item)
            self.read += 1
            yield item

    def close(self) -> None:
        self.closed = True


class FakeStreamingProvider(FakeProvider):
    """A provider whose submit is an event stream (genaipro): open_stream, stream_handle and the
    search (candidates, pin, is_pinned), no submit. Its records (`generations`) hold, unless a
    test scripts them, one generation for every POST that reached it (open_stream answered)."""

    def __init__(self, name: str = "fakestream", capabilities: Capabilities = FAKE_STREAMING_CAPABILITIES):
        super().__init__(name, capabilities)
        self.streams = Script(f"{name}.open_stream")
        self.generations = Script(f"{name}.candidates", self._reached)
        self.opened: list[FakeStream] = []
        self.posted: list[tuple[str, float]] = []  # (prompt, when) of every POST that reached it

    def submit(self, job_id: str, req: GenerationRequest) -> Handle:
        raise AssertionError("a streaming provider is submitted to by stream_job's open_stream, never submit()")

    def open_stream(self, req: GenerationRequest, read_timeout_s: float) -> FakeStream:
        self.calls.append(Call("open_stream", (req, read_timeout_s)))
        answer = self.streams.next(req, read_timeout_s)
        stream = answer if isinstance(answer, FakeStream) else FakeStream(answer)
        self.opened.append(stream)
        self.posted.append((req.prompt, time.time()))
        return stream

    def stream_handle(self, req: GenerationRequest, submitted_at: float) -> Handle:
        return {"submitted_at": submitted_at, "prompt": req.prompt, "count": req.sample_count or 1}

    def candidates(self, handle: Handle) -> list[Generation]:
        self.calls.append(Call("candidates", (handle,)))
        return self.generations.next(handle)

    def pin(self, handle: Handle, generation: Generation) -> Handle:
        return {**handle, "history_ids": list(generation.ids)}

    def is_pinned(self, handle: Handle) -> bool:
        return bool(handle.get("history_ids"))

    def _reached(self, handle: Handle) -> list[Generation]:
        """The default records: a generation per POST of the handle's prompt since it was sent."""
        since = float(handle["submitted_at"]) - 60
        return [Generation((f"{self.name}-gen-{n}",), at) for n, (prompt, at) in enumerate(self.posted)
                if prompt == handle["prompt"] and at >= since][::-1]


__all__ = [
    "FAKE_CAPABILITIES", "Call", "FakeDownload", "FakeEvent", "FakeProvider", "FakeStream", "FakeStreamingProvider",
    "Script", "Video", "broken", "complete", "error_event", "failed", "mp4", "rai_filtered", "refused", "running",
    "status", "succeeded", "throttled", "unavailable",
]
