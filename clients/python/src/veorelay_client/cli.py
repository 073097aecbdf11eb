"""The `veorelay` command: veo-relay from a terminal or a script, built on veorelay_client.Client.

stdout carries the result (a job id, a table, a path; with --json the API's JSON), stderr the
progress bars and messages, and every failure is one line `veorelay: error: <code>: <message>`
with a documented exit code (EXIT_CODES)."""
from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn, cast

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from veorelay_client.client import Client, SubmitOptions
from veorelay_client.errors import (
    ApiError,
    DownloadError,
    NetworkError,
    VeorelayError,
    WaitTimeout,
    WebhookVerificationError,
)
from veorelay_client.images import Reference
from veorelay_client.models import Job, Media, Output
from veorelay_client.webhooks import verify_webhook

EXIT_OK, EXIT_JOB, EXIT_USAGE, EXIT_API, EXIT_NETWORK, EXIT_WEBHOOK, EXIT_TIMEOUT = 0, 1, 2, 3, 4, 5, 6
EXIT_CODES = {
    EXIT_OK: "success (the job succeeded, where the command waits for it)",
    EXIT_JOB: "the job failed or was cancelled (or has no video to download)",
    EXIT_USAGE: "usage: a bad option or argument, no URL or API key",
    EXIT_API: "the API refused the request (the error line carries its code: not_found, invalid_request, ...)",
    EXIT_NETWORK: "the API could not be reached, did not answer in time, or a download arrived damaged",
    EXIT_WEBHOOK: "verify-webhook: the signature does not verify",
    EXIT_TIMEOUT: "--timeout passed before the job ended (it goes on; `veorelay watch` it)",
}
EPILOG = ("Environment: VEORELAY_URL (the API's URL), VEORELAY_API_KEY (your key), VEORELAY_WEBHOOK_SECRET.\n\n"
          "Exit codes: " + "; ".join(f"{code} {text}" for code, text in EXIT_CODES.items()) + ".")

