"""`Client`: veo-relay's public HTTP API (README "HTTP API") from Python, synchronously.

    from veorelay_client import Client
    with Client("https://api.example.com", "vr_...") as client:   # or VEORELAY_URL / VEORELAY_API_KEY
        job = client.submit("a hummingbird in slow motion", aspect_ratio="16:9", image="first.png")
        job = client.wait(job.id, on_progress=lambda j: print(j.status, j.progress.percent))
        client.download(job.id, "hummingbird.mp4")

Routes: POST /jobs, GET /jobs/{id}, GET /jobs (pages), GET /jobs/{id}/events (Server-Sent
Events), POST /jobs/{id}:cancel, GET /providers, and the video itself from
GET /v1/videos/{id}/content (streamed from the bucket; or an output's signed URL where the job
view carries one). Reads are retried on 502/503/504 and connection failures (Retry-After
honoured); a submission is retried only with its Idempotency-Key, which submit() always sends.
"""
from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, MutableSequence, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypedDict, Unpack

import httpx

from veorelay_client import sse
from veorelay_client.checksums import Expected, expected_of
from veorelay_client.errors import (
    ApiError,
    DownloadError,
    NetworkError,
    NotFound,
    VeorelayError,
    WaitTimeout,
)
from veorelay_client.images import Image, ImageLike, Reference, json_reference, to_image
from veorelay_client.models import Job, JobEvent, Output, Page
from veorelay_client.webhooks import verify_webhook as _verify_webhook

__version__ = "0.1.0"
RETRY_STATUSES = frozenset({502, 503, 504})
MAX_PREFER_WAIT_S = 60  # the API honours Prefer: wait=N for N in 1..60
STREAM_READ_TIMEOUT_S = 45.0  # the event stream sends a keep-alive every 15 s
CHUNK_BYTES = 256 * 1024

ProgressCallback = Callable[[Job], None]
BytesCallback = Callable[[int, int | None], None]  # (bytes so far, total or None)


class NotAStream(NetworkError):
    """GET /jobs/{id}/events answered, but not with an event stream (a server without it)."""


class SubmitOptions(TypedDict, total=False):
    """Every field of POST /jobs (README "HTTP API") but the prompt, and how to send it."""

    provider: str
    model: str
    negative_prompt: str
    aspect_ratio: str  # "16:9" | "9:16"
    duration_seconds: int
    resolution: str  # "720p" | "1080p" | "4k"
    sample_count: int
    seed: int
    person_generation: str  # "allow_all" | "allow_adult" | "dont_allow"
    generate_audio: bool
    image: ImageLike  # the first frame
    last_frame: ImageLike
    reference_images: Sequence[ImageLike | Reference]
    webhook_url: str
    webhook_events: Sequence[str]
    metadata: Mapping[str, Any]
    deadline_seconds: int
    extend: str  # the id of a finished job whose video this one continues
    idempotency_key: str  # default: a new random key, so a retried submission is the same job
    wait: int  # Prefer: wait=N (1..60): answer once the job has ended, or after N s
    inline_images: bool  # image bytes as base64 in a JSON body instead of multipart/form-data parts
    extra: Mapping[str, Any]  # request fields this client does not know yet, sent as given


_REQUEST_FIELDS = ("provider", "model", "negative_prompt", "aspect_ratio", "duration_seconds", "resolution",
                   "sample_count", "seed", "person_generation", "generate_audio", "webhook_url", "deadline_seconds")


@dataclass(frozen=True)
class Providers:
    """GET /providers: each provider's capabilities (models, options, aspect ratios, durations,
    resolutions, max samples and reference images, ...) and the default provider."""

    default: str | None
    providers: dict[str, dict[str, Any]]


