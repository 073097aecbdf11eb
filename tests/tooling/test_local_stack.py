"""The local stack itself: Cloud Tasks emulator semantics, fake-gcs, Firestore, process hygiene.

Each test makes its own queue (unique name) aimed at its own webhook-receiver path, so tests do
not see each other's tasks and the app's queues stay untouched.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import socket
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from google.api_core import exceptions as gexc
from google.cloud import tasks_v2

from dev.stack import BUCKET, LOCATION, PROJECT, QUEUES, REPO, LocalStack, group_members, queue_path

pytestmark = pytest.mark.integration

PARENT = f"projects/{PROJECT}/locations/{LOCATION}"


# ------------------------------------------------------------------------------------ helpers
def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def make_queue(stack, *, max_attempts=10, min_backoff=0.2, max_backoff=2.0, max_doublings=4,
               rate=500.0, concurrent=100) -> str:
    name = queue_path(f"t-{uuid.uuid4().hex[:12]}")
    stack.tasks_client().create_queue(parent=PARENT, queue=tasks_v2.Queue(
        name=name,
        rate_limits=tasks_v2.RateLimits(max_dispatches_per_second=rate, max_concurrent_dispatches=concurrent),
        retry_config=tasks_v2.RetryConfig(
            max_attempts=max_attempts, min_backoff=timedelta(seconds=min_backoff),
            max_backoff=timedelta(seconds=max_backoff), max_doublings=max_doublings),
    ))
    return name


def receiver_path() -> str:
    return f"/hook/{uuid.uuid4().hex[:12]}"


def add_task(stack, queue: str, path: str, *, task_id: str | None = None, body: bytes = b"{}",
             headers: dict | None = None, delay_s: float = 0.0, **http_extra) -> tasks_v2.Task:
    task = tasks_v2.Task(http_request=tasks_v2.HttpRequest(
        url=stack.webhook_receiver_url + path, http_method=tasks_v2.HttpMethod.POST,
        headers=headers or {"Content-Type": "application/json"}, body=body, **http_extra))
    if task_id:
        task.name = f"{queue}/tasks/{task_id}"
    if delay_s:
        task.schedule_time = datetime.now(UTC) + timedelta(seconds=delay_s)
    return stack.tasks_client().create_task(parent=queue, task=task)


def received(stack, path: str) -> list[dict]:
    r = requests.get(stack.webhook_receiver_url + "/_received", params={"path": path}, timeout=5)
    r.raise_for_status()
    return r.json()


def script(stack, path: str, responses: list) -> None:
    requests.post(stack.webhook_receiver_url + "/_behavior", json={"path": path, "responses": responses},
                  timeout=5).raise_for_status()


def header(record: dict, name: str) -> str | None:
    return {k.lower(): v for k, v in record["headers"].items()}.get(name.lower())


def emulator_certs(stack) -> dict:
    """What the Tasks emulator serves at VEO_OIDC_CERTS_URL: {key id: PEM certificate}, as Google does."""
    resp = requests.get(stack.env["VEO_OIDC_CERTS_URL"], timeout=5)
    assert resp.status_code == 200 and "max-age=" in resp.headers["Cache-Control"]
    return resp.json()


def jwt_claims(token: str, stack=None) -> dict:
    """The claims of a token the emulator signed, its RS256 signature checked against its certs."""
    from google.auth import jwt as google_jwt

    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header["alg"] == "RS256" and header["kid"]
    if stack is None:
        return google_jwt.decode(token, verify=False)
    return google_jwt.decode(token, certs=emulator_certs(stack))


# ------------------------------------------------------------------------------------ Cloud Tasks
def test_app_queues_exist_with_their_retry_config(stack):
    queues = {q.name: q for q in stack.tasks_client().list_queues(parent=PARENT)}
    for name, spec in QUEUES.items():
        q = queues[queue_path(name)]
        assert q.retry_config.max_attempts == spec["max_attempts"]
        assert q.rate_limits.max_concurrent_dispatches == spec["max_concurrent_dispatches"]
        assert q.retry_config.max_backoff.total_seconds() <= 2.0  # fast_retries
    assert queues[queue_path("veo-poll")].rate_limits.max_dispatches_per_second == 100


def test_duplicate_task_name_is_rejected_while_pending_after_delete_and_after_run(stack):
    queue, path = make_queue(stack), receiver_path()
    add_task(stack, queue, path, task_id="pending", delay_s=60)
    with pytest.raises(gexc.AlreadyExists):
        add_task(stack, queue, path, task_id="pending")

    stack.tasks_client().delete_task(name=f"{queue}/tasks/pending")
    with pytest.raises(gexc.AlreadyExists):  # tombstone
        add_task(stack, queue, path, task_id="pending")

    add_task(stack, queue, path, task_id="runs-now")
    assert wait_for(lambda: received(stack, path))
    assert wait_for(lambda: _gone(stack, f"{queue}/tasks/runs-now"))
    with pytest.raises(gexc.AlreadyExists):
        add_task(stack, queue, path, task_id="runs-now")
    # Gone means its attempt was answered 2xx: nothing is left to dispatch it again.
    assert [header(r, "X-CloudTasks-TaskName") for r in received(stack, path)] == ["runs-now"]


def _gone(stack, name: str) -> bool:
    try:
        stack.tasks_client().get_task(name=name)
        return False
    except gexc.NotFound:
        return True


# Run in the emulator's own virtualenv (its gRPC stubs pin an old protobuf): 30,000 tasks created
# and deleted, so 30,000 names stay reserved for their hour.
_RESERVE_NAMES = """
import json, sys
sys.path.insert(0, sys.argv[1])
from dev.tasks_emulator import Emulator, Queue, RpcError, Task
emu = Emulator(tombstone_seconds=3600.0, workers=1)
parent = "projects/p/locations/l/queues/q"
emu.create_queue("projects/p/locations/l", Queue(name=parent))
passes, seen = 0, emu.tombstones
for i in range(30000):
    task = Task(name=f"{parent}/tasks/t{i}")
    task.http_request.url = "http://127.0.0.1:9/x"
    emu.create_task(parent, task, False)
    emu.delete_task(task.name)
    if emu.tombstones is not seen:
        passes, seen = passes + 1, emu.tombstones
