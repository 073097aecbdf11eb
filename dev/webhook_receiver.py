"""A webhook receiver for local runs and tests: records every POST, answers as scripted.

    python -m dev.webhook_receiver --host 127.0.0.1 --port 8124

Any POST to a path that does not start with /_ is recorded as
{path, query, method, headers, body (text), received_at (unix seconds), status (what we answered)}.

Admin API:
    GET  /_received[?path=/x]   -> JSON list of recorded requests (all paths if no path)
    POST /_behavior             {"path": "/x", "responses": [503, {"status": 503, "retry_after": 2},
                                 {"status": 200, "delay": 20}, 410,
                                 {"status": 302, "headers": {"Location": "http://169.254.169.254/"}}]}
                                scripts the next answers for /x, then 200 forever
    POST /_reset                forget recordings and scripts
    GET  /_health               200
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.received: list[dict] = []
        self.scripts: dict[str, list] = {}

    def next_response(self, path: str) -> dict:
        with self.lock:
            script = self.scripts.get(path)
            entry = script.pop(0) if script else 200
        return {"status": entry} if isinstance(entry, int) else dict(entry)


class Handler(BaseHTTPRequestHandler):
    server_version = "veo-relay-webhook-receiver"
    protocol_version = "HTTP/1.1"
    state: State  # set on the class by make_server

    def log_message(self, fmt, *args):  # one line per request, on stderr
        sys.stderr.write(f"{self.address_string()} {fmt % args}\n")

    def _send(self, status: int, payload=None, headers: dict | None = None) -> None:
        body = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self):
        url = urlsplit(self.path)
        if url.path == "/_health":
            return self._send(200, {"ok": True})
        if url.path == "/_received":
            wanted = parse_qs(url.query).get("path", [None])[0]
            with self.state.lock:
                items = [r for r in self.state.received if wanted is None or r["path"] == wanted]
            return self._send(200, items)
        return self._send(405, {"error": "webhooks are POSTed"})

    def do_POST(self):
        url = urlsplit(self.path)
        body = self._body()
        if url.path == "/_reset":
            with self.state.lock:
                self.state.received.clear()
                self.state.scripts.clear()
            return self._send(200, {"ok": True})
        if url.path == "/_behavior":
            try:
                spec = json.loads(body)
                path, responses = spec["path"], list(spec["responses"])
            except (ValueError, KeyError, TypeError) as exc:
                return self._send(400, {"error": f"bad behavior spec: {exc}"})
            with self.state.lock:
                self.state.scripts[path] = responses
            return self._send(200, {"ok": True})

        answer = self.state.next_response(url.path)
        status = int(answer.get("status", 200))
        record = {
            "path": url.path,
            "query": url.query,
            "method": "POST",
            "headers": dict(self.headers.items()),
            "body": body.decode("utf-8", errors="replace"),
            "received_at": time.time(),
            "status": status,
        }
        with self.state.lock:
            self.state.received.append(record)
        if answer.get("delay"):
            time.sleep(float(answer["delay"]))
        headers = dict(answer.get("headers") or {})
        if "retry_after" in answer:
            headers["Retry-After"] = answer["retry_after"]
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = ""
        payload = {"ok": True} if 200 <= status < 300 else {"error": phrase or str(status)}
        try:
            self._send(status, payload, headers)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the sender gave up (timeout) while we were delaying


def make_server(host: str, port: int) -> ThreadingHTTPServer:
    handler = type("BoundHandler", (Handler,), {"state": State()})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True  # a delayed answer must not block shutdown
    return server


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="webhook receiver (records POSTs, scripted answers)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args(argv)
    server = make_server(args.host, args.port)
    # serve_forever runs in a thread so the main thread can take SIGTERM and call shutdown().
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"webhook receiver on http://{args.host}:{server.server_address[1]}", file=sys.stderr, flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