class Client:
    """A caller of one veo-relay deployment with one API key."""

    def __init__(self, url: str | None = None, api_key: str | None = None, *, timeout: float = 30.0,
                 max_retries: int = 2, transport: httpx.BaseTransport | None = None) -> None:
        """`url` (default $VEORELAY_URL): the public `api` function's URL; `api_key` (default
        $VEORELAY_API_KEY). `transport`: an httpx transport (tests: httpx.MockTransport)."""
        url = url or os.environ.get("VEORELAY_URL")
        api_key = api_key or os.environ.get("VEORELAY_API_KEY")
        if not url:
            raise ValueError("no API URL: pass url or set VEORELAY_URL")
        if not api_key:
            raise ValueError("no API key: pass api_key or set VEORELAY_API_KEY")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.max_retries = max_retries
        agent = f"veorelay-python/{__version__}"
        self._http = httpx.Client(base_url=self.url, timeout=timeout, transport=transport,
                                  headers={"Authorization": f"Bearer {api_key}", "User-Agent": agent})
        # Signed URLs point at the bucket: never send the API key there.
        self._bare = httpx.Client(timeout=timeout, transport=transport, headers={"User-Agent": agent}, follow_redirects=True)

    def close(self) -> None:
        self._http.close()
        self._bare.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------ jobs
    def submit(self, prompt: str, **options: Unpack[SubmitOptions]) -> Job:
        """POST /jobs. Images (image, last_frame, reference_images) may be file paths, bytes,
        "gs://..." or "https://..." strings, or Image/Reference objects; bytes and files go as
        multipart/form-data parts (or base64, with inline_images=True)."""
        unknown = sorted(set(options) - set(SubmitOptions.__annotations__))
        if unknown:
            raise TypeError(f"unknown option(s): {', '.join(unknown)}")
        body, files = build_request(prompt, options)
        headers = {"Idempotency-Key": options.get("idempotency_key") or uuid.uuid4().hex}
        wait = options.get("wait")
        timeout = self._prefer(headers, wait)
        if files:
            parts: list[tuple[str, tuple[str | None, bytes, str]]] = [
                ("request", ("request.json", json.dumps(body).encode(), "application/json"))]
            parts += [(name, (img.filename or name, img.data or b"", img.mime_type or "application/octet-stream")) for name, img in files]
            response = self._request("POST", "/jobs", files=parts, headers=headers, timeout=timeout)
        else:
            response = self._request("POST", "/jobs", json=body, headers=headers, timeout=timeout)
        return Job.from_dict(response.json())

    def extend(self, job_id: str, prompt: str, **options: Unpack[SubmitOptions]) -> Job:
        """A new job that continues the video of finished job `job_id` (Veo extension)."""
        merged: SubmitOptions = {**options, "extend": job_id}
        return self.submit(prompt, **merged)

    def get(self, job_id: str, *, wait: int | None = None) -> Job:
        """GET /jobs/{id}; with `wait` (Prefer: wait=N, 1..60) the answer comes when the job has
        ended or after N seconds."""
        headers: dict[str, str] = {}
        timeout = self._prefer(headers, wait)
        return Job.from_dict(self._request("GET", f"/jobs/{_id(job_id)}", headers=headers, timeout=timeout).json())

    def cancel(self, job_id: str) -> Job:
        """POST /jobs/{id}:cancel: the cancelled job; Conflict (409) if it ended otherwise."""
        return Job.from_dict(self._request("POST", f"/jobs/{_id(job_id)}:cancel").json())

    def list_page(self, *, status: str | None = None, provider: str | None = None,
                  created_after: datetime | str | None = None, created_before: datetime | str | None = None,
                  limit: int = 20, cursor: str | None = None) -> Page:
        """One page of GET /jobs (newest first): this key's jobs, filtered."""
        params: dict[str, str | int] = {"limit": limit}
        for name, value in (("status", status), ("provider", provider), ("created_after", _time(created_after)),
                            ("created_before", _time(created_before)), ("cursor", cursor)):
            if value is not None:
                params[name] = value
        data = self._request("GET", "/jobs", params=params).json()
        jobs = tuple(Job.from_dict(j) for j in data.get("jobs") or [])
        return Page(jobs=jobs, next_cursor=data.get("next_cursor"))

    def list(self, *, status: str | None = None, provider: str | None = None,
             created_after: datetime | str | None = None, created_before: datetime | str | None = None,
             page_size: int = 20, limit: int | None = None) -> Iterator[Job]:
        """Every job matching the filters, newest first, page after page (at most `limit`)."""
        cursor: str | None = None
        given = 0
        while True:
            size = page_size if limit is None else max(1, min(page_size, limit - given))
            page = self.list_page(status=status, provider=provider, created_after=created_after,
                                  created_before=created_before, limit=size, cursor=cursor)
            for job in page.jobs:
                if limit is not None and given >= limit:
                    return
                given += 1
                yield job
            if not page.next_cursor or (limit is not None and given >= limit):
                return
            cursor = page.next_cursor

    def providers(self) -> Providers:
        """GET /providers: the capability table."""
        data = self._request("GET", "/providers").json()
        return Providers(default=data.get("default"), providers=dict(data.get("providers") or {}))

    # ------------------------------------------------------------------------------ events and waiting
    def events(self, job_id: str, *, last_event_id: str | None = None, reconnects: int = 3,
               deadline: float | None = None) -> Iterator[JobEvent]:
        """GET /jobs/{id}/events: the job now, then every change, until it ends. The server
        renews a long stream (it ends it cleanly; this reconnects with Last-Event-ID at once); one
        that breaks is resumed the same way up to `reconnects` times in a row, then NetworkError.
        After the last event it ends (a 204 to a reconnect means the client has the end already).
        `deadline` (time.monotonic()): WaitTimeout once past it."""
        failures = 0
        while True:
            opened, got, told_end = time.monotonic(), False, [False]
            try:
                for event in self._event_stream(job_id, last_event_id, deadline, told_end):
                    failures, got = 0, True
                    last_event_id = event.id or last_event_id
                    yield event
                    if event.terminal:
                        return
                    _check_deadline(job_id, deadline, event.job)
                if told_end[0]:
                    return
                # Ended cleanly: the server renews a stream it has held long; one that ends at once is not that.
                problem = None if got or time.monotonic() - opened >= 2.0 else "the event stream ended before the job did"
            except NotAStream:
                raise  # not a stream that broke: there is none here
            except NetworkError as exc:
                problem = str(exc)
            except ApiError as exc:
                if exc.status not in RETRY_STATUSES:
                    raise
                problem = str(exc)
            _check_deadline(job_id, deadline, None)
            if problem is None:
                continue
            failures += 1
            if failures > reconnects:
                raise NetworkError(f"{problem} ({reconnects} reconnects tried)")
            time.sleep(min(0.5 * 2 ** (failures - 1), 5.0))

    def wait(self, job_id: str, *, timeout: float | None = None, on_progress: ProgressCallback | None = None,
             poll_wait: int = 5) -> Job:
        """The job once it has ended (succeeded, failed or cancelled: check job.status), following
        its event stream; `on_progress(job)` at every change. If the stream is not served or keeps
        breaking, GET /jobs/{id} with Prefer: wait=`poll_wait` takes over. WaitTimeout after
        `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        last: list[Job] = []

        def seen(job: Job) -> None:
            if on_progress is not None and (not last or _changed(last[-1], job)):
                on_progress(job)
            last[:] = [job]

        try:
            for event in self.events(job_id, deadline=deadline):
                seen(event.job)
                if event.terminal:
                    return event.job
        except WaitTimeout as exc:
            raise WaitTimeout(str(exc), last[-1] if last else None) from None
        except NotFound as exc:
            if exc.field == "id":  # the job itself does not exist
                raise
        except (NetworkError, ApiError):
            pass  # no event stream here (404/405), or it keeps breaking: poll instead
        return self._poll(job_id, deadline, seen, poll_wait, last[-1] if last else None)

    def _poll(self, job_id: str, deadline: float | None, seen: ProgressCallback, poll_wait: int, job: Job | None) -> Job:
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise WaitTimeout(f"job {job_id} has not ended in time", job)
            hold = max(1, min(poll_wait, MAX_PREFER_WAIT_S, int(remaining) if remaining is not None else poll_wait))
            started = time.monotonic()
            job = self.get(job_id, wait=hold)
            seen(job)
            if job.terminal:
                return job
            # A server that does not hold the answer (no Prefer: wait support) is polled each second.
            if time.monotonic() - started < 1.0:
                time.sleep(1.0)

    def _event_stream(self, job_id: str, last_event_id: str | None, deadline: float | None,
                      told_end: MutableSequence[bool]) -> Iterator[JobEvent]:
        """One connection's events; told_end[0] = True when the server says there is nothing more (204)."""
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        read = STREAM_READ_TIMEOUT_S
        if deadline is not None:
            read = max(0.5, min(read, deadline - time.monotonic() + 0.5))
        with self._stream("GET", f"/jobs/{_id(job_id)}/events", headers=headers,
                          timeout=httpx.Timeout(self.timeout, read=read)) as response:
            if response.status_code == 204:
                told_end[0] = True
                return
            if not response.headers.get("content-type", "").startswith("text/event-stream"):
                raise NotAStream(f"GET /jobs/{job_id}/events did not answer with an event stream")
            try:
                for message in sse.parse(response.iter_lines()):
                    try:
                        data = json.loads(message.data)
                    except ValueError:
                        raise NetworkError(f"an event of job {job_id} is not JSON") from None
                    yield JobEvent(id=message.id, type=message.event, job=Job.from_dict(data))
            except httpx.TransportError as exc:
                raise NetworkError(f"the event stream broke off: {type(exc).__name__}") from exc

    # ------------------------------------------------------------------------------ the video
    def download(self, job_id: str, path: str | os.PathLike[str] | None = None, *, index: int = 0,
                 variant: Literal["video", "poster"] = "video", on_progress: BytesCallback | None = None) -> Path:
        """Stream output `index` of a succeeded job (or its poster image) to `path` (default
        `<job id>-<index>.mp4` / `.jpg`; a directory: that name inside it) and return the path.
        The video is checked against the size and a checksum the job recorded: its sha256 where
        the deployment records one, else its md5, else its crc32c (only with the `google-crc32c`
        package installed); a job that recorded none of them is checked by its size alone. A
        damaged copy is removed and DownloadError(damaged=True) raised."""
        job = self.get(job_id)
        if not job.succeeded:
            raise DownloadError(f"job {job_id} is {job.status}: it has no video")
        output = next((o for o in job.outputs if o.index == index), None)
        if output is None:
            raise DownloadError(f"job {job_id} has no output {index} (it has {len(job.outputs)})")
        if variant == "poster" and output.poster is None:
            raise DownloadError(f"output {index} of job {job_id} has no poster image")
        name = f"{job_id}-{index}.{'jpg' if variant == 'poster' else 'mp4'}"
        dest = Path(path) if path is not None else Path(name)
        if dest.is_dir():
            dest = dest / name
        expected_size = output.size if variant == "video" else (output.poster.size if output.poster else None)
        expected = expected_of(output) if variant == "video" else None
        with self._open_output(job_id, output, variant) as response:
            total = _int(response.headers.get("content-length")) or expected_size
            self._save(response, dest, total, expected_size, expected, on_progress)
        return dest

    @contextmanager
    def _open_output(self, job_id: str, output: Output, variant: str) -> Iterator[httpx.Response]:
        if variant == "video" and output.signed_url:
            signed: httpx.Response | None = None
            try:
                signed = self._bare.send(self._bare.build_request("GET", output.signed_url), stream=True)
            except httpx.TransportError:
                pass  # unreachable: the API streams it instead
            if signed is not None:
                try:
                    if signed.is_success:
                        yield signed
                        return
                finally:  # expired (403) or refused: the API streams it instead
                    signed.close()
        params: dict[str, str | int] = {"variant": "thumbnail" if variant == "poster" else "video"}
        if output.index:
            params["index"] = output.index
        with self._stream("GET", f"/v1/videos/{_id(job_id)}/content", params=params) as response:
            yield response

    @staticmethod
    def _save(response: httpx.Response, dest: Path, total: int | None, expected_size: int | None,
              expected: Expected | None, on_progress: BytesCallback | None) -> None:
        part = dest.with_name(dest.name + ".part")
        digest, done = expected.hasher() if expected is not None else None, 0
        try:
            with part.open("wb") as file:
                if on_progress is not None:
                    on_progress(0, total)
                for chunk in response.iter_bytes(CHUNK_BYTES):
                    file.write(chunk)
                    if digest is not None:
                        digest.update(chunk)
                    done += len(chunk)
                    if on_progress is not None:
                        on_progress(done, total)
            if expected_size is not None and done != expected_size:
                raise DownloadError(f"the download has {done} bytes, the job recorded {expected_size}", damaged=True)
            if expected is not None and digest is not None and not expected.matches(digest):
                raise DownloadError(f"the download's {expected.name} differs from the one the job recorded", damaged=True)
            part.replace(dest)
        except httpx.TransportError as exc:
            part.unlink(missing_ok=True)
            raise NetworkError(f"the download broke off after {done} bytes: {type(exc).__name__}") from exc
        except BaseException:
            part.unlink(missing_ok=True)
            raise

    # ------------------------------------------------------------------------------ webhooks
    @staticmethod
    def verify_webhook(body: bytes | str, headers: Mapping[str, str], secret: str | Sequence[str]) -> dict[str, Any]:
        """The event of a webhook veo-relay sent, if its Standard Webhooks signature verifies
        with `secret` (whsec_...); else WebhookVerificationError."""
        return _verify_webhook(body, headers, secret)

    # ------------------------------------------------------------------------------ HTTP
    @staticmethod
    def _prefer(headers: dict[str, str], wait: int | None) -> float | None:
        if wait is None:
            return None
        if not 1 <= wait <= MAX_PREFER_WAIT_S:
            raise ValueError(f"wait must be 1..{MAX_PREFER_WAIT_S} seconds")
        headers["Prefer"] = f"wait={wait}"
        return float(wait)

    def _request(self, method: str, path: str, *, timeout: float | None = None, **kwargs: Any) -> httpx.Response:
        """One call, retried on 502/503/504 and connection failures (every call this client makes
        is safe to repeat: reads, cancels, and submissions with their Idempotency-Key). An
        error answer raises its typed ApiError. `timeout`: seconds the server may hold the answer."""
        limit = httpx.Timeout(self.timeout, read=self.timeout + (timeout or 0))
        for attempt in range(self.max_retries + 1):
            try:
                response = self._http.request(method, path, timeout=limit, **kwargs)
            except httpx.TransportError as exc:
                if attempt < self.max_retries and not isinstance(exc, httpx.ReadTimeout):
                    time.sleep(_backoff(attempt, None))
                    continue
                raise NetworkError(f"{method} {self.url}{path}: {_describe(exc)}") from exc
            if response.is_success:
                return response
            error = ApiError.from_response(response)
            if response.status_code in RETRY_STATUSES and attempt < self.max_retries:
                time.sleep(_backoff(attempt, error.retry_after))
                continue
            raise error
        raise AssertionError("unreachable")  # pragma: no cover

    @contextmanager
    def _stream(self, method: str, path: str, **kwargs: Any) -> Iterator[httpx.Response]:
        try:
            with self._http.stream(method, path, **kwargs) as response:
                if not response.is_success:
                    response.read()
                    raise ApiError.from_response(response)
                yield response
        except httpx.TransportError as exc:
            raise NetworkError(f"{method} {self.url}{path}: {_describe(exc)}") from exc