app = typer.Typer(
    name="veorelay",
    help="veo-relay from the command line: submit Veo video jobs, watch them, download the videos.",
    epilog=EPILOG,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
out = Console(highlight=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)  # soft wrap: an error stays one line, however long

# ----------------------------------------------------------------------------------- common options
UrlOpt = Annotated[str | None, typer.Option("--url", envvar="VEORELAY_URL", show_envvar=True, help="the API's URL")]
KeyOpt = Annotated[str | None, typer.Option("--api-key", envvar="VEORELAY_API_KEY", show_envvar=True, show_default=False,
                                            help="your API key")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print the API's JSON (for scripts)")]
WaitFlag = Annotated[bool, typer.Option("--wait", help="wait for the job to end, with a progress bar; exit 1 if it fails")]
TimeoutOpt = Annotated[float | None, typer.Option("--timeout", min=1, help="with --wait: give up after this many seconds (exit 6)")]
JobIdArg = Annotated[str, typer.Argument(help="the job id", show_default=False)]


def fail(code: int, message: str) -> NoReturn:
    """One line on stderr and the exit code."""
    err.print(f"veorelay: error: {escape(message)}", soft_wrap=True)
    raise typer.Exit(code)


def client_for(url: str | None, api_key: str | None) -> Client:
    if not url:
        fail(EXIT_USAGE, "usage: no API URL: set VEORELAY_URL or pass --url")
    if not api_key:
        fail(EXIT_USAGE, "usage: no API key: set VEORELAY_API_KEY or pass --api-key")
    return Client(url, api_key)


@contextmanager
def api_errors(as_json: bool) -> Iterator[None]:
    """Every failure of the client as one line (and, with --json, the error object on stdout)."""
    try:
        yield
    except ApiError as exc:
        _json_error(as_json, {"code": exc.code, "message": exc.message, "field": exc.field, "status": exc.status})
        fail(EXIT_API, f"{exc.code}: {exc.message}" + (f" (field: {exc.field})" if exc.field else "") + f" [HTTP {exc.status}]")
    except WaitTimeout as exc:
        _json_error(as_json, {"code": "timeout", "message": str(exc)})
        fail(EXIT_TIMEOUT, f"timeout: {exc}")
    except DownloadError as exc:
        _json_error(as_json, {"code": "download", "message": str(exc)})
        fail(EXIT_NETWORK if exc.damaged else EXIT_JOB, f"download: {exc}")
    except NetworkError as exc:
        _json_error(as_json, {"code": "network", "message": str(exc)})
        fail(EXIT_NETWORK, f"network: {exc}")
    except WebhookVerificationError as exc:
        _json_error(as_json, {"code": "webhook_invalid", "message": str(exc)})
        fail(EXIT_WEBHOOK, f"webhook_invalid: {exc}")
    except VeorelayError as exc:
        fail(EXIT_USAGE, f"usage: {exc}")
    except OSError as exc:  # a file to read or write
        fail(EXIT_USAGE, f"usage: {exc.strerror or exc}: {exc.filename}" if exc.filename else f"usage: {exc}")


def _json_error(as_json: bool, error: dict[str, Any]) -> None:
    if as_json:
        print_json({"error": error})


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


# ----------------------------------------------------------------------------------- progress
class JobDisplay:
    """A job's progress on stderr: a live bar in a terminal; elsewhere a line at each change."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self.live = err.is_terminal
        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(bar_width=32),
                                 TaskProgressColumn(), TimeElapsedColumn(), console=err, transient=False)
        self.task = self.progress.add_task(f"{job_id[:12]} …", total=100)
        self.last: tuple[str, str, int | None] | None = None

    def __enter__(self) -> JobDisplay:
        if self.live:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live:
            self.progress.stop()

    def update(self, job: Job) -> None:
        percent = 100 if job.succeeded else job.progress.percent
        stage = job.progress.stage
        state = (job.status, stage, percent)
        if state == self.last:
            return
        self.last = state
        label = job.status + (f" · {stage}" if stage and stage != job.status else "")
        if self.live:
            # No number from the provider: an indeterminate (pulsing) bar.
            self.progress.update(self.task, description=f"{job.id[:12]} {escape(label)}",
                                 total=None if percent is None else 100, completed=percent or 0)
        else:
            err.print(f"{job.id} {label}" + (f" {percent}%" if percent is not None else ""))


def wait_for(client: Client, job: Job, timeout: float | None, each: Callable[[Job], None] | None = None) -> Job:
    """Follow the job to its end (its event stream; polling if that breaks) with its progress on
    stderr; `each(job)` at every change."""
    if job.terminal:
        return job
    with JobDisplay(job.id) as display:

        def seen(current: Job) -> None:
            display.update(current)
            if each is not None:
                each(current)

        seen(job)
        return client.wait(job.id, timeout=timeout, on_progress=seen)


def print_json_line(job: Job) -> None:
    sys.stdout.write(json.dumps(job.raw, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def report(job: Job) -> None:
    """The job's end, on stderr."""
    if job.succeeded:
        videos = ", ".join(f"#{o.index} {_size(o.size)}" for o in job.outputs)
        err.print(f"job {job.id} succeeded: {len(job.outputs)} video(s) {videos}; veorelay download {job.id}")
    elif job.error is not None:
        err.print(f"veorelay: job {job.id} {job.status}: {escape(job.error.code)}: {escape(job.error.message)}")
    else:
        err.print(f"veorelay: job {job.id} {job.status}")


def exit_for(job: Job) -> None:
    """Exit 1 unless the job succeeded."""
    if not job.succeeded:
        raise typer.Exit(EXIT_JOB)


# ----------------------------------------------------------------------------------- submit, extend
def parse_metadata(pairs: Sequence[str], as_json: str | None) -> dict[str, Any] | None:
    """--metadata KEY=VALUE (VALUE as JSON when it parses: 7, true, "x"; else the text) and --metadata-json."""
    metadata: dict[str, Any] = {}
    if as_json:
        try:
            loaded = json.loads(as_json)
        except ValueError:
            fail(EXIT_USAGE, "usage: --metadata-json is not JSON")
        if not isinstance(loaded, dict):
            fail(EXIT_USAGE, "usage: --metadata-json must be a JSON object")
        metadata.update(loaded)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            fail(EXIT_USAGE, f"usage: --metadata {pair!r}: give KEY=VALUE")
        try:
            metadata[key] = json.loads(value)
        except ValueError:
            metadata[key] = value
    return metadata or None


def image_source(value: str, option: str) -> str:
    """A gs:// or https:// source as it is; a file must exist."""
    if value.startswith("gs://") or value.lower().startswith(("https://", "http://")) or Path(value).is_file():
        return value
    fail(EXIT_USAGE, f"usage: {option} {value}: no such file")


def _options(values: dict[str, Any]) -> SubmitOptions:
    """SubmitOptions from the command's parameters that were given (False is given: --no-audio)."""
    return cast(SubmitOptions, {k: v for k, v in values.items() if v is not None and v != []})


def _submit_and_report(client: Client, prompt: str, options: SubmitOptions, wait: bool, timeout: float | None,
                       as_json: bool, verb: str = "submitted") -> None:
    job = client.submit(prompt, **options)
    if not as_json:
        err.print(f"job {job.id} {verb} ({job.status}, provider {job.provider}, model {job.model})")
    if wait:
        job = wait_for(client, job, timeout)
        report(job)
    if as_json:
        print_json(job.raw)
    else:
        out.print(job.id)
    if wait:
        exit_for(job)


@app.command()
def submit(  # noqa: PLR0913 (one parameter per request option)
    prompt: Annotated[str, typer.Argument(help="what the video shows (1-4000 characters)", show_default=False)],
    image: Annotated[str | None, typer.Option("--image", "-i", help="first frame: a PNG/JPEG/WebP file, gs:// or https:// URL")] = None,
    last_frame: Annotated[str | None, typer.Option("--last-frame", help="last frame (needs --image)")] = None,
    reference: Annotated[list[str] | None, typer.Option("--reference", "-r", help="a reference image (asset), repeatable")] = None,
    style_reference: Annotated[list[str] | None, typer.Option("--style-reference", help="a style reference image, repeatable")] = None,
    provider: Annotated[str | None, typer.Option("--provider", "-p", help="a provider of `veorelay providers`")] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="one of the provider's models")] = None,
    negative_prompt: Annotated[str | None, typer.Option("--negative-prompt", help="what the video must not show")] = None,
    aspect_ratio: Annotated[str | None, typer.Option("--aspect-ratio", "-a", help="16:9 or 9:16")] = None,
    duration: Annotated[int | None, typer.Option("--duration", "-d", help="seconds (Veo: 4, 6, 8)")] = None,
    resolution: Annotated[str | None, typer.Option("--resolution", help="720p, 1080p or 4k")] = None,
    samples: Annotated[int | None, typer.Option("--samples", "-n", help="videos to make, 1-4")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="0 .. 2^32-1")] = None,
    person_generation: Annotated[str | None, typer.Option("--person-generation", help="allow_all, allow_adult or dont_allow")] = None,
    audio: Annotated[bool | None, typer.Option("--audio/--no-audio", help="generate audio (where it can)", show_default=False)] = None,
    webhook_url: Annotated[str | None, typer.Option("--webhook-url", help="https URL that receives the job's events")] = None,
    webhook_event: Annotated[list[str] | None, typer.Option("--webhook-event", help="job.running, job.progress, ... repeatable")] = None,
    metadata: Annotated[list[str] | None, typer.Option("--metadata", help="KEY=VALUE, echoed back; repeatable")] = None,
    metadata_json: Annotated[str | None, typer.Option("--metadata-json", help="metadata as one JSON object")] = None,
    deadline: Annotated[int | None, typer.Option("--deadline", help="seconds until the job fails with deadline_exceeded")] = None,
    idempotency_key: Annotated[str | None, typer.Option("--idempotency-key", help="the same key and body give the same job")] = None,
    inline_images: Annotated[bool, typer.Option("--inline-images", help="send images as base64 JSON, not multipart")] = False,
    wait: WaitFlag = False,
    timeout: TimeoutOpt = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Submit a job; print its id (or, with --json, the job). With --wait, follow it to its end."""
    references: list[str | Reference] = [image_source(r, "--reference") for r in reference or []]
    references += [Reference(image_source(r, "--style-reference"), "style") for r in style_reference or []]
    options = _options({
        "image": image_source(image, "--image") if image else None,
        "last_frame": image_source(last_frame, "--last-frame") if last_frame else None,
        "reference_images": references, "provider": provider, "model": model, "negative_prompt": negative_prompt,
        "aspect_ratio": aspect_ratio, "duration_seconds": duration, "resolution": resolution, "sample_count": samples,
        "seed": seed, "person_generation": person_generation, "generate_audio": audio, "webhook_url": webhook_url,
        "webhook_events": webhook_event, "metadata": parse_metadata(metadata or [], metadata_json),
        "deadline_seconds": deadline, "idempotency_key": idempotency_key, "inline_images": inline_images or None,
    })
    with api_errors(as_json), client_for(url, api_key) as client:
        _submit_and_report(client, prompt, options, wait, timeout, as_json)


@app.command()
def extend(  # noqa: PLR0913 (one parameter per request option)
    job_id: Annotated[str, typer.Argument(help="the finished job whose video to continue", show_default=False)],
    prompt: Annotated[str, typer.Argument(help="what happens next", show_default=False)],
    provider: Annotated[str | None, typer.Option("--provider", "-p", help="default: the job's provider")] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="one of the provider's models")] = None,
    negative_prompt: Annotated[str | None, typer.Option("--negative-prompt")] = None,
    duration: Annotated[int | None, typer.Option("--duration", "-d", help="seconds to add, where the model lets you choose")] = None,
    resolution: Annotated[str | None, typer.Option("--resolution")] = None,
    seed: Annotated[int | None, typer.Option("--seed")] = None,
    webhook_url: Annotated[str | None, typer.Option("--webhook-url")] = None,
    metadata: Annotated[list[str] | None, typer.Option("--metadata", help="KEY=VALUE, repeatable")] = None,
    idempotency_key: Annotated[str | None, typer.Option("--idempotency-key")] = None,
    wait: WaitFlag = False,
    timeout: TimeoutOpt = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Extend the video of a finished job (Veo extension): a new job; print its id."""
    options = _options({
        "provider": provider, "model": model, "negative_prompt": negative_prompt, "duration_seconds": duration,
        "resolution": resolution, "seed": seed, "webhook_url": webhook_url,
        "metadata": parse_metadata(metadata or [], None), "idempotency_key": idempotency_key, "extend": job_id,
    })
    with api_errors(as_json), client_for(url, api_key) as client:
        _submit_and_report(client, prompt, options, wait, timeout, as_json, verb=f"extends {job_id}")


