"""A small Cloud Tasks emulator (gRPC API, HTTP targets) for local runs and tests.

Run it with the separate virtualenv, because gcloud-tasks-emulator pins an old protobuf:

    .venv-tasks/bin/python dev/tasks_emulator.py --host 127.0.0.1 --port 8123

We reuse the gRPC service definition of gcloud-tasks-emulator (cloudtasks_pb2_grpc) and the
google.cloud.tasks_v2 types, but not its server: that one binds [::], dispatches one task at a
time per queue, ignores RetryConfig/RateLimits/schedule_time ordering, accepts duplicate task
names and lacks GetTask/DeleteTask. What this one does, like Cloud Tasks:

* task names are unique, also for --tombstone-seconds after the task ran or was deleted;
* tasks run at schedule_time, concurrently, within the queue's RateLimits;
* failures (non-2xx, connection error, timeout = dispatch_deadline) are retried per RetryConfig;
* the request carries the X-CloudTasks-* headers, and an OIDC token when asked for: an RS256
  ID token shaped like Google's (iss https://accounts.google.com, aud, email, email_verified,
  iat, exp), signed with a throwaway RSA key generated at start.

The key's certificate is served like Google's (`{key id: PEM}`, GET /oauth2/v1/certs) on
--certs-port, and the functions of the local stack trust it (VEO_OIDC_CERTS_URL). With
--signing-key-file the key is also written there (JSON: kid, private_key_pem, mode 0600), so the
stack's tests can mint tokens of their own with it (dev/stack.py LocalStack.oidc_token). The key
lives as long as the process: nothing outside a local run ever trusts it.

Each dispatch is logged as one JSON line on stderr.
"""

from __future__ import annotations

import argparse
import hashlib
import heapq
import itertools
import json
import os
import random
import re
import signal
import socket
import sys
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

warnings.filterwarnings("ignore", category=FutureWarning)  # google-api-core's Python-version nag

import grpc  # noqa: E402
import requests  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402
from gcloud_tasks_emulator.cloudtasks_pb2_grpc import (  # noqa: E402
    CloudTasksServicer,
    add_CloudTasksServicer_to_server,
)
from google.auth import crypt  # noqa: E402
from google.auth import jwt as google_jwt  # noqa: E402
from google.cloud.tasks_v2 import (  # noqa: E402
    Attempt,
    HttpMethod,
    ListQueuesResponse,
    ListTasksResponse,
    Queue,
    RetryConfig,
    Task,
)
from google.protobuf import empty_pb2, field_mask_pb2  # noqa: E402

# Cloud Tasks defaults for a queue created without RateLimits/RetryConfig. (Real Cloud Tasks allows
# 1000 concurrent dispatches by default; 100 keeps a laptop responsive.)
DEFAULT_MAX_DISPATCHES_PER_SECOND = 500.0
DEFAULT_MAX_CONCURRENT_DISPATCHES = 100
DEFAULT_MAX_ATTEMPTS = 100
DEFAULT_MIN_BACKOFF = 0.1
DEFAULT_MAX_BACKOFF = 3600.0
DEFAULT_MAX_DOUBLINGS = 16
DEFAULT_DISPATCH_DEADLINE = 600.0
MIN_DISPATCH_DEADLINE, MAX_DISPATCH_DEADLINE = 15.0, 1800.0  # Cloud Tasks rejects deadlines outside
MAX_TASK_BYTES = 1024 * 1024  # Cloud Tasks rejects bigger tasks
MAX_SCHEDULE_AHEAD = timedelta(days=30)
TOMBSTONES_GC_MIN = 10000  # names kept before the first pass drops the expired ones

QUEUE_RE = re.compile(r"^projects/[^/]+/locations/[^/]+/queues/[A-Za-z0-9-]{1,100}$")
TASK_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,500}$")

# google.rpc.Code for an HTTP answer, as Cloud Tasks reports it in Attempt.response_status.
HTTP_TO_RPC = {400: 3, 401: 16, 403: 7, 404: 5, 409: 10, 429: 8, 499: 1, 500: 13, 501: 12, 503: 14, 504: 4}


def log(**fields) -> None:
    fields.setdefault("ts", round(time.time(), 3))
    sys.stderr.write(json.dumps(fields, separators=(",", ":")) + "\n")
    sys.stderr.flush()


