"""State and helpers shared by every simulated dialect.

One `SimState` lives in `app.extensions["veo_sim"]` (not in a module global) so
tests can run several apps in one process without sharing operations.

Operations are plain in-memory records; a generation is "done" once
`created_at + duration` has passed -- nothing runs in the background, every
answer is computed from the clock when it is asked for.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import re
import secrets
import socket
import string
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

from flask import Response, current_app, has_request_context, jsonify, request

DEFAULT_CONFIG: dict[str, Any] = {
    # Seconds from submit until a generation is done (per job: [sim:duration=S]).
    "duration_s": 2.0,
    # Bytes per served video (None = sample.mp4 + id box, ~33 KiB). Per job: size=.
    "video_size": None,
    # newapi: "gemini" puts a content URL in data.url, "vertex" puts the video in
    # data.bytes_base64_encoded (doc 001 says it depends on the upstream).
    "newapi_upstream": "gemini",
    # genaipro histories: "per_video" = one entry per video (ids match the
    # complete event), "per_generation" = one entry per submit with N file_urls.
    "genaipro_history_grouping": "per_video",
    # flow: seconds the nanoai proxy takes before task-status holds a result
    # (it solves a captcha and calls Google on our behalf).
    "flow_proxy_delay_s": 0.3,
    # Root URL written into URIs the simulator hands out; None = the Host the
    # request came in on. Set it when clients reach the simulator by another name.
    "public_base_url": os.environ.get("VEO_SIM_PUBLIC_URL") or None,
    # Completion events (push.py): the fraction dropped at random, and a delay for all.
    "event_drop_rate": 0.0,
    "event_delay_s": 0.0,
}

CALL_LOG_MAX = 20000


# --------------------------------------------------------------------------
# Fault directives: "[sim:a,b=c]" anywhere in the prompt, so parallel tests
# each steer their own job without touching global state.
# --------------------------------------------------------------------------

_BLOCK = re.compile(r"\[sim:([^\]]*)\]", re.IGNORECASE)
_SUBMIT_FAULT = re.compile(r"^submit_(\d{3})(?:x(\d+))?$")
_POLL_FAULT = re.compile(r"^poll_(\d{3}|garbage|html|reset)(?:x(\d+))?$")
_COUNTED = re.compile(r"^([a-z_]+?)(?:x(\d+))?$")
_SIZE = re.compile(r"^(\d+)\s*([kmg]i?b?)?$", re.IGNORECASE)


# Directive names (besides submit_NNN[xK] / poll_*[xK]); anything else is a 400
# so that a typo in a test does not silently turn into a happy path.
KNOWN_DIRECTIVES = {
    "key", "duration", "samples", "size", "slow_poll", "slow_submit", "op_error", "rai_filtered",
    "empty_success", "never_finish", "expired", "html_200", "truncated", "wrong_length",
    "redirect", "stream_break", "stream_reset", "token_expired", "upstream", "vertex_upstream", "history_twin",
    # The video served unlike what was asked (media.py, clips.py): its length, its frame size,
    # no audio track, no video track, tracks of zero seconds; `moov_last` puts the index last.
    "clip_seconds", "clip_size", "no_audio", "no_video_track", "zero_duration", "moov_last",
    # Completion events (push.py): delayed, duplicated, dropped, forged, badly signed.
    "event_delay", "event_dup", "event_drop", "event_forge", "event_badsig",
}
_VALUED = {"duration": float, "samples": int, "slow_poll": float, "slow_submit": float, "expired": float, "clip_seconds": float,
           "event_delay": float, "event_dup": int}
_CLIP_SIZE = re.compile(r"^(\d{1,4})x(\d{1,4})$")


class DirectiveError(ValueError):
    """A malformed [sim:...] directive; the app answers 400 with the message."""


class Directives:
    """Parsed `[sim:...]` directives of one prompt (all blocks merged)."""

    def __init__(self, prompt: str | None):
        self.items: dict[str, str] = {}
        for block in _BLOCK.findall(prompt or ""):
            for part in block.split(","):
                part = part.strip()
                if not part:
                    continue
                name, _, value = part.partition("=")
                self.items[name.strip().lower()] = value.strip()
        self._validate()

    def _validate(self) -> None:
        for name, value in self.items.items():
            base = _COUNTED.match(name)
            if not (_SUBMIT_FAULT.match(name) or _POLL_FAULT.match(name)
                    or name in KNOWN_DIRECTIVES
                    or (base and base.group(2) and base.group(1) == "token_expired")):
                raise DirectiveError(f"unknown [sim:] directive {name!r}")
            if value and name in _VALUED:
                try:
                    _VALUED[name](value)
                except ValueError:
                    raise DirectiveError(f"[sim:] directive {name}={value!r} is not a number") from None
        if self.items.get("size"):
            self.size()
        if self.has("clip_size"):
            self.clip_size()
        if self.has("clip_seconds") and not 0 < (self.float("clip_seconds") or 0) <= 60:
            raise DirectiveError("[sim:] directive clip_seconds must be in (0, 60]")

    def clip_size(self) -> tuple[int, int] | None:
        """clip_size=WxH: the served video's frame size (even numbers, 16 to 3840)."""
        value = self.items.get("clip_size")
        if value is None:
            return None
        m = _CLIP_SIZE.match(value)
        if not m or not all(16 <= int(n) <= 3840 and int(n) % 2 == 0 for n in m.groups()):
            raise DirectiveError(f"[sim:] directive clip_size={value!r}: use WxH, even numbers from 16 to 3840")
        return int(m.group(1)), int(m.group(2))

    def has(self, name: str) -> bool:
        return name in self.items

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.items.get(name, default)

    def float(self, name: str, default: float | None = None) -> float | None:
        value = self.items.get(name)
        return float(value) if value not in (None, "") else default

    def int(self, name: str, default: int | None = None) -> int | None:
        value = self.items.get(name)
        return int(value) if value not in (None, "") else default

    def size(self) -> int | None:
        """size=BYTES, also 10M / 512MiB / 1G (binary multiples)."""
        value = self.items.get("size")
        if not value:
            return None
        m = _SIZE.match(value)
        if not m:
            raise DirectiveError(f"[sim:] directive size={value!r}: use bytes or 10M / 512MiB / 1G")
        mult = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[(m.group(2) or "")[:1].lower()]
        return int(m.group(1)) * mult

    def counted(self, name: str) -> tuple[bool, int | None]:
        """`name` or `namexN` present? -> (present, N or None meaning always)."""
        for key in self.items:
            m = _COUNTED.match(key)
            if m and m.group(1) == name:
                return True, int(m.group(2)) if m.group(2) else None
        return False, None

    def submit_fault(self) -> tuple[int, int | None] | None:
        for key in self.items:
            m = _SUBMIT_FAULT.match(key)
            if m:
                return int(m.group(1)), int(m.group(2)) if m.group(2) else None
        return None

    def poll_fault(self) -> tuple[str, int | None] | None:
        for key in self.items:
            m = _POLL_FAULT.match(key)
            if m:
                return m.group(1), int(m.group(2)) if m.group(2) else None
        return None

    def outcome(self) -> str:
        """How the generation ends: success | error | rai_filtered | empty."""
        if self.has("op_error"):
            return "error"
        if self.has("rai_filtered"):
            return "rai_filtered"
        if self.has("empty_success"):
            return "empty"
        return "success"