# ----------------------------------------------------------------------------------- one job
@app.command()
def watch(job_id: JobIdArg, timeout: TimeoutOpt = None, url: UrlOpt = None, api_key: KeyOpt = None,
          as_json: JsonOpt = False) -> None:
    """Follow a job to its end with a live progress bar (its event stream); print its final status;
    exit 1 unless it succeeds. With --json: the job as one JSON line at each change."""
    with api_errors(as_json), client_for(url, api_key) as client:
        job = client.get(job_id)
        if as_json:
            print_json_line(job)
        job = wait_for(client, job, timeout, print_json_line if as_json else None)
        report(job)
        if not as_json:
            out.print(job.status)
        exit_for(job)


@app.command()
def get(job_id: JobIdArg,
        wait: Annotated[int | None, typer.Option("--wait", min=1, max=60, help="hold the answer until the job ends, at most N s")] = None,
        url: UrlOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """Show a job: status, progress, outputs, error."""
    with api_errors(as_json), client_for(url, api_key) as client:
        job = client.get(job_id, wait=wait)
    if as_json:
        print_json(job.raw)
        return
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    percent = job.progress.percent
    rows = [("id", job.id), ("status", job.status),
            ("progress", f"{percent if percent is not None else '?'}% {job.progress.stage}"),
            ("provider", job.provider or ""), ("model", job.model or ""),
            ("prompt", str(job.request.get("prompt", ""))), ("created", str(job.raw.get("created_at") or ""))]
    for o in job.outputs:
        rows.append((f"video #{o.index}", f"{o.uri} ({_checksums(o)})"))
        if o.media is not None:
            rows.append(("", _media(o.media)))
        if o.poster is not None:
            rows.append((f"poster #{o.index}", o.poster.uri))
    if job.extends:
        rows.append(("extends", f"{job.extends.get('job_id')} (video #{job.extends.get('output', 0)})"))
    if job.cost and isinstance(job.cost.get("estimated_usd"), (int, float)):
        rows.append(("cost", f"{job.cost['estimated_usd']:.2f} {job.cost.get('currency', 'USD')}"
                             + (" (billed)" if job.cost.get("billed") else " (estimate)")))
    if job.error is not None:
        rows.append(("error", f"{job.error.code}: {job.error.message}"))
    rows += [("warning", f"{w.get('code')}: {w.get('message')}") for w in job.warnings]
    for name, value in rows:
        grid.add_row(name, escape(value))
    out.print(grid)


def _checksums(output: Output) -> str:
    """Size and the checksums the job recorded: crc32c always (as Cloud Storage reports it, what
    `gcloud storage hash` prints), a sha256 only where the deployment records one."""
    parts = [_size(output.size)]
    if output.crc32c:
        parts.append(f"crc32c {output.crc32c}")
    if output.sha256:
        parts.append(f"sha256 {output.sha256[:16]}…")
    return ", ".join(parts)


@app.command()
def cancel(job_id: JobIdArg, url: UrlOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """Cancel a job that has not ended (409 conflict if it ended otherwise)."""
    with api_errors(as_json), client_for(url, api_key) as client:
        job = client.cancel(job_id)
    if as_json:
        print_json(job.raw)
    else:
        out.print(f"{job.id} {job.status}")


@app.command()
def download(
    job_id: JobIdArg,
    path: Annotated[Path | None, typer.Argument(help="file or folder (default ./<job id>-<index>.mp4)", show_default=False)] = None,
    index: Annotated[int, typer.Option("--index", min=0, help="which video of the job")] = 0,
    poster: Annotated[bool, typer.Option("--poster", help="the poster image (JPEG) instead of the video")] = False,
    url: UrlOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False,
) -> None:
    """Download a video of a succeeded job (checked against the checksum it recorded), with a progress bar; print the path."""
    with api_errors(as_json), client_for(url, api_key) as client, _transfer_bar(job_id) as on_progress:
        saved = client.download(job_id, path, index=index, variant="poster" if poster else "video", on_progress=on_progress)
    if as_json:
        print_json({"job_id": job_id, "index": index, "path": str(saved), "size": saved.stat().st_size})
    else:
        out.print(str(saved))


@contextmanager
def _transfer_bar(job_id: str) -> Iterator[Callable[[int, int | None], None] | None]:
    if not err.is_terminal:
        yield None
        return
    bar = Progress(TextColumn("{task.description}"), BarColumn(bar_width=32), DownloadColumn(), TransferSpeedColumn(),
                   console=err)
    task = bar.add_task(f"{job_id[:12]} download", total=None)

    def on_progress(done: int, total: int | None) -> None:
        bar.update(task, completed=done, total=total)

    with bar:
        yield on_progress


# ----------------------------------------------------------------------------------- listing, providers
@app.command(name="list")
def list_jobs(  # noqa: PLR0913 (one parameter per filter)
    status: Annotated[str | None, typer.Option("--status", "-s", help="accepted, running, succeeded, failed, cancelled, ...")] = None,
    provider: Annotated[str | None, typer.Option("--provider", "-p")] = None,
    since: Annotated[str | None, typer.Option("--since", help="created after this time (ISO 8601)")] = None,
    until: Annotated[str | None, typer.Option("--until", help="created before this time (ISO 8601)")] = None,
    limit: Annotated[int, typer.Option("--limit", "-l", min=1, help="at most this many jobs")] = 20,
    all_jobs: Annotated[bool, typer.Option("--all", help="every job (all pages)")] = False,
    url: UrlOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False,
) -> None:
    """List your jobs, newest first."""
    with api_errors(as_json), client_for(url, api_key) as client:
        jobs = list(client.list(status=status, provider=provider, created_after=since, created_before=until,
                                page_size=min(limit, 100), limit=None if all_jobs else limit))
    if as_json:
        print_json([job.raw for job in jobs])
        return
    columns: dict[str, list[str]] = {
        "id": [job.id for job in jobs],
        "status": [job.status for job in jobs],
        "done": [f"{job.progress.percent}%" if job.progress.percent is not None else "" for job in jobs],
        "created (UTC)": [job.created_at.strftime("%Y-%m-%d %H:%M") if job.created_at else "" for job in jobs],
        "provider": [job.provider or "" for job in jobs],
    }
    # Every column whole (an id is what the other commands take); in a narrow terminal the
    # provider, then the time, make way; the prompt gets what is left.
    def used() -> int:
        return sum(max([len(name), *map(len, cells)]) + 2 for name, cells in columns.items())

    for optional in ("provider", "created (UTC)"):
        if out.width - used() < 12:
            del columns[optional]
    room = max(8, out.width - used())
    table = Table(box=None, pad_edge=False)
    for name in columns:
        table.add_column(name, no_wrap=True, justify="right" if name == "done" else "left")
    table.add_column("prompt", no_wrap=True, overflow="ellipsis")
    for i, job in enumerate(jobs):
        prompt = str(job.request.get("prompt", "")).replace("\n", " ")
        table.add_row(*(cells[i] for cells in columns.values()), escape(prompt if len(prompt) <= room else prompt[: room - 1] + "…"))
    out.print(table)
    if not jobs:
        err.print("no jobs")


@app.command()
def providers(url: UrlOpt = None, api_key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """The capability table: each provider's models and what it can do."""
    with api_errors(as_json), client_for(url, api_key) as client:
        info = client.providers()
    if as_json:
        print_json({"providers": info.providers, "default": info.default})
        return
    for number, (name, caps) in enumerate(info.providers.items()):
        if number:
            out.print()
        out.print(f"[bold]{escape(name)}[/bold]" + (" (the default provider)" if name == info.default else ""))
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="dim", no_wrap=True)
        grid.add_column()
        default_model = str(caps.get("default_model") or "")
        models = [f"{default_model} (default)"] + [str(m) for m in caps.get("models") or [] if m != default_model]
        for label, value in (
            ("models", ", ".join(models)),
            ("options", ", ".join(caps.get("options") or [])),
            ("aspect ratios", ", ".join(caps.get("aspect_ratios") or [])),
            ("durations (s)", ", ".join(map(str, caps.get("durations") or []))),
            ("resolutions", ", ".join(map(str, caps.get("resolutions") or []))),
            ("videos a job", f"up to {caps.get('max_samples', '?')}"),
            ("reference images", f"up to {caps.get('max_reference_images', 0)}"),
        ):
            grid.add_row(label, escape(value))
        out.print(grid)


# ----------------------------------------------------------------------------------- webhooks
@app.command(name="verify-webhook")
def verify_webhook_command(
    request: Annotated[Path | None, typer.Option("--request", help="a received request: JSON {headers, body}")] = None,
    body: Annotated[Path | None, typer.Option("--body", help="the body as received (a file, or - for stdin)")] = None,
    header: Annotated[list[str] | None, typer.Option("--header", "-H", help="'webhook-id: ...', repeatable (with --body)")] = None,
    secret: Annotated[list[str] | None, typer.Option("--secret", envvar="VEORELAY_WEBHOOK_SECRET", show_envvar=True,
                                                     help="whsec_... (repeatable: during a rotation)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check a webhook's Standard Webhooks signature; print its event. Exit 5 if it does not verify."""
    if not secret:
        fail(EXIT_USAGE, "usage: no secret: pass --secret or set VEORELAY_WEBHOOK_SECRET")
    raw, headers = _webhook_input(request, body, header or [])
    with api_errors(as_json):
        event = verify_webhook(raw, headers, secret)
    if as_json:
        print_json(event)
        return
    data = event.get("data")
    data = data if isinstance(data, dict) else {}
    out.print(f"verified: {event.get('type')} job {data.get('id', '?')} {data.get('status', '')}".rstrip())


def _webhook_input(request: Path | None, body: Path | None, header: Sequence[str]) -> tuple[bytes, dict[str, str]]:
    if (request is None) == (body is None):
        fail(EXIT_USAGE, "usage: give either --request FILE or --body FILE with --header lines")
    if request is not None:
        try:
            recorded = json.loads(request.read_text())
        except (OSError, ValueError) as exc:
            fail(EXIT_USAGE, f"usage: --request {request}: {exc}")
        if not isinstance(recorded, dict) or not isinstance(recorded.get("headers"), dict) or not isinstance(recorded.get("body"), str):
            fail(EXIT_USAGE, f"usage: --request {request}: not a JSON object with headers and body")
        return recorded["body"].encode(), {str(k): str(v) for k, v in recorded["headers"].items()}
    if body is None:  # pragma: no cover (excluded above)
        fail(EXIT_USAGE, "usage: no --body")
    try:
        raw = sys.stdin.buffer.read() if str(body) == "-" else body.read_bytes()
    except OSError as exc:
        fail(EXIT_USAGE, f"usage: --body {body}: {exc.strerror}")
    headers: dict[str, str] = {}
    for line in header:
        name, sep, value = line.partition(":")
        if not sep:
            fail(EXIT_USAGE, f"usage: --header {line!r}: give 'name: value'")
        headers[name.strip()] = value.strip()
    return raw, headers


# ----------------------------------------------------------------------------------- helpers
def _media(media: Media) -> str:
    if media.has_audio and media.audio_codec:
        audio = f" + {media.audio_codec}"
    else:
        audio = ", no audio" if media.has_audio is False else ""
    return f"{media.duration_seconds} s, {media.width}x{media.height}, {media.video_codec}{audio}"


def _size(size: int | None) -> str:
    if size is None:
        return "? bytes"
    if size < 1024 * 1024:
        return f"{size} bytes"
    return f"{size / 1024 / 1024:.1f} MiB"


def main() -> None:
    """The console script."""
    # A pipe closed early (veorelay list | head) ends quietly.
    try:
        app(prog_name="veorelay")
    except BrokenPipeError:
        os._exit(0)


if __name__ == "__main__":
    main()
