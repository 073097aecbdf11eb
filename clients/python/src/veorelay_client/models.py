"""What the API returns, typed: a Job (GET /jobs/{id}), its outputs, an event of its stream, a
page of the listing. Every object keeps the JSON it came from in `raw`, so fields a newer server
adds are never lost (and `--json` prints exactly what the API said)."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

TERMINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled"})
EVENT_TYPES = ("job.accepted", "job.running", "job.progress", "job.downloading", "job.succeeded", "job.failed", "job.cancelled")


@dataclass(frozen=True)
class Progress:
    percent: int | None  # 0-100 as far as the provider tells; None when it gives no number
    stage: str  # accepted, throttled, starting, running, downloading, succeeded, or a provider's stage

    @classmethod
    def from_dict(cls, data: Any) -> Progress:
        data = data if isinstance(data, Mapping) else {}
        percent = data.get("percent")
        return cls(percent=int(percent) if isinstance(percent, (int, float)) else None, stage=str(data.get("stage") or ""))


@dataclass(frozen=True)
class Media:
    """What the stored MP4 is (probed by the server)."""

    duration_seconds: float | None
    width: int | None
    height: int | None
    video_codec: str | None
    audio_codec: str | None
    has_audio: bool | None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Media:
        return cls(duration_seconds=data.get("duration_seconds"), width=data.get("width"), height=data.get("height"),
                   video_codec=data.get("video_codec"), audio_codec=data.get("audio_codec"), has_audio=data.get("has_audio"))


@dataclass(frozen=True)
class Poster:
    """A still of the video (JPEG) stored beside it."""

    uri: str
    name: str | None
    size: int | None
    content_type: str

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Poster:
        return cls(uri=str(data.get("uri") or ""), name=data.get("name"), size=data.get("size"),
                   content_type=str(data.get("content_type") or "image/jpeg"))


@dataclass(frozen=True)
class Output:
    """One stored video: gs:// `uri`, object `name`, `size`; `crc32c` and `md5` as Cloud Storage
    reports them for the object (base64); `sha256` (hex) only where the deployment records one
    (VEO_OUTPUT_SHA256), else None; `signed_url` where the server gave one (webhooks do)."""

    index: int
    uri: str
    name: str | None
    size: int | None
    sha256: str | None
    content_type: str | None
    signed_url: str | None = None
    media: Media | None = None
    poster: Poster | None = None
    crc32c: str | None = None
    md5: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], position: int) -> Output:
        media, poster = data.get("media"), data.get("poster")
        return cls(
            index=int(data.get("index", position)), uri=str(data.get("uri") or ""), name=data.get("name"),
            size=data.get("size"), sha256=data.get("sha256"), content_type=data.get("content_type"),
            signed_url=data.get("signed_url"),
            media=Media.from_dict(media) if isinstance(media, Mapping) else None,
            poster=Poster.from_dict(poster) if isinstance(poster, Mapping) else None,
            crc32c=data.get("crc32c"), md5=data.get("md5"),
        )


@dataclass(frozen=True)
class JobError:
    code: str
    message: str
    retryable: bool | None = None
    provider_detail: Any = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobError:
        return cls(code=str(data.get("code") or "unknown"), message=str(data.get("message") or ""),
                   retryable=data.get("retryable"), provider_detail=data.get("provider_detail"))


@dataclass(frozen=True)
class Job:
    """A job as GET /jobs/{id} shows it."""

    id: str
    status: str  # accepted, running, downloading, succeeded, failed, cancelled
    provider: str | None
    model: str | None
    progress: Progress
    outputs: tuple[Output, ...]
    error: JobError | None
    metadata: Any
    request: dict[str, Any]
    created_at: datetime | None
    updated_at: datetime | None
    timestamps: dict[str, str]
    warnings: tuple[dict[str, Any], ...]
    cost: dict[str, Any] | None
    extends: dict[str, Any] | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Job:
        raw = dict(data)
        outputs = raw.get("outputs") or []
        error = raw.get("error")
        return cls(
            id=str(raw.get("id") or ""),
            status=str(raw.get("status") or ""),
            provider=raw.get("provider"),
            model=raw.get("model"),
            progress=Progress.from_dict(raw.get("progress")),
            outputs=tuple(Output.from_dict(o, i) for i, o in enumerate(outputs) if isinstance(o, Mapping)),
            error=JobError.from_dict(error) if isinstance(error, Mapping) else None,
            metadata=raw.get("metadata"),
            request=dict(raw.get("request") or {}),
            created_at=parse_time(raw.get("created_at")),
            updated_at=parse_time(raw.get("updated_at")),
            timestamps=dict(raw.get("timestamps") or {}),
            warnings=tuple(w for w in raw.get("warnings") or [] if isinstance(w, dict)),
            cost=raw.get("cost") if isinstance(raw.get("cost"), dict) else None,
            extends=raw.get("extends") if isinstance(raw.get("extends"), dict) else None,
            raw=raw,
        )


@dataclass(frozen=True)
class JobEvent:
    """One message of GET /jobs/{id}/events: `type` job.running, job.progress, ... and the job
    as it was then; `id` is what Last-Event-ID resumes from."""

    id: str | None
    type: str
    job: Job

    @property
    def terminal(self) -> bool:
        return self.job.terminal


@dataclass(frozen=True)
class Page:
    """One page of GET /jobs; `next_cursor` fetches the next (None: the last page)."""

    jobs: tuple[Job, ...]
    next_cursor: str | None


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
