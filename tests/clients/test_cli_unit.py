"""The `veorelay` command's flags and output over a fake transport (typer's CliRunner, an
httpx.MockTransport behind the Client): every submit flag lands in its request field, metadata
parsing, the list table in narrow and wide terminals, the exit code of each failure. The real
entry point against the local stack: tests/integration/test_cli.py."""
from __future__ import annotations

import base64
import json

import httpx
import pytest
import veorelay_client.cli as cli
from rich.console import Console
from typer.testing import CliRunner
from veorelay_client import Client

JOB_ID = "c" * 32
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24


def view(status="accepted", **extra):
    return {"id": JOB_ID, "status": status, "provider": "gemini", "model": "veo-3.1-generate-preview",
            "request": {"prompt": "a cat walking along a wall at dusk, seen from below"}, "progress": {"percent": 0, "stage": status},
            "outputs": [], "error": None, "created_at": "2026-12-01T23:02:51.841778Z", **extra}


@pytest.fixture
def api(monkeypatch):
    """Requests the command sent; answers from `api.answer(request)`."""

    class Api:
        sent: list[httpx.Request] = []

        def answer(self, request):
            return httpx.Response(202, json=view())

    fake = Api()
    fake.sent = []

    def handler(request):
        request.read()
        fake.sent.append(request)
        return fake.answer(request)

    monkeypatch.setattr(cli, "Client", lambda url, key: Client(url, key, transport=httpx.MockTransport(handler)))
    monkeypatch.setattr(cli, "out", Console(highlight=False, width=100))
    return fake


def run(*args):
    return CliRunner().invoke(cli.app, [*args, "--url", "https://relay.example", "--api-key", "k"], catch_exceptions=False)


def test_every_submit_flag_is_its_request_field(api, tmp_path):
    (tmp_path / "a.png").write_bytes(PNG)
    result = run("submit", "a cat", "--provider", "gemini", "--model", "veo-3.1-generate-preview", "--negative-prompt", "dogs",
                 "--aspect-ratio", "9:16", "--duration", "6", "--resolution", "1080p", "--samples", "2", "--seed", "42",
                 "--person-generation", "dont_allow", "--no-audio", "--webhook-url", "https://hooks.example/v",
                 "--webhook-event", "job.running", "--webhook-event", "job.succeeded", "--metadata", "order=7",
                 "--metadata", "tag=blue", "--metadata-json", '{"nested": {"a": [1]}}', "--deadline", "900",
                 "--idempotency-key", "k-1", "--image", str(tmp_path / "a.png"), "--reference", "gs://b/uploads/demo/r.png",
                 "--style-reference", "https://img.example/s.png", "--inline-images")
    assert result.exit_code == 0, result.output
    (request,) = api.sent
    assert request.headers["idempotency-key"] == "k-1"
    assert json.loads(request.content) == {
        "prompt": "a cat", "provider": "gemini", "model": "veo-3.1-generate-preview", "negative_prompt": "dogs",
        "aspect_ratio": "9:16", "duration_seconds": 6, "resolution": "1080p", "sample_count": 2, "seed": 42,
        "person_generation": "dont_allow", "generate_audio": False, "webhook_url": "https://hooks.example/v",
        "webhook_events": ["job.running", "job.succeeded"], "metadata": {"nested": {"a": [1]}, "order": 7, "tag": "blue"},
        "deadline_seconds": 900, "image": {"base64": base64.b64encode(PNG).decode(), "mime_type": "image/png"},
        "reference_images": [{"image": {"gcs_uri": "gs://b/uploads/demo/r.png"}, "type": "asset"},
                             {"image": {"url": "https://img.example/s.png"}, "type": "style"}],
    }
    assert result.stdout.strip() == JOB_ID


def test_a_bare_submit_sends_the_prompt_only(api):
    assert run("submit", "a cat").exit_code == 0
    assert json.loads(api.sent[0].content) == {"prompt": "a cat"}


@pytest.mark.parametrize("metadata", ["no-equals", "=value"])
def test_malformed_metadata_is_a_usage_error(api, metadata):
    result = run("submit", "a cat", "--metadata", metadata)
    assert result.exit_code == 2 and "give KEY=VALUE" in result.stderr
    assert api.sent == []