class RpcError(Exception):
    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def utcnow() -> datetime:
    return datetime.now(UTC)


def backoff_seconds(rc: RetryConfig, retry_index: int) -> float:
    """Delay before retry number retry_index+1, as documented for RetryConfig.max_doublings:
    min_backoff, doubled max_doublings times, then growing linearly by 2^max_doublings*min_backoff,
    capped at max_backoff. (min 10 s, max 300 s, doublings 3 -> 10, 20, 40, 80, 160, 240, 300...)"""
    lo = rc.min_backoff.total_seconds()
    hi = rc.max_backoff.total_seconds()
    d = rc.max_doublings
    if retry_index <= d:
        delay = lo * (2 ** retry_index)
    else:
        delay = lo * (2 ** d) * (retry_index - d + 1)
    return min(delay, hi)


GOOGLE_ISSUER = "https://accounts.google.com"
TOKEN_LIFETIME_S = 3600  # as Google's ID tokens
CERTS_PATH = "/oauth2/v1/certs"


class OidcSigner:
    """A throwaway RSA key (generated at start), its self-signed certificate, and ID tokens
    signed with it the way Cloud Tasks' are (RS256, `kid` in the header)."""

    def __init__(self) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public_der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.key_id = hashlib.sha256(public_der).hexdigest()[:40]
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "veo-relay local Cloud Tasks emulator (throwaway)")])
        now = utcnow()
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=30))
                .sign(key, hashes.SHA256()))
        self.certificate_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
        self.private_key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()).decode()
        self._signer = crypt.RSASigner.from_string(self.private_key_pem, key_id=self.key_id)

    def certs(self) -> dict[str, str]:
        """What Google's certs URL answers: {key id: PEM certificate}."""
        return {self.key_id: self.certificate_pem}

    def token(self, audience: str, email: str, now: float | None = None) -> str:
        iat = int(now if now is not None else time.time())
        claims = {
            "iss": GOOGLE_ISSUER, "aud": audience, "azp": service_account_id(email), "sub": service_account_id(email),
            "email": email, "email_verified": True, "iat": iat, "exp": iat + TOKEN_LIFETIME_S,
        }
        return google_jwt.encode(self._signer, claims).decode()

    def write_key_file(self, path: Path) -> None:
        """The key for the stack's tests (they mint tokens the functions accept), readable by us only."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump({"kid": self.key_id, "private_key_pem": self.private_key_pem}, out)


def service_account_id(email: str) -> str:
    """A stable numeric id for a service account email (Google's `sub` is the account's unique id)."""
    return str(int(hashlib.sha256(email.encode()).hexdigest()[:15], 16))


def serve_certs(signer: OidcSigner, host: str, port: int) -> ThreadingHTTPServer:
    """GET /oauth2/v1/certs on host:port, in a daemon thread."""
    body = json.dumps(signer.certs()).encode()

    class Certs(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # http.server's name for it
            if self.path.split("?", 1)[0] != CERTS_PATH:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Cache-Control", "public, max-age=300")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args) -> None:  # http.server's signature
            pass  # one JSON line per dispatch is the emulator's log; cert fetches are not news

    server_class = type("CertsServer", (ThreadingHTTPServer,), {"address_family": socket.AF_INET6 if ":" in host else socket.AF_INET})
    server = server_class((host, port), Certs)
    threading.Thread(target=server.serve_forever, name="certs", daemon=True).start()
    return server


class TokenBucket:
    def __init__(self, rate: float):
        self.rate = rate
        self.capacity = max(1.0, rate)  # up to one second of burst
        self.tokens = self.capacity
        self.stamp = time.monotonic()

    def take(self, now: float) -> bool:
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def wait_time(self) -> float:
        return max(0.001, (1.0 - self.tokens) / self.rate)


class Entry:
    """A task plus the bookkeeping Cloud Tasks keeps server side."""

    def __init__(self, task: Task, due: float):
        self.task = task
        self.due = due  # monotonic time of the next attempt
        self.token = 0  # bumped on every reschedule; older heap items become stale
        self.inflight = False
        self.forced = False  # RunTask: ignore pause and rate limits once
        self.first_attempt_at: float | None = None  # monotonic
        self.execution_count = 0  # answers that were not 5xx (X-CloudTasks-TaskExecutionCount)
        self.previous_response = 0


class QueueState:
    def __init__(self, queue: Queue):
        self.queue = queue
        self.tasks: dict[str, Entry] = {}
        self.heap: list = []
        self.forced: list[Entry] = []
        self.inflight = 0
        self.bucket = TokenBucket(queue.rate_limits.max_dispatches_per_second)

    def push(self, entry: Entry, seq: int) -> None:
        entry.token += 1
        heapq.heappush(self.heap, (entry.due, seq, entry.token, entry))

    def live(self, entry: Entry, token: int) -> bool:
        return self.tasks.get(entry.task.name) is entry and entry.token == token and not entry.inflight


def with_queue_defaults(queue: Queue) -> Queue:
    """Fill unset RateLimits/RetryConfig fields the way Cloud Tasks does (it reports them back)."""
    rl, rc = queue.rate_limits, queue.retry_config
    if not rl.max_dispatches_per_second:
        rl.max_dispatches_per_second = DEFAULT_MAX_DISPATCHES_PER_SECOND
    if not rl.max_concurrent_dispatches:
        rl.max_concurrent_dispatches = DEFAULT_MAX_CONCURRENT_DISPATCHES
    rl.max_burst_size = int(max(1.0, rl.max_dispatches_per_second))
    if not rc.max_attempts:
        rc.max_attempts = DEFAULT_MAX_ATTEMPTS
    # Durations are messages: "unset" and "zero" differ, so test presence, not value.
    if "min_backoff" not in rc:
        rc.min_backoff = timedelta(seconds=DEFAULT_MIN_BACKOFF)
    if "max_backoff" not in rc:
        rc.max_backoff = timedelta(seconds=DEFAULT_MAX_BACKOFF)
    if "max_doublings" not in rc:
        rc.max_doublings = DEFAULT_MAX_DOUBLINGS
    if "max_retry_duration" not in rc:
        rc.max_retry_duration = timedelta(0)
    queue.rate_limits, queue.retry_config = rl, rc
    if queue.state == Queue.State.STATE_UNSPECIFIED:
        queue.state = Queue.State.RUNNING
    return queue


def copy_task(task: Task, full: bool) -> Task:
    out = Task.deserialize(Task.serialize(task))
    if not full:  # Task.View.BASIC leaves the body out, as in Cloud Tasks
        out.http_request.body = b""
    return out


class Emulator:
    def __init__(self, tombstone_seconds: float, workers: int, min_dispatch_deadline: float = MIN_DISPATCH_DEADLINE,
                 signer: OidcSigner | None = None):
        self.signer = signer or OidcSigner()
        self.cond = threading.Condition()
        self.queues: dict[str, QueueState] = {}
        self.tombstones: dict[str, float] = {}  # task name -> monotonic expiry
        self.tombstones_gc_at = TOMBSTONES_GC_MIN  # size that triggers the next expiry pass
        self.tombstone_seconds = tombstone_seconds
        self.min_dispatch_deadline = min_dispatch_deadline
        self.seq = itertools.count()
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dispatch")
        self.stopping = False
        self.total_inflight = 0

    # ---------------------------------------------------------------- queue admin
    def _queue(self, name: str) -> QueueState:
        qs = self.queues.get(name)
        if qs is None:
            raise RpcError(grpc.StatusCode.NOT_FOUND, f"Queue {name} does not exist.")
        return qs

    def create_queue(self, parent: str, queue: Queue) -> Queue:
        if not QUEUE_RE.match(queue.name or "") or not queue.name.startswith(parent + "/queues/"):
            raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, f"Invalid queue name {queue.name!r} for parent {parent!r}.")
        with self.cond:
            if queue.name in self.queues:
                raise RpcError(grpc.StatusCode.ALREADY_EXISTS, f"Queue {queue.name} already exists.")
            queue = with_queue_defaults(Queue.deserialize(Queue.serialize(queue)))
            self.queues[queue.name] = QueueState(queue)
            log(event="queue_created", queue=queue.name)
            return queue

    def update_queue(self, queue: Queue, mask: field_mask_pb2.FieldMask) -> Queue:
        with self.cond:
            qs = self.queues.get(queue.name)
            if qs is None:  # UpdateQueue creates a missing queue, like Cloud Tasks
                parent = queue.name.rsplit("/queues/", 1)[0]
                return self.create_queue(parent, queue)
            current = Queue.pb(qs.queue)
            if mask.paths:
                mask.MergeMessage(Queue.pb(queue), current, replace_message_field=False)
            else:
                current.rate_limits.CopyFrom(Queue.pb(queue).rate_limits)
                current.retry_config.CopyFrom(Queue.pb(queue).retry_config)
            qs.queue = with_queue_defaults(Queue.wrap(current))
            qs.bucket = TokenBucket(qs.queue.rate_limits.max_dispatches_per_second)
            self.cond.notify_all()
            return qs.queue

    def set_state(self, name: str, state: Queue.State) -> Queue:
        with self.cond:
            qs = self._queue(name)
            qs.queue.state = state
            self.cond.notify_all()
            return qs.queue

    def purge_queue(self, name: str) -> Queue:
        with self.cond:
            qs = self._queue(name)
            for task_name in list(qs.tasks):
                self._forget(qs, task_name)
            return qs.queue

    def delete_queue(self, name: str) -> None:
        with self.cond:
            qs = self._queue(name)
            for task_name in list(qs.tasks):
                self._forget(qs, task_name)
            del self.queues[name]

    # ---------------------------------------------------------------- tasks
    def _forget(self, qs: QueueState, task_name: str) -> None:
        """Remove a task and keep its name reserved (Cloud Tasks dedup window)."""
        qs.tasks.pop(task_name, None)
        self.tombstones[task_name] = time.monotonic() + self.tombstone_seconds

    def create_task(self, parent: str, task: Task, full_view: bool) -> Task:
        now = utcnow()
        self._check_and_complete(parent, task, now)
        due = time.monotonic() + max(0.0, (task.schedule_time - now).total_seconds())
        with self.cond:
            qs = self._queue(parent)
            expiry = self.tombstones.get(task.name)
            if task.name in qs.tasks or (expiry is not None and expiry > time.monotonic()):
                raise RpcError(grpc.StatusCode.ALREADY_EXISTS,
                               "The task cannot be created because a task with this name existed too recently.")
            entry = Entry(task, due)
            qs.tasks[task.name] = entry
            qs.push(entry, next(self.seq))
            self._gc_tombstones()
            self.cond.notify_all()
            return copy_task(task, full_view)

    def _check_and_complete(self, parent: str, task: Task, now: datetime) -> None:
        """Refuse a task Cloud Tasks would refuse; fill in what it fills in (name, times, method)."""
        if not task.http_request.url:
            raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, "This emulator supports tasks with http_request.url only.")
        if not task.http_request.url.startswith(("http://", "https://")):
            raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, f"Invalid URL {task.http_request.url!r}.")
        if len(Task.serialize(task)) > MAX_TASK_BYTES:
            raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, "Task size too large.")
        if task.name:
            prefix, _, task_id = task.name.rpartition("/tasks/")
            if prefix != parent or not TASK_ID_RE.match(task_id):
                raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, f"Invalid task name {task.name!r} for queue {parent!r}.")
        else:
            task.name = f"{parent}/tasks/{random.randrange(10**18, 10**19)}"
        if "schedule_time" in task:
            if task.schedule_time - now > MAX_SCHEDULE_AHEAD:
                raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, "schedule_time is more than 30 days in the future.")
        else:
            task.schedule_time = now
        if "dispatch_deadline" not in task:
            task.dispatch_deadline = timedelta(seconds=DEFAULT_DISPATCH_DEADLINE)
        deadline = task.dispatch_deadline.total_seconds()
        if not self.min_dispatch_deadline <= deadline <= MAX_DISPATCH_DEADLINE:
            bounds = f"[{self.min_dispatch_deadline:g}s, {MAX_DISPATCH_DEADLINE:g}s]"
            raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, f"dispatch_deadline must be in {bounds}, got {deadline:g}s.")
        if not task.http_request.http_method:
            task.http_request.http_method = HttpMethod.POST
        task.create_time = now

    def _gc_tombstones(self) -> None:
        # The next pass waits until the names kept have doubled: with more names in their hour
        # than the threshold, a pass on every CreateTask would make each one O(names).
        if len(self.tombstones) > self.tombstones_gc_at:
            now = time.monotonic()
            self.tombstones = {k: v for k, v in self.tombstones.items() if v > now}
            self.tombstones_gc_at = max(TOMBSTONES_GC_MIN, 2 * len(self.tombstones))

    def _entry(self, name: str) -> tuple[QueueState, Entry]:
        qs = self.queues.get(name.rsplit("/tasks/", 1)[0])
        entry = qs.tasks.get(name) if qs else None
        if entry is None:
            raise RpcError(grpc.StatusCode.NOT_FOUND, f"Task {name} does not exist.")
        return qs, entry

    def get_task(self, name: str, full_view: bool) -> Task:
        with self.cond:
            return copy_task(self._entry(name)[1].task, full_view)

    def delete_task(self, name: str) -> None:
        with self.cond:
            qs, _ = self._entry(name)
            self._forget(qs, name)  # an attempt in flight finishes, its result is dropped

    def run_task(self, name: str, full_view: bool) -> Task:
        with self.cond:
            qs, entry = self._entry(name)
            if not entry.inflight:
                entry.forced = True
                entry.token += 1  # the heap item is stale now
                qs.forced.append(entry)
                self.cond.notify_all()
            return copy_task(entry.task, full_view)

    def list_tasks(self, parent: str, full_view: bool) -> list[Task]:
        with self.cond:
            qs = self._queue(parent)
            return [copy_task(e.task, full_view) for e in qs.tasks.values()]

    # ---------------------------------------------------------------- dispatch
    def scheduler(self) -> None:
        """Start every due task its queue allows; sleep until the next one is due or state changes."""
        with self.cond:
            while not self.stopping:
                now = time.monotonic()
                wake = now + 1.0
                for qs in self.queues.values():
                    while qs.forced:
                        entry = qs.forced.pop(0)
                        if qs.tasks.get(entry.task.name) is entry and not entry.inflight:
                            self._start(qs, entry)
                    while qs.heap:
                        due, _, token, entry = qs.heap[0]
                        if not qs.live(entry, token):
                            heapq.heappop(qs.heap)
                            continue
                        if due > now:
                            wake = min(wake, due)
                            break
                        if qs.queue.state != Queue.State.RUNNING:
                            break
                        if qs.inflight >= qs.queue.rate_limits.max_concurrent_dispatches:
                            break  # a finishing dispatch notifies us
                        if not qs.bucket.take(now):
                            wake = min(wake, now + qs.bucket.wait_time())
                            break
                        heapq.heappop(qs.heap)
                        self._start(qs, entry)
                self.cond.wait(timeout=max(0.0, wake - time.monotonic()))

    def _start(self, qs: QueueState, entry: Entry) -> None:
        entry.inflight = True
        entry.forced = False
        qs.inflight += 1
        self.total_inflight += 1
        task = entry.task
        retry_count = task.dispatch_count
        task.dispatch_count += 1
        if entry.first_attempt_at is None:
            entry.first_attempt_at = time.monotonic()
        # Build the request under the lock; the HTTP call happens on a pool thread.
        hr = task.http_request
        headers = {"User-Agent": "Google-Cloud-Tasks"}
        if hr.body:
            headers["Content-Type"] = "application/octet-stream"
        headers.update(dict(hr.headers))
        headers.update({
            "X-CloudTasks-QueueName": qs.queue.name.rsplit("/", 1)[-1],
            "X-CloudTasks-TaskName": task.name.rsplit("/", 1)[-1],
            "X-CloudTasks-TaskRetryCount": str(retry_count),
            "X-CloudTasks-TaskExecutionCount": str(entry.execution_count),
            "X-CloudTasks-TaskETA": f"{task.schedule_time.timestamp():.6f}",
        })
        if retry_count:
            headers["X-CloudTasks-TaskPreviousResponse"] = str(entry.previous_response)
        if "oidc_token" in hr:
            # As Cloud Tasks: the audience is the URL unless the task names one.
            headers["Authorization"] = "Bearer " + self.signer.token(hr.oidc_token.audience or hr.url,
                                                                     hr.oidc_token.service_account_email)
        request = {"method": HttpMethod(hr.http_method).name, "url": hr.url, "headers": headers, "data": hr.body or None,
                       "timeout": task.dispatch_deadline.total_seconds() or DEFAULT_DISPATCH_DEADLINE}
        attempt = Attempt(schedule_time=task.schedule_time, dispatch_time=utcnow())
        try:
            self.pool.submit(self._dispatch, qs, entry, request, attempt)
        except RuntimeError:  # pool shut down while stopping
            pass

    def _dispatch(self, qs: QueueState, entry: Entry, request: dict, attempt: Attempt) -> None:
        started = time.monotonic()
        status, error = None, None
        try:
            # allow_redirects=False: Cloud Tasks does not follow redirects; a 3xx is a failure.
            with requests.Session() as session:
                session.trust_env = False  # straight to the target, never through an env proxy
                response = session.request(allow_redirects=False, **request)
                status = response.status_code
        except requests.Timeout:
            error = "DEADLINE_EXCEEDED"
        except requests.RequestException as exc:
            error = f"UNAVAILABLE: {type(exc).__name__}"
        latency_ms = round((time.monotonic() - started) * 1000, 1)
        self._finish(qs, entry, status, error, attempt, latency_ms)

    def _finish(self, qs, entry, status, error, attempt, latency_ms) -> None:
        with self.cond:
            qs.inflight -= 1
            self.total_inflight -= 1
            self.cond.notify_all()
            task = entry.task
            ok = status is not None and 200 <= status < 300
            record = {"event": "dispatch", "task": task.name, "queue": qs.queue.name.rsplit("/", 1)[-1],
                          "url": task.http_request.url, "attempt": task.dispatch_count, "status": status,
                          "latency_ms": latency_ms}
            if error:
                record["error"] = error
            if qs.tasks.get(task.name) is not entry:  # deleted or purged meanwhile
                entry.inflight = False
                log(**record, outcome="dropped")
                return
            code = 0 if ok else (HTTP_TO_RPC.get(status, 2) if status else (4 if error == "DEADLINE_EXCEEDED" else 14))
            attempt.response_time = utcnow()
            attempt.response_status = {"code": code, "message": f"HTTP status code {status}" if status else error}
            if "first_attempt" not in task:
                task.first_attempt = attempt
            task.last_attempt = attempt
            if status is not None:
                task.response_count += 1
                if status < 500:
                    entry.execution_count += 1
            entry.previous_response = status or 0
            entry.inflight = False
            if ok:
                self._forget(qs, task.name)
                log(**record, outcome="ok")
                return
            rc = qs.queue.retry_config
            if self._exhausted(rc, task.dispatch_count, time.monotonic() - entry.first_attempt_at):
                self._forget(qs, task.name)
                log(**record, outcome="gave_up")
                return
            delay = backoff_seconds(rc, task.dispatch_count - 1)
            entry.due = time.monotonic() + delay
            task.schedule_time = utcnow() + timedelta(seconds=delay)
            qs.push(entry, next(self.seq))
            log(**record, outcome="retry", retry_in_s=round(delay, 3))

    @staticmethod
    def _exhausted(rc: RetryConfig, attempts: int, age_s: float) -> bool:
        # As documented: with both limits set, a task is dropped once it reached max_attempts AND
        # max_retry_duration has passed; with one of them set, that one decides; -1/0 = unlimited.
        by_attempts = rc.max_attempts != -1 and attempts >= rc.max_attempts
        max_age = rc.max_retry_duration.total_seconds()
        by_age = max_age > 0 and age_s >= max_age
        if rc.max_attempts != -1 and max_age > 0:
            return by_attempts and by_age
        return by_attempts or by_age

    def stop(self, grace: float) -> None:
        with self.cond:
            self.stopping = True
            self.cond.notify_all()
        self.pool.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + grace
        while self.total_inflight and time.monotonic() < deadline:
            time.sleep(0.05)


def full(request) -> bool:
    return request.response_view == Task.View.FULL


class Servicer(CloudTasksServicer):
    """gRPC adapter: every call goes to Emulator; RpcError becomes a gRPC status."""

    def __init__(self, emu: Emulator):
        self.emu = emu

    def _call(self, context, fn, *args):
        try:
            return fn(*args)
        except RpcError as err:
            context.abort(err.code, err.message)

    def CreateQueue(self, request, context):
        return self._call(context, self.emu.create_queue, request.parent, request.queue)

    def UpdateQueue(self, request, context):
        mask = field_mask_pb2.FieldMask(paths=list(request.update_mask.paths)) if request.update_mask else field_mask_pb2.FieldMask()
        return self._call(context, self.emu.update_queue, request.queue, mask)

    def GetQueue(self, request, context):
        return self._call(context, lambda: self.emu._queue(request.name).queue)

    def ListQueues(self, request, context):
        with self.emu.cond:
            queues = [qs.queue for name, qs in sorted(self.emu.queues.items()) if name.startswith(request.parent + "/")]
        return ListQueuesResponse(queues=queues)

    def DeleteQueue(self, request, context):
        self._call(context, self.emu.delete_queue, request.name)
        return empty_pb2.Empty()

    def PurgeQueue(self, request, context):
        return self._call(context, self.emu.purge_queue, request.name)

    def PauseQueue(self, request, context):
        return self._call(context, self.emu.set_state, request.name, Queue.State.PAUSED)

    def ResumeQueue(self, request, context):
        return self._call(context, self.emu.set_state, request.name, Queue.State.RUNNING)

    def ListTasks(self, request, context):
        tasks = self._call(context, self.emu.list_tasks, request.parent, full(request))
        start = int(request.page_token or 0)
        size = request.page_size or 1000
        page = tasks[start:start + size]
        token = str(start + size) if start + size < len(tasks) else ""
        return ListTasksResponse(tasks=page, next_page_token=token)

    def GetTask(self, request, context):
        return self._call(context, self.emu.get_task, request.name, full(request))

    def CreateTask(self, request, context):
        return self._call(context, self.emu.create_task, request.parent, request.task, full(request))

    def DeleteTask(self, request, context):
        self._call(context, self.emu.delete_task, request.name)
        return empty_pb2.Empty()

    def RunTask(self, request, context):
        return self._call(context, self.emu.run_task, request.name, full(request))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1", help="must be a loopback address")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--tombstone-seconds", type=float, default=3600.0,
                    help="how long a task name stays taken after the task ran or was deleted")
    ap.add_argument("--workers", type=int, default=256, help="dispatch thread pool size")
    ap.add_argument("--min-dispatch-deadline", type=float, default=MIN_DISPATCH_DEADLINE,
                    help="smallest dispatch_deadline accepted (Cloud Tasks: 15 s); lower it to test timeouts")
    ap.add_argument("--certs-port", type=int, default=0,
                    help=f"serve the OIDC signing key's certificate at http://HOST:PORT{CERTS_PATH} (0: not served)")
    ap.add_argument("--signing-key-file", type=Path,
                    help="also write the throwaway signing key there (JSON, mode 0600), for tests that mint tokens")
    args = ap.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        ap.error("refusing to bind a non-loopback address")

    signer = OidcSigner()
    if args.signing_key_file:
        signer.write_key_file(args.signing_key_file)
    certs_host = "127.0.0.1" if args.host == "localhost" else args.host
    certs = serve_certs(signer, certs_host, args.certs_port) if args.certs_port else None
    emu = Emulator(args.tombstone_seconds, args.workers, args.min_dispatch_deadline, signer)
    server = grpc.server(ThreadPoolExecutor(max_workers=32, thread_name_prefix="grpc"))
    add_CloudTasksServicer_to_server(Servicer(emu), server)
    address = f"[::1]:{args.port}" if args.host == "::1" else f"{args.host}:{args.port}"
    if args.host == "localhost":
        address = f"127.0.0.1:{args.port}"  # "localhost" may resolve to every loopback; be exact
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError:  # newer grpcio raises instead of returning 0
        bound = 0
    if not bound:
        log(event="error", message=f"cannot bind {address}")
        return 1
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server.start()
    threading.Thread(target=emu.scheduler, name="scheduler", daemon=True).start()
    log(event="started", address=address, pid=os.getpid(), oidc_key_id=signer.key_id,
        certs_url=f"http://{certs_host}:{args.certs_port}{CERTS_PATH}" if certs else None)
    while not stop.wait(3600):
        pass
    log(event="stopping")
    server.stop(grace=1).wait()
    emu.stop(grace=2.0)
    log(event="stopped", abandoned_dispatches=emu.total_inflight)
    sys.stderr.flush()
    # Dispatch threads may still be blocked in an HTTP call for up to dispatch_deadline; their
    # results are not wanted any more, so do not let interpreter shutdown join them.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
