"""What the per-dialect tests share: tiny real images, many jobs at once, and checks of what a
user finds in the bucket."""
from __future__ import annotations

import base64
import hashlib
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

from .helpers import Client, crc32c, landed_job_json, md5, unique_prompt


def png(width: int = 4, height: int = 4, rgb: bytes = b"\xff\x00\x00") -> bytes:
    """A real PNG (what a client uploads), a few dozen bytes."""
    raw = b"".join(b"\x00" + rgb * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def inline(data: bytes, mime: str = "image/png") -> dict[str, str]:
    return {"base64": base64.b64encode(data).decode(), "mime_type": mime}


def run_jobs(client: Client, bodies: list[dict[str, Any]], timeout_s: float = 120) -> list[dict[str, Any]]:
    """Submit every body (each gets a unique prompt token), then wait for all: the jobs run side
    by side, so a dialect's cases cost about one job's time."""
    ids = []
    for body in bodies:
        body = {**body, "prompt": unique_prompt(body.get("prompt", "a hummingbird in slow motion"))}
        resp = client.submit(body)
        assert resp.status_code == 202, resp.text
        ids.append(resp.json()["id"])
    return [client.wait(job_id, timeout_s=timeout_s) for job_id in ids]


def assert_videos_match_the_provider(client: Client, bucket, job: dict[str, Any], count: int) -> None:
    """Every output is in the bucket under videos/<id>/<n>.mp4, verified (the very bytes the
    provider served: their size and sha256 as the simulator reports them), recorded with the
    crc32c and md5 Cloud Storage has for the object, and nothing else under the job's prefix but
    its job.json."""
    assert job["status"] == "succeeded", job
    served = client.sim_operation(job["request"]["prompt"])["outputs"]
    assert len(job["outputs"]) == count == len(served)
    stored = []
    for output in job["outputs"]:
        assert output["uri"] == f"gs://{bucket.name}/videos/{job['id']}/{output['index']}.mp4"
        data = bucket.blob(output["name"]).download_as_bytes()
        assert (output["size"], output["crc32c"], output["md5"]) == (len(data), crc32c(data), md5(data)) and data[4:8] == b"ftyp"
        assert "sha256" not in output  # the stack records none (VEO_OUTPUT_SHA256 is off by default)
        stored.append((hashlib.sha256(data).hexdigest(), len(data)))
        # Read back (gcp/media_probe.py): the simulator served what the request asked for.
        assert output["media"]["video_codec"] == "h264" and output["media"]["duration_seconds"] > 0
        assert output["poster"]["name"] == f"videos/{job['id']}/{output['index']}.jpg"
    assert sorted(stored) == sorted((s["sha256"], s["size"]) for s in served)
    assert job["warnings"] == [], job["warnings"]  # a normal job: every video as asked
    landed_job_json(bucket, job["id"])  # last, so consumers find every video
    names = {b.name for b in bucket.list_blobs(prefix=f"videos/{job['id']}/")}
    assert names == ({f"videos/{job['id']}/{o['index']}.mp4" for o in job["outputs"]}
                     | {f"videos/{job['id']}/{o['index']}.jpg" for o in job["outputs"]} | {f"videos/{job['id']}/job.json"}), names


def provider_calls(client: Client, prompt: str, kind: str | None = None) -> list[dict[str, Any]]:
    return client.sim_calls(prompt, kind)


def calls_since(client: Client, since: float, kind: str) -> list[dict[str, Any]]:
    calls = requests.get(f"{client.sim}/_sim/calls", params={"kind": kind}, timeout=5).json()
    return [c for c in calls if c["at"] >= since]


@contextmanager
def image_server(routes: dict[str, tuple[int, bytes, dict[str, str]]]) -> Iterator[str]:
    """A local web server answering `routes` {path: (status, body, headers)}; yields its root URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            status, body, headers = routes.get(self.path, (404, b"not found", {}))
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def eventually(check, timeout_s: float = 30, every_s: float = 0.25):
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(every_s)