def test_the_list_keeps_whole_ids_and_cuts_the_prompt(api, monkeypatch):
    api.answer = lambda request: httpx.Response(200, json={"jobs": [view("succeeded")], "next_cursor": None})
    wide = run("list")
    assert JOB_ID in wide.stdout and "2026-12-01 23:02" in wide.stdout and "gemini" in wide.stdout
    assert "a cat walking" in wide.stdout
    monkeypatch.setattr(cli, "out", Console(highlight=False, width=60))
    narrow = run("list")
    assert JOB_ID in narrow.stdout and "…" in narrow.stdout and "gemini" not in narrow.stdout
    assert all(len(line) <= 60 for line in narrow.stdout.splitlines())


@pytest.mark.parametrize(("answer", "code", "line"), [
    (httpx.Response(409, json={"error": {"code": "conflict", "message": "the job already ended (succeeded)", "field": None}}),
     3, "veorelay: error: conflict: the job already ended (succeeded) [HTTP 409]"),
    (httpx.Response(503, json={"error": {"code": "unavailable", "message": "try again", "field": None}}, headers={"Retry-After": "0"}),
     3, "veorelay: error: unavailable: try again [HTTP 503]"),
])
def test_each_failure_has_its_exit_code(api, answer, code, line):
    api.answer = lambda request: answer
    result = run("cancel", JOB_ID)
    assert result.exit_code == code
    assert result.stderr.strip() == line


def test_a_job_that_failed_while_waited_for_exits_1(api):
    failed = view("failed", error={"code": "rai_filtered", "message": "safety filters removed every video"})
    api.answer = lambda request: httpx.Response(200, json=failed) if request.method == "GET" else httpx.Response(202, json=view())
    result = run("submit", "a cat", "--wait")
    assert result.exit_code == 1
    assert f"veorelay: job {JOB_ID} failed: rai_filtered: safety filters removed every video" in result.stderr
    assert result.stdout.strip() == JOB_ID


def test_get_shows_the_video_its_media_poster_source_and_cost(api):
    output = {"index": 0, "uri": f"gs://b/videos/{JOB_ID}/0.mp4", "size": 3_300_000, "crc32c": "yZRlqg==", "md5": "XUFAKrxLKna5cZ2REBfFkg==",
              "media": {"duration_seconds": 8.0, "width": 1280, "height": 720, "video_codec": "h264", "audio_codec": "aac", "has_audio": True},
              "poster": {"uri": f"gs://b/videos/{JOB_ID}/0.jpg", "size": 9000, "content_type": "image/jpeg"}}
    succeeded = view("succeeded", outputs=[output], extends={"job_id": "d" * 32, "output": 0},
                     cost={"estimated_usd": 3.2, "billed": False, "currency": "USD"})
    api.answer = lambda request: httpx.Response(200, json=succeeded)
    lines = [line.rstrip() for line in run("get", JOB_ID).stdout.splitlines()]
    assert f"video #0   gs://b/videos/{JOB_ID}/0.mp4 (3.1 MiB, crc32c yZRlqg==)" in lines
    assert "           8.0 s, 1280x720, h264 + aac" in lines
    assert f"poster #0  gs://b/videos/{JOB_ID}/0.jpg" in lines
    assert f"extends    {'d' * 32} (video #0)" in lines
    assert "cost       3.20 USD (estimate)" in lines


def test_get_shows_a_videos_sha256_where_the_deployment_records_one(api):
    output = {"index": 0, "uri": f"gs://b/videos/{JOB_ID}/0.mp4", "size": 2048, "crc32c": "yZRlqg==", "md5": "XUFAKrxLKna5cZ2REBfFkg==",
              "sha256": "ab" * 32}
    api.answer = lambda request: httpx.Response(200, json=view("succeeded", outputs=[output]))
    shown = " ".join(line.strip() for line in run("get", JOB_ID).stdout.splitlines())  # the row wraps at 100 columns
    assert f"video #0  gs://b/videos/{JOB_ID}/0.mp4 (2048 bytes, crc32c yZRlqg==, sha256 abababababababab…)" in shown
