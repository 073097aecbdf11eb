"""Bodies against the running api function (functions-framework under gunicorn, as deployed),
by a real client on a raw socket: the API key and a declared size are refused before a byte of
the body is read; a client that holds its body open, or trickles it, gets 408 once its time
(VEO_BODY_TIMEOUT_SECONDS: 3 s in tests, 9 s multipart) is up; and slow clients cannot starve
the instance's threads: a normal request still gets its answer."""
from __future__ import annotations

import http.client
import json
import os
import socket
import threading
import time
import uuid
from urllib.parse import urlsplit

import pytest

from .reliability import jobs_with_prompt

pytestmark = [pytest.mark.integration, pytest.mark.badinput]

BODY_TIMEOUT_S = 3.0  # tests/conftest.py INPUTS_AND_BODIES
MARGIN_S = 3.0


class RawClient:
    """One HTTP/1.1 request on its own socket, sent as slowly as a test likes."""

    def __init__(self, stack, path: str = "/jobs", headers: dict[str, str] | None = None, auth: bool = True):
        parts = urlsplit(stack.function_urls["api"])
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=60)
        lines = [f"POST {path} HTTP/1.1", f"Host: {parts.hostname}:{parts.port}"]
        if auth:
            lines.append(f"Authorization: Bearer {stack.api_key}")
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.started = time.monotonic()

    def send(self, data: bytes) -> bool:
        try:
            self.sock.sendall(data)
            return True
        except OSError:  # the server shut the connection: what it answered is still readable
            return False

    def trickle(self, data: bytes, every_s: float) -> threading.Thread:
        def run() -> None:
            for i in range(len(data)):
                if not self.send(data[i:i + 1]):
                    return
                time.sleep(every_s)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread

    def answer(self) -> tuple[int, dict, float]:
        """(status, JSON body, seconds since the request started)."""
        resp = http.client.HTTPResponse(self.sock)
        resp.begin()
        body = json.loads(resp.read() or b"{}")
        elapsed = time.monotonic() - self.started
        self.sock.close()
        return resp.status, body, elapsed


def job_body(prompt: str, size: int | None = None) -> bytes:
    raw = json.dumps({"prompt": prompt, "metadata": {"pad": ""}}).encode()
    return raw if size is None else raw.replace(b'"pad": ""', b'"pad": "' + b"x" * (size - len(raw)) + b'"')


def assert_timed_out(status: int, body: dict, elapsed: float, within_s: float) -> None:
    assert status == 408, body
    assert body["error"]["code"] == "invalid_request" and "did not arrive" in body["error"]["message"]
    assert elapsed < within_s + MARGIN_S, f"answered after {elapsed:.1f}s"


def test_a_client_that_holds_its_body_open_gets_408_when_its_time_is_up(stack):
    prompt = f"held open #{uuid.uuid4().hex[:8]}"
    raw = RawClient(stack, headers={"Content-Type": "application/json", "Content-Length": "5000"})
    raw.send(job_body(prompt)[:20])  # and then nothing
    assert_timed_out(*raw.answer(), BODY_TIMEOUT_S)
    assert jobs_with_prompt(stack, prompt) == []


def test_a_client_that_trickles_its_body_is_cut_off_at_its_time_not_at_its_last_byte(stack):
    data = job_body(f"trickled #{uuid.uuid4().hex[:8]}", 2000)  # 2000 bytes at 10/s would take 200 s
    raw = RawClient(stack, headers={"Content-Type": "application/json", "Content-Length": str(len(data))})
    raw.trickle(data, every_s=0.1)
    status, body, elapsed = raw.answer()
    assert_timed_out(status, body, elapsed, BODY_TIMEOUT_S)
    assert elapsed >= BODY_TIMEOUT_S - 0.5  # every byte was on time: only the deadline cut it


def test_a_chunked_body_trickled_without_a_length_is_cut_off_too(stack):
    raw = RawClient(stack, headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
    chunks = b"".join(b"1\r\n" + bytes([c]) + b"\r\n" for c in job_body("chunked and slow", 300))
    raw.trickle(chunks, every_s=0.02)
    assert_timed_out(*raw.answer(), BODY_TIMEOUT_S)


def test_a_slow_multipart_body_gets_408_after_its_longer_time(stack):
    boundary = "slowboundary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"request\"\r\n\r\n"
            '{"prompt": "slow multipart"}\r\n'
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\n"
            "Content-Type: image/png\r\n\r\n").encode()
    raw = RawClient(stack, headers={"Content-Type": f"multipart/form-data; boundary={boundary}", "Content-Length": str(len(head) + 100_000)})
    raw.send(head)  # the image never comes
    assert_timed_out(*raw.answer(), 3 * BODY_TIMEOUT_S)


@pytest.mark.parametrize("auth,content_type,length,status", [
    (False, "application/json", 50 * 1024 * 1024, 401),  # no key: refused before a declared 50 MiB is read
    (True, "application/json", 1024 * 1024 + 1, 413),
    (True, "multipart/form-data; boundary=x", 32 * 1024 * 1024 + 1, 413),
    (True, "text/plain", 100, 415),
], ids=["no-key-big-body", "json-over-1mib", "multipart-over-32mib", "wrong-type"])
def test_the_key_and_the_declared_size_are_refused_before_the_body_is_read(stack, auth, content_type, length, status):
    """Nothing of the body is ever sent: a server waiting for it would answer 408 after 3 s."""
    raw = RawClient(stack, auth=auth, headers={"Content-Type": content_type, "Content-Length": str(length)})
    got, body, elapsed = raw.answer()
    assert got == status, body
    assert elapsed < 1.5, f"answered after {elapsed:.1f}s: the body was waited for"


def test_slow_clients_cannot_starve_the_instance_of_threads(stack, client):
    """More slow bodies than the worker has threads (functions-framework: THREADS, default
    4 a CPU); a normal request behind them still gets its answer, within two deadlines."""
    threads = int(stack.env.get("THREADS") or os.environ.get("THREADS") or (os.cpu_count() or 1) * 4)
    slow = []
    for _ in range(threads + 4):
        raw = RawClient(stack, headers={"Content-Type": "application/json", "Content-Length": "5000"})
        raw.send(b'{"prompt": "')
        slow.append(raw)
    time.sleep(0.5)  # every thread is now blocked on a body
    started = time.monotonic()
    resp = client.submit({"prompt": f"a normal request behind slow ones #{uuid.uuid4().hex[:8]}"})
    waited = time.monotonic() - started
    assert resp.status_code == 202, resp.text
    assert waited < 2 * BODY_TIMEOUT_S + MARGIN_S, f"a normal request waited {waited:.1f}s"
    for raw in slow:
        status, body, _ = raw.answer()
        assert status == 408, body
    client.cancel(resp.json()["id"])