# --------------------------------------------------------------------------
# Operations
# --------------------------------------------------------------------------


@dataclasses.dataclass
class Output:
    index: int
    file_id: str          # alias the download routes use to find (op, index)
    url: str = ""         # the URI the dialect hands out for this output
    download_url: str = ""  # where a client actually fetches it ("" = inline/GCS)
    size: int | None = None  # requested size (None = natural)


@dataclasses.dataclass
class Operation:
    id: str
    dialect: str
    prompt: str
    model: str
    created_at: float
    duration: float
    directives: Directives
    outputs: list[Output]
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)
    # Error text decided at submit (e.g. newapi's documented model rules);
    # such a job fails at once instead of after `duration`.
    rejected: str | None = None
    poll_count: int = 0
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False)

    @property
    def done_at(self) -> float:
        return self.created_at + (0.0 if self.rejected else self.duration)

    def is_done(self, now: float | None = None) -> bool:
        if self.directives.has("never_finish") and not self.rejected:
            return False
        return (now if now is not None else time.time()) >= self.done_at

    def progress(self, now: float | None = None) -> float:
        """0..1 fraction of the generation time elapsed (for status words)."""
        if self.duration <= 0:
            return 1.0
        return min(1.0, max(0.0, ((now or time.time()) - self.created_at) / self.duration))

    @property
    def outcome(self) -> str:
        return "error" if self.rejected else self.directives.outcome()


