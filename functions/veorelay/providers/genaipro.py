"""`genaipro`: genaipro.vn (seed document 002 and the public facts in seeds/README.md).

    POST {base}/api/v1/veo/text-to-video          JSON {prompt, aspect_ratio, number_of_videos}
    POST {base}/api/v1/veo/frames-to-video        multipart start_image, end_image?, prompt, aspect_ratio, number_of_videos
    POST {base}/api/v1/veo/ingredients-to-video   multipart reference_images (1-3), prompt, number_of_videos
         each answers with Server-Sent Events: video_generation_status "starting" | "uploading_images" |
         "processing", then video_generation_complete [{id, prompt, file_url, status, created_at}] or error
    GET  {base}/api/v1/veo/histories?page=&page_size=   newest first, the way back to a job
    Authorization: Bearer <key> on the API; file_urls need none.

There is no polling API: the POST is the job. The step that POSTs holds the stream (stream_job,
steps/stream.py). When a stream breaks the job is found again in the histories, by prompt and
time (the entries exist from the submit on): `candidates` lists every generation that may be
the job's, the steps decide which is (steps/recover.py: claimed in Firestore, never a guess),
and `check` follows the one generation a pinned handle names, by its entries' ids.
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import requests
import urllib3

from veorelay.core.catalog import ProviderCatalog
from veorelay.core.errors import ErrorCode, JobError, PermanentError, TransientError
from veorelay.providers.base import Capabilities, Download, Generation, Handle, KeyedDialect, OutputRef, Progress, StreamBroken
from veorelay.providers.http import DEFAULT_TIMEOUT, open_download, request_json, send

if TYPE_CHECKING:
    from veorelay.core.accepted import AcceptedImage, AcceptedRequest

SUCCESSFUL = "MEDIA_GENERATION_STATUS_SUCCESSFUL"
ASPECTS = {"16:9": "VIDEO_ASPECT_RATIO_LANDSCAPE", "9:16": "VIDEO_ASPECT_RATIO_PORTRAIT"}
# The stage each status event stands for, with a rough share of the work done.
STAGES = {"starting": 5, "uploading_images": 10, "processing": 20}
ERROR_CODES = {"CONTENT_FILTERED": ErrorCode.RAI_FILTERED, "GENERATION_FAILED": ErrorCode.PROVIDER_ERROR}
# Finding a job again: a history entry is ours if it has our prompt and was created no earlier
# than this before we submitted (clocks differ; created_at has whole seconds).
MATCH_SKEW_S = 60.0
HISTORY_PAGES, HISTORY_PAGE_SIZE = 5, 100
LOST_AFTER_S = 600.0  # the pinned entries gone this long after the submit: the provider has no such job

# What the dialect can send; its one model ("auto": genaipro picks) is the catalog's (catalog/genaipro.toml).
OPTIONS = frozenset({"aspect_ratio", "sample_count", "image", "last_frame", "reference_images"})
NOTES = ("answers with a Server-Sent Events stream held by stream_job (no polling); a broken stream is "
         "recovered through the histories, matched by prompt and time",
         "ingredients-to-video (reference_images) is landscape only; genaipro picks the model")


@dataclass(frozen=True)
class StreamEvent:
    kind: str  # "status" | "complete" | "error"
    stage: str | None = None
    outputs: tuple[OutputRef, ...] = ()
    error: JobError | None = None
    generation_ids: tuple[str, ...] = ()  # the complete event's entry ids (the histories' ids, per video)

    @property
    def percent(self) -> int | None:
        return STAGES.get(self.stage or "")


class GenaiproStream:
    """One open event stream (the answer to the POST); iterate `events()`, then close()."""

    def __init__(self, resp: requests.Response):
        self._resp = resp
        self.is_event_stream = resp.headers.get("Content-Type", "").split(";")[0].strip().lower() == "text/event-stream"

    def events(self) -> Iterator[StreamEvent]:
        if not self.is_event_stream:
            return  # a 200 that is not a stream (a proxy's page): nothing to follow here
        import sseclient  # only where a stream is held (stream_job), not at every cold start

        for event in sseclient.SSEClient(self._chunks()).events():
            parsed = parse_event(event.event, event.data)
            if parsed is not None:
                yield parsed

    def _chunks(self) -> Iterator[bytes]:
        try:
            yield from self._resp.iter_content(chunk_size=None)  # each event as soon as it arrives
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise StreamBroken(type(exc).__name__) from exc
        except UnicodeDecodeError as exc:
            raise StreamBroken("the stream is not UTF-8") from exc

    def close(self) -> None:
        self._resp.close()


def parse_event(name: str, data: str) -> StreamEvent | None:
    try:
        value = json.loads(data)
    except ValueError:
        return None  # an event cut in half by a broken stream, or one we do not know
    if name == "video_generation_status" and isinstance(value, str):
        return StreamEvent("status", stage=value)
    if name == "video_generation_complete" and isinstance(value, list):
        entries = [e for e in value if isinstance(e, dict) and isinstance(e.get("file_url"), str) and e["file_url"]]
        ids = tuple(str(e["id"]) for e in entries if isinstance(e.get("id"), (str, int)) and str(e["id"]))
        return StreamEvent("complete", outputs=tuple(OutputRef(i, url=e["file_url"]) for i, e in enumerate(entries)),
                           generation_ids=ids if len(ids) == len(entries) else ())
    if name == "error":
        return StreamEvent("error", error=stream_error(value))
    return None


def stream_error(value: Any) -> JobError:
    code = value.get("code") if isinstance(value, dict) else None
    message = str((value.get("message") if isinstance(value, dict) else value) or "genaipro reported an error")[:500]
    return JobError(ERROR_CODES.get(str(code), ErrorCode.PROVIDER_ERROR), message, False, value if isinstance(value, dict) else None)


class Genaipro(KeyedDialect):
    name = "genaipro"

    @classmethod
    def capabilities_for(cls, catalog: ProviderCatalog) -> Capabilities:
        return Capabilities.from_catalog(
            catalog, options=OPTIONS, notes=NOTES, reference_types=("asset",), streaming=True,
            exclusive=(("image", "reference_images"), ("reference_images", "aspect_ratio")))

    # ------------------------------------------------------------------ the stream
    def open_stream(self, req: AcceptedRequest, read_timeout_s: float) -> GenaiproStream:
        """POST the job (this is the paid call) and return its event stream."""
        count = req.sample_count or 1
        if req.reference_images:
            url = f"{self._base}/api/v1/veo/ingredients-to-video"
            files = [("reference_images", self._file(ref.image, f"reference_{i}")) for i, ref in enumerate(req.reference_images)]
            kwargs: dict[str, Any] = {"files": files, "data": {"prompt": req.prompt, "number_of_videos": str(count)}}
        elif req.image is not None:
            url = f"{self._base}/api/v1/veo/frames-to-video"
            files = [("start_image", self._file(req.image, "start"))]
            if req.last_frame is not None:
                files.append(("end_image", self._file(req.last_frame, "end")))
            data = {"prompt": req.prompt, "aspect_ratio": ASPECTS[req.aspect_ratio or "16:9"], "number_of_videos": str(count)}
            kwargs = {"files": files, "data": data}
        else:
            url = f"{self._base}/api/v1/veo/text-to-video"
            kwargs = {"json": {"prompt": req.prompt, "aspect_ratio": ASPECTS[req.aspect_ratio or "16:9"], "number_of_videos": count}}
        resp = send(self._session, self.name, "POST", url, headers={**self._headers, "Accept": "text/event-stream"}, stream=True,
                    timeout=(DEFAULT_TIMEOUT[0], read_timeout_s), **kwargs)
        return GenaiproStream(resp)

    def stream_handle(self, req: AcceptedRequest, submitted_at: float) -> Handle:
        """The job POSTed at `submitted_at` (epoch seconds), as the histories can find it: by its
        prompt and time, with the number of videos asked for."""
        return {"submitted_at": submitted_at, "prompt": req.prompt, "count": req.sample_count or 1}

    def _file(self, image: AcceptedImage, stem: str) -> tuple[str, bytes, str]:
        if self._inputs is None or image.gcs_uri is None or image.mime_type is None:
            raise PermanentError(ErrorCode.INTERNAL, "the job's image was not stored at acceptance")
        extension = image.gcs_uri.rsplit(".", 1)[-1]
        return f"{stem}.{extension}", self._inputs.read(image.gcs_uri), image.mime_type

    # ------------------------------------------------------------------ the interface
    def submit(self, job_id: str, req: AcceptedRequest) -> Handle:
        raise PermanentError(ErrorCode.INTERNAL, "genaipro jobs are submitted by stream_job, which holds the answer's stream")

    def check(self, handle: Handle) -> Progress:
        """Where the generation a pinned handle names stands according to the histories (after its
        stream was lost). A handle that names none finds nothing: which generation is the job's
        is never guessed here (steps/recover.py pins it)."""
        wanted = set(handle.get("history_ids") or [])
        group = [row for _, row in self._rows(handle) if _entry_id(row) in wanted] if wanted else []
        if not group:
            if time.time() - float(handle["submitted_at"]) > LOST_AFTER_S:
                return Progress("failed", error=JobError(ErrorCode.PROVIDER_ERROR, "genaipro's histories hold no record of this job"))
            return Progress("running", stage="lost")
        if len(_urls(group)) > max(1, int(handle.get("count") or 1)):
            return Progress("failed", error=JobError(ErrorCode.PROVIDER_ERROR, "the generation found in genaipro's histories holds "
                                                     "more videos than this job asked for: it is more than one job's; not delivered"))
        return progress_of(group)

    def open_output(self, ref: OutputRef) -> Download:
        if not ref.url:
            raise PermanentError(ErrorCode.DOWNLOAD_INVALID, f"output {ref.index} has no file_url")
        return open_download(self._session, self.name, ref.url)  # file_urls need no key: none is sent

    # ------------------------------------------------------------------ histories
    def candidates(self, handle: Handle) -> list[Generation]:
        """Every generation with the handle's prompt created since it was sent (less the clock
        skew), newest first: entries created in the same second are one generation (one entry
        per video by default, or one per generation holding every file_url)."""
        by_time: dict[float, list[dict[str, Any]]] = {}
        for created, row in self._rows(handle):
            by_time.setdefault(created, []).append(row)
        count = max(1, int(handle.get("count") or 1))
        found = []
        for created, rows in sorted(by_time.items(), reverse=True):
            # More entries (or videos) than one generation of this job has: several generations
            # of the prompt were created in that second, and which entry is whose is unknown.
            alike = max(math.ceil(len(rows) / count), math.ceil(len(_urls(rows)) / count), 1)
            found.append(Generation(tuple(sorted({_entry_id(row) for row in rows})), created, alike))
        return found

    def pin(self, handle: Handle, generation: Generation) -> Handle:
        return {**handle, "history_ids": list(generation.ids)}

    def is_pinned(self, handle: Handle) -> bool:
        return bool(handle.get("history_ids"))

    def _rows(self, handle: Handle) -> list[tuple[float, dict[str, Any]]]:
        """(created, entry) of every history entry with the handle's prompt created since it was
        sent, less MATCH_SKEW_S; the pages are read newest first, until older entries."""
        since, prompt = float(handle["submitted_at"]), str(handle["prompt"])
        mine: list[tuple[float, dict[str, Any]]] = []
        for page in range(1, HISTORY_PAGES + 1):
            answer = request_json(self._session, self.name, "GET", f"{self._base}/api/v1/veo/histories",
                                  params={"page": page, "page_size": HISTORY_PAGE_SIZE}, headers=self._headers)
            rows = answer.get("data") if isinstance(answer, dict) else None
            if not isinstance(rows, list):
                raise TransientError(ErrorCode.PROVIDER_UNAVAILABLE, "genaipro's histories answer has no data list", str(answer)[:300])
            older = False
            for row in rows:
                created = _epoch(row.get("created_at")) if isinstance(row, dict) else None
                if created is None:
                    continue
                if created < since - MATCH_SKEW_S:
                    older = True  # newest first: everything after this is older still
                    continue
                if str(row.get("prompt") or "").strip() == prompt.strip():
                    mine.append((created, row))
            if older or page >= int(answer.get("total_pages") or 0):
                break
        return mine


def _urls(rows: list[dict[str, Any]]) -> list[str]:
    return [u for row in rows for u in (row.get("file_urls") or []) if isinstance(u, str) and u]


def _entry_id(row: dict[str, Any]) -> str:
    """An entry's id; one without (not seen, but not promised) gets a stable stand-in from what
    identifies it, so it can still be claimed."""
    value = row.get("id")
    if isinstance(value, (str, int)) and str(value):
        return str(value)
    basis = json.dumps([row.get("prompt"), row.get("created_at")], default=str)
    return "noid-" + hashlib.sha256(basis.encode()).hexdigest()[:24]


def progress_of(group: list[dict[str, Any]]) -> Progress:
    statuses = [str(row.get("status") or "") for row in group]
    if any("FAILED" in s or "ERROR" in s for s in statuses):
        error = JobError(ErrorCode.PROVIDER_ERROR, "genaipro reports the generation failed", False, {"statuses": statuses})
        return Progress("failed", error=error)
    if all(s == SUCCESSFUL for s in statuses):
        urls = _urls(group)
        if not urls:
            return Progress("failed", error=JobError(ErrorCode.PROVIDER_ERROR, "genaipro reports success without any video"))
        return Progress("succeeded", percent=100, outputs=tuple(OutputRef(i, url=u) for i, u in enumerate(urls)))
    active = any(s.endswith("_ACTIVE") for s in statuses)
    return Progress("running", percent=STAGES["processing"] if active else STAGES["starting"], stage="processing" if active else "pending")


def _epoch(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return parsed.timestamp()