try:
    emu.create_task(parent, Task(name=f"{parent}/tasks/t0", http_request={"url": "http://127.0.0.1:9/x"}), False)
    reuse = "created"
except RpcError as exc:
    reuse = exc.code.name
print(json.dumps({"passes": passes, "kept": len(emu.tombstones), "reuse": reuse}))
"""


def test_reserved_task_names_are_not_rescanned_on_every_create():
    """Past 10,000 reserved names CreateTask stays O(1): the expiry pass over them (under the
    emulator's one lock) runs a few times as they grow, not on every create, and every name
    stays reserved for its hour."""
    tasks_python = REPO / ".venv-tasks" / "bin" / "python"
    out = subprocess.run([str(tasks_python), "-c", _RESERVE_NAMES, str(REPO)], capture_output=True, text=True,
                         timeout=120, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["kept"] == 30000 and result["reuse"] == "ALREADY_EXISTS"
    assert 1 <= result["passes"] <= 5  # one pass per create past 10,000 would be 20,000


def test_delivery_carries_body_headers_and_cloud_tasks_headers(stack):
    queue, path = make_queue(stack), receiver_path()
    body = json.dumps({"hello": "world"}).encode()
    before = time.time()
    add_task(stack, queue, path, task_id="hdrs", body=body,
             headers={"Content-Type": "application/json", "X-Custom": "yes"},
             oidc_token=tasks_v2.OidcToken(service_account_email="tasks@veo-relay-local.iam.gserviceaccount.com",
                                           audience="https://relay.example/aud"))
    records = wait_for(lambda: received(stack, path))
    assert len(records) == 1
    rec = records[0]
    assert rec["body"] == body.decode()
    assert header(rec, "Content-Type") == "application/json"
    assert header(rec, "X-Custom") == "yes"
    assert header(rec, "X-CloudTasks-QueueName") == queue.rsplit("/", 1)[-1]
    assert header(rec, "X-CloudTasks-TaskName") == "hdrs"
    assert header(rec, "X-CloudTasks-TaskRetryCount") == "0"
    assert header(rec, "X-CloudTasks-TaskExecutionCount") == "0"
    assert before - 1 <= float(header(rec, "X-CloudTasks-TaskETA")) <= time.time()
    scheme, token = header(rec, "Authorization").split(" ", 1)
    assert scheme == "Bearer"
    claims = jwt_claims(token, stack)
    assert claims["email"] == "tasks@veo-relay-local.iam.gserviceaccount.com"
    assert claims["aud"] == "https://relay.example/aud"


def test_oidc_audience_defaults_to_the_url(stack):
    queue, path = make_queue(stack), receiver_path()
    add_task(stack, queue, path, oidc_token=tasks_v2.OidcToken(service_account_email="sa@x.iam.gserviceaccount.com"))
    rec = wait_for(lambda: received(stack, path))[0]
    assert jwt_claims(header(rec, "Authorization").split(" ", 1)[1])["aud"] == stack.webhook_receiver_url + path


def test_oidc_tokens_are_signed_like_googles_and_verify_with_the_served_certs(stack):
    """The emulator signs RS256 ID tokens with a throwaway key; its certificate is served in
    Google's certs format, and the functions' own check (gcp/oidc.py) accepts the token."""
    from veorelay.gcp.oidc import IdTokenVerifier

    queue, path = make_queue(stack), receiver_path()
    audience = "https://us-central1-p.cloudfunctions.net/poll-job"
    add_task(stack, queue, path, oidc_token=tasks_v2.OidcToken(service_account_email="veo-tasks@p.iam.gserviceaccount.com",
                                                               audience=audience))
    token = header(wait_for(lambda: received(stack, path))[0], "Authorization").split(" ", 1)[1]

    claims = jwt_claims(token, stack)
    assert claims["iss"] == "https://accounts.google.com" and claims["email_verified"] is True
    assert claims["exp"] - claims["iat"] == 3600 and abs(claims["iat"] - time.time()) < 60
    assert claims["sub"].isdigit() and claims["azp"] == claims["sub"]
    caller = IdTokenVerifier().verify(f"Bearer {token}", own_urls=(audience,), email="veo-tasks@p.iam.gserviceaccount.com",
                                      certs_url=stack.env["VEO_OIDC_CERTS_URL"])
    assert caller.audience == audience


def test_the_stacks_key_file_mints_tokens_the_served_certs_verify_and_only_it_can(stack):
    key = json.loads(stack.oidc_key_file.read_text())
    assert oct(stack.oidc_key_file.stat().st_mode & 0o777) == "0o600"
    certs = emulator_certs(stack)
    assert list(certs) == [key["kid"]] and certs[key["kid"]].startswith("-----BEGIN CERTIFICATE-----")
    token = stack.oidc_token("http://127.0.0.1:1/x")
    assert jwt_claims(token, stack)["email"] == stack.env["VEO_TASKS_SERVICE_ACCOUNT"]
    from google.auth import jwt as google_jwt
    from google.auth.exceptions import GoogleAuthError
    with pytest.raises((GoogleAuthError, ValueError)):
        google_jwt.decode(token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB"), certs=certs)  # a byte changed


def test_the_certs_endpoint_answers_only_its_path(stack):
    base = stack.env["VEO_OIDC_CERTS_URL"].rsplit("/oauth2/", 1)[0]
    assert requests.get(base + "/private-key", timeout=5).status_code == 404
    assert "PRIVATE" not in requests.get(stack.env["VEO_OIDC_CERTS_URL"], timeout=5).text


def test_503_is_retried_with_growing_backoff_then_succeeds(stack):
    queue, path = make_queue(stack, min_backoff=0.3, max_backoff=5, max_doublings=3), receiver_path()
    script(stack, path, [503, {"status": 503, "retry_after": 1}, 200])
    add_task(stack, queue, path, task_id="flaky")
    records = wait_for(lambda: len(received(stack, path)) >= 3 and received(stack, path), timeout=10)
    assert [r["status"] for r in records] == [503, 503, 200]
    assert [header(r, "X-CloudTasks-TaskRetryCount") for r in records] == ["0", "1", "2"]
    # 5xx answers do not count as executions (Cloud Tasks documents this for TaskExecutionCount).
    assert [header(r, "X-CloudTasks-TaskExecutionCount") for r in records] == ["0", "0", "0"]
    assert header(records[1], "X-CloudTasks-TaskPreviousResponse") == "503"
    gap1 = records[1]["received_at"] - records[0]["received_at"]
    gap2 = records[2]["received_at"] - records[1]["received_at"]
    assert 0.25 <= gap1 < 3.0  # min_backoff 0.3 s (upper bounds are loose: 2 busy cores)
    assert 0.55 <= gap2 < 5.0  # doubled
    assert wait_for(lambda: _gone(stack, f"{queue}/tasks/flaky"))  # done: no attempt is left to come
    assert len(received(stack, path)) == 3


def test_4xx_answers_count_as_executions_and_are_retried(stack):
    queue, path = make_queue(stack, min_backoff=0.1, max_backoff=0.2), receiver_path()
    script(stack, path, [429, 410, 200])
    add_task(stack, queue, path)
    records = wait_for(lambda: len(received(stack, path)) >= 3 and received(stack, path))
    assert [header(r, "X-CloudTasks-TaskExecutionCount") for r in records] == ["0", "1", "2"]


def test_schedule_time_is_honoured(stack):
    queue, path = make_queue(stack), receiver_path()
    created = time.time()
    task = add_task(stack, queue, path, delay_s=1.5)
    rec = wait_for(lambda: received(stack, path), timeout=10)[0]
    assert rec["received_at"] - created >= 1.4
    assert abs(float(header(rec, "X-CloudTasks-TaskETA")) - task.schedule_time.timestamp()) < 0.01


def test_gives_up_after_max_attempts(stack):
    queue, path = make_queue(stack, max_attempts=3, min_backoff=0.1, max_backoff=0.2), receiver_path()
    script(stack, path, [500] * 10)
    add_task(stack, queue, path, task_id="doomed")
    assert wait_for(lambda: len(received(stack, path)) >= 3, timeout=10)
    assert wait_for(lambda: _gone(stack, f"{queue}/tasks/doomed"))  # given up: no 4th attempt can come
    assert [r["status"] for r in received(stack, path)] == [500, 500, 500]


def test_get_and_delete_task(stack):
    client = stack.tasks_client()
    queue, path = make_queue(stack), receiver_path()
    created = add_task(stack, queue, path, task_id="later", delay_s=1.0)
    name = f"{queue}/tasks/later"
    got = client.get_task(name=name)
    assert got.name == name == created.name
    assert got.schedule_time == created.schedule_time
    assert got.http_request.url == stack.webhook_receiver_url + path
    assert [t.name for t in client.list_tasks(parent=queue)] == [name]
    client.delete_task(name=name)
    with pytest.raises(gexc.NotFound):
        client.get_task(name=name)
    with pytest.raises(gexc.NotFound):
        client.delete_task(name=name)
    with pytest.raises(gexc.NotFound):
        client.get_task(name=f"{queue}/tasks/never-existed")
    # A task due after the deleted one is delivered, and is the only one that is.
    add_task(stack, queue, path, task_id="after", delay_s=1.0)
    records = wait_for(lambda: received(stack, path), timeout=10)
    assert [header(r, "X-CloudTasks-TaskName") for r in records] == ["after"]


def test_pause_resume_and_run_task(stack):
    client = stack.tasks_client()
    queue, path = make_queue(stack), receiver_path()
    client.pause_queue(name=queue)
    add_task(stack, queue, path, task_id="held")
    time.sleep(0.5)  # long enough for a queue that ignored the pause to dispatch it
    resumed_at = time.time()
    client.resume_queue(name=queue)
    [held] = wait_for(lambda: received(stack, path))
    # Its first attempt came after the resume (an attempt while paused would have been answered
    # 200 and been the only one).
    assert header(held, "X-CloudTasks-TaskRetryCount") == "0" and held["received_at"] >= resumed_at

    add_task(stack, queue, path, task_id="far-future", delay_s=3600)
    client.run_task(name=f"{queue}/tasks/far-future")
    assert wait_for(lambda: len(received(stack, path)) == 2)


def test_purge_queue_drops_pending_tasks(stack):
    client = stack.tasks_client()
    queue, path = make_queue(stack), receiver_path()
    for i in range(3):
        add_task(stack, queue, path, task_id=f"p{i}", delay_s=1.0)
    client.purge_queue(name=queue)
    assert list(client.list_tasks(parent=queue)) == []
    # A task added after the purge, due after the purged ones, is delivered, and is the only one.
    add_task(stack, queue, path, task_id="after-purge", delay_s=1.0)
    records = wait_for(lambda: received(stack, path), timeout=10)
    assert [header(r, "X-CloudTasks-TaskName") for r in records] == ["after-purge"]


def test_max_concurrent_dispatches_is_respected(stack):
    queue, path = make_queue(stack, concurrent=2), receiver_path()
    script(stack, path, [{"status": 200, "delay": 0.5}] * 6)
    for _ in range(6):
        add_task(stack, queue, path)
    records = wait_for(lambda: len(received(stack, path)) >= 6 and received(stack, path), timeout=10)
    times = sorted(r["received_at"] for r in records)
    # Two at a time, each taking 0.5 s: three waves.
    assert times[-1] - times[0] >= 0.9
    for t in times:
        assert sum(1 for u in times if t <= u < t + 0.4) <= 2


def test_max_dispatches_per_second_is_respected(stack):
    queue, path = make_queue(stack, rate=4), receiver_path()
    for _ in range(10):
        add_task(stack, queue, path)
    records = wait_for(lambda: len(received(stack, path)) >= 10 and received(stack, path), timeout=10)
    times = sorted(r["received_at"] for r in records)
    # A burst of 4, then one every 0.25 s.
    assert times[-1] - times[0] >= 1.3


def test_bad_requests_are_rejected(stack):
    queue, path = make_queue(stack), receiver_path()
    with pytest.raises(gexc.InvalidArgument):
        add_task(stack, queue, path, task_id="bad/slash")
    with pytest.raises(gexc.InvalidArgument):  # Cloud Tasks allows deadlines in [15 s, 30 min]
        stack.tasks_client().create_task(parent=queue, task=tasks_v2.Task(
            http_request=tasks_v2.HttpRequest(url=stack.webhook_receiver_url + path),
            dispatch_deadline=timedelta(seconds=5)))
    with pytest.raises(gexc.NotFound):
        add_task(stack, queue_path("no-such-queue"), path)


# ------------------------------------------------------------------------------------ GCS, Firestore
def test_fake_gcs_has_the_bucket_and_round_trips_objects(stack_env):
    from google.cloud import storage

    client = storage.Client(project=PROJECT)
    bucket = client.bucket(BUCKET)
    assert bucket.exists()
    blob = bucket.blob(f"test/{uuid.uuid4().hex}.txt")
    blob.upload_from_string(b"hello", content_type="text/plain")
    assert bucket.blob(blob.name).download_as_bytes() == b"hello"


def test_firestore_answers_and_clear_firestore_empties_it(stack_env):
    from google.cloud import firestore

    db = firestore.Client(project=PROJECT)
    ref = db.collection("stack-test").document(uuid.uuid4().hex)
    ref.set({"n": 1})
    assert ref.get().to_dict() == {"n": 1}
    stack_env.clear_firestore()
    assert not ref.get().exists


# ------------------------------------------------------------------------------------ network, processes
def _listening_sockets(pids) -> list[str]:
    """Local addresses of LISTEN sockets owned by the given PIDs (from /proc)."""
    inodes = set()
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = str(fd.readlink()) if fd.is_symlink() else ""
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    addresses = []
    for table, _width in (("tcp", 8), ("tcp6", 32)):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            cols = line.split()
            if cols[3] == "0A" and cols[9] in inodes:  # 0A = LISTEN
                hex_ip, hex_port = cols[1].split(":")
                raw = bytes.fromhex(hex_ip)
                # /proc stores the address as host-order 32-bit words.
                raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
                ip = ipaddress.ip_address(raw)
                if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
                    ip = ip.ipv4_mapped
                addresses.append(f"{ip}:{int(hex_port, 16)}")
    return addresses


def test_every_listening_socket_is_loopback(stack):
    members = group_members(stack.pids().values())
    addresses = _listening_sockets(members)
    assert addresses, "found no listening sockets at all"
    ports = {a.rsplit(":", 1)[1] for a in addresses}
    assert {str(p) for name, p in stack.ports.items() if name in stack.procs} <= ports
    for address in addresses:
        assert ipaddress.ip_address(address.rsplit(":", 1)[0]).is_loopback, address


def _non_loopback_ipv4() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing interface
            ip = s.getsockname()[0]
        except OSError:
            return None
    return None if ipaddress.ip_address(ip).is_loopback else ip


def test_ports_refuse_connections_on_a_non_loopback_address(stack):
    ip = _non_loopback_ipv4()
    if ip is None:
        pytest.skip("this machine has no non-loopback IPv4 address to try")
    for name, port in stack.ports.items():
        if name not in stack.procs:
            continue
        with pytest.raises(OSError):
            socket.create_connection((ip, port), timeout=1).close()


def test_function_crash_restart_and_stop_leaves_nothing_running(tmp_path):
    source = tmp_path / "main.py"
    source.write_text(
        "import functions_framework\n\n"
        "@functions_framework.http\n"
        "def hello(request):\n"
        "    return 'hello'\n")
    stack = LocalStack(functions=["hello"], functions_source=source, simulator=False, workdir=tmp_path / "run")
    with stack:
        url = stack.function_urls["hello"]
        assert requests.get(url, timeout=5).text == "hello"
        assert stack.env["VEO_HELLO_URL"] == url
        stack.kill_function("hello")
        with pytest.raises(requests.ConnectionError):
            requests.get(url, timeout=2)
        stack.restart_function("hello")
        assert requests.get(url, timeout=5).text == "hello"
        pgids = list(stack.pids().values())
        members = group_members(pgids)
        assert len(members) > len(pgids)  # gunicorn workers, at least
        assert (tmp_path / "run" / "logs" / "firestore.log").exists()
        before = os.environ.get("FIRESTORE_EMULATOR_HOST")
        stack.apply_env()
        assert os.environ["FIRESTORE_EMULATOR_HOST"] == stack.firestore_host
    assert os.environ.get("FIRESTORE_EMULATOR_HOST") == before  # stop() restored it
    assert group_members(pgids) == {}
    for pid in members:
        assert not Path(f"/proc/{pid}").exists() or _is_zombie(pid), pid


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2] == "Z"