def new_id(length: int = 12, alphabet: str = string.ascii_lowercase + string.digits) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


class SimState:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.config: dict[str, Any] = dict(DEFAULT_CONFIG)
        self.operations: dict[str, Operation] = {}
        self.files: dict[str, tuple[str, int]] = {}   # file_id -> (op_id, index)
        self.aliases: dict[str, str] = {}             # dialect-specific name -> op_id
        self.counters: collections.Counter[tuple] = collections.Counter()
        self.calls: collections.deque[dict] = collections.deque(maxlen=CALL_LOG_MAX)
        self.dialect_state: dict[str, dict] = collections.defaultdict(dict)

    def reset(self) -> None:
        with self.lock:
            self.config = dict(DEFAULT_CONFIG)
            self.operations.clear()
            self.files.clear()
            self.aliases.clear()
            self.counters.clear()
            self.calls.clear()
            self.dialect_state.clear()

    # -- operations -------------------------------------------------------

    def create_operation(  # noqa: PLR0913 (one operation's whole description, mostly optional)
        self,
        dialect: str,
        prompt: str,
        model: str,
        samples: int,
        op_id: str | None = None,
        directives: Directives | None = None,
        extra: dict | None = None,
        rejected: str | None = None,
        samples_directive: bool = True,
    ) -> Operation:
        directives = directives or Directives(prompt)
        duration = directives.float("duration", float(self.config["duration_s"]))
        if samples_directive:  # off where the protocol can carry one video only
            samples = directives.int("samples", samples)
        size = directives.size() or self.config.get("video_size")
        op = Operation(
            id=op_id or new_id(),
            dialect=dialect,
            prompt=prompt,
            model=model,
            created_at=time.time(),
            duration=duration,
            directives=directives,
            outputs=[],
            extra=extra or {},
            rejected=rejected,
        )
        with self.lock:
            for i in range(max(0, samples)):
                fid = new_id()
                op.outputs.append(Output(index=i, file_id=fid, size=size))
                self.files[fid] = (op.id, i)
            self.operations[op.id] = op
        return op

    def get(self, op_id: str) -> Operation | None:
        with self.lock:
            return self.operations.get(op_id)

    def by_file(self, file_id: str) -> tuple[Operation, Output] | None:
        with self.lock:
            hit = self.files.get(file_id)
            if not hit:
                return None
            op = self.operations.get(hit[0])
        if not op:
            return None
        return op, op.outputs[hit[1]]

    def bump(self, *key: Any) -> int:
        """Increment a named counter and return the new value (1 on first use)."""
        with self.lock:
            self.counters[key] += 1
            return self.counters[key]

    # -- call log -----------------------------------------------------------

    def record(self, dialect: str, kind: str, op: Operation | None, status: int,
               prompt: str | None = None, op_id: str | None = None, **extra: Any) -> None:
        in_request = has_request_context()
        self.calls.append({
            "dialect": dialect,
            "kind": kind,
            "op_id": op.id if op else op_id,
            "prompt": op.prompt if op else prompt,
            "at": time.time(),
            "status": status,
            "method": request.method if in_request else None,
            "path": request.path if in_request else None,
            **extra,
        })


def state() -> SimState:
    return current_app.extensions["veo_sim"]


def base_url() -> str:
    """Root URL of the simulator as clients should see it (no trailing slash)."""
    configured = state().config.get("public_base_url")
    return (configured or request.host_url).rstrip("/")


def storage_emulator_url() -> str | None:
    """Root URL of the GCS emulator named by STORAGE_EMULATOR_HOST (no trailing slash), or None."""
    host = os.environ.get("STORAGE_EMULATOR_HOST")
    if not host:
        return None
    return (host if "://" in host else "http://" + host).rstrip("/")


# --------------------------------------------------------------------------
# Auth: expected secrets come from the simulator's environment, read on every
# request so a test can monkeypatch them.
# --------------------------------------------------------------------------