def build_request(prompt: str, options: SubmitOptions) -> tuple[dict[str, Any], list[tuple[str, Image]]]:
    """The JSON of POST /jobs and the image parts to upload with it (none: send JSON)."""
    body: dict[str, Any] = {"prompt": prompt}
    given: Mapping[str, object] = options
    body.update({name: given[name] for name in _REQUEST_FIELDS if given.get(name) is not None})
    if options.get("webhook_events") is not None:
        body["webhook_events"] = list(options.get("webhook_events") or [])
    if options.get("metadata") is not None:
        body["metadata"] = dict(options.get("metadata") or {})
    if options.get("extend"):
        body["extend"] = {"job_id": options.get("extend")}
    inline = bool(options.get("inline_images"))
    files: list[tuple[str, Image]] = []

    def field(value: ImageLike, part: str) -> dict[str, str]:
        image = to_image(value)
        if image.data is not None and not inline:
            files.append((part, image))
        return json_reference(image, part, inline)

    for name, value in (("image", options.get("image")), ("last_frame", options.get("last_frame"))):
        if value is not None:
            body[name] = field(value, name)
    references = options.get("reference_images")
    if references:
        body["reference_images"] = [
            {"image": field(ref.image, f"reference_{i}"), "type": ref.type} if isinstance(ref, Reference)
            else {"image": field(ref, f"reference_{i}"), "type": "asset"}
            for i, ref in enumerate(references)
        ]
    body.update(options.get("extra") or {})
    return body, files


def _check_deadline(job_id: str, deadline: float | None, job: Job | None) -> None:
    if deadline is not None and time.monotonic() >= deadline:
        raise WaitTimeout(f"job {job_id} has not ended in time", job)


def _changed(before: Job, after: Job) -> bool:
    return (before.status, before.progress, before.updated_at, len(before.outputs)) != (
        after.status, after.progress, after.updated_at, len(after.outputs))


def _id(job_id: str) -> str:
    if not job_id or any(c in job_id for c in "/?#:% \t\r\n"):
        raise VeorelayError(f"not a job id: {job_id!r}")
    return job_id


def _time(value: datetime | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _backoff(attempt: int, retry_after: float | None) -> float:
    return min(retry_after if retry_after is not None else 0.5 * 2 ** attempt, 10.0)


def _describe(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer in time ({type(exc).__name__})"
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect ({exc})"
    return f"{type(exc).__name__}: {exc}"