def expected_key(provider: str) -> str:
    env = "VEO_" + provider.upper().replace("-", "_") + "_API_KEY"
    return os.environ.get(env) or f"sim-key-{provider}"


def expected_google_token() -> str:
    return os.environ.get("VEO_FLOW_GOOGLE_TOKEN") or "sim-google-token"


def bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return None


# --------------------------------------------------------------------------
# Faults shared by all dialects
# --------------------------------------------------------------------------

ErrorRenderer = Callable[[int, str], Response]

_REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            408: "Request Timeout", 429: "Too Many Requests", 500: "Internal Server Error",
            502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


def submit_fault(st: SimState, dialect: str, directives: Directives, prompt: str,
                 render: ErrorRenderer) -> Response | None:
    """submit_NNN fails every submit; submit_NNNxK fails the first K submits that
    carry it, counted per (dialect, directive, key= or the whole prompt); slow_submit=S answers
    S seconds late (a submission in flight, for a test to act on meanwhile)."""
    slow = directives.float("slow_submit")
    if slow:
        time.sleep(slow)
    fault = directives.submit_fault()
    if not fault:
        return None
    code, times = fault
    if times is not None:
        seen = st.bump("submit", dialect, code, directives.get("key") or prompt)
        if seen > times:
            return None
    resp = render(code, f"simulated submit failure ({code} {_REASONS.get(code, '')})".strip())
    resp.status_code = code
    if code == 429 or code == 503:
        resp.headers["Retry-After"] = "2"
    return resp


def poll_fault(st: SimState, op: Operation, render: ErrorRenderer) -> Response | None:
    """Applies slow_poll and poll_* faults to one poll of `op` (counted per op)."""
    slow = op.directives.float("slow_poll")
    if slow:
        time.sleep(slow)
    with op.lock:
        op.poll_count += 1
        n = op.poll_count
    fault = op.directives.poll_fault()
    if not fault:
        return None
    what, times = fault
    if times is not None and n > times:
        return None
    if what == "garbage":
        return Response('{"name": "operations/trunc', status=200, mimetype="application/json")
    if what == "html":
        return html_page(200, "Service temporarily busy")
    if what == "reset":
        return drop_connection()
    resp = render(int(what), "simulated poll failure")
    resp.status_code = int(what)
    return resp


def html_page(status: int, title: str) -> Response:
    """What a misconfigured proxy / captive portal answers instead of JSON."""
    body = (f"<!DOCTYPE html><html><head><title>{title}</title></head>"
            f"<body><h1>{title}</h1><p>veo-relay simulator</p></body></html>")
    return Response(body, status=status, mimetype="text/html")


def drop_connection() -> Response:
    """Close the TCP connection without sending a status line.

    Raising a ConnectionError from the body iterator makes werkzeug treat the
    request as dropped (it sends nothing); SO_LINGER 0 turns the close into a
    RST so the client sees "connection reset", not a clean EOF."""
    sock = request.environ.get("werkzeug.socket")

    def body():
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                # Without this, http.server would wait for another request on the
                # still-open socket while the client waits for an answer.
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        raise ConnectionAbortedError("simulated connection reset")
        yield b""  # pragma: no cover - makes this a generator

    return Response(body(), status=200, mimetype="application/json")


def json_error(status: int, payload: Any, headers: dict | None = None) -> Response:
    resp = jsonify(payload)
    resp.status_code = status
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


# Google-style errors (Gemini API, Vertex AI, aisandbox) share one shape.
GOOGLE_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
                 404: "NOT_FOUND", 409: "ALREADY_EXISTS", 429: "RESOURCE_EXHAUSTED",
                 499: "CANCELLED", 500: "INTERNAL", 501: "NOT_IMPLEMENTED",
                 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}


def google_error(status: int, message: str, details: list | None = None) -> Response:
    err: dict[str, Any] = {"code": status, "message": message,
                           "status": GOOGLE_STATUS.get(status, "UNKNOWN")}
    if details:
        err["details"] = details
    return json_error(status, {"error": err})


def json_body() -> dict | None:
    """The request's JSON object, or None if it is not a JSON object. The
    Content-Type is not checked: curl -d and many clients omit it."""
    data = request.get_json(force=True, silent=True)
    return data if isinstance(data, dict) else None
