"""What integration tests do over and over: talk to the API, wait, and look where a user looks."""
from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from typing import Any

import google_crc32c
import requests
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

TERMINAL = {"succeeded", "failed", "cancelled"}


def gcs_bucket(stack) -> storage.Bucket:
    """The stack's bucket, through the GCS emulator, without touching os.environ."""
    client = storage.Client(
        project=stack.env["GOOGLE_CLOUD_PROJECT"],
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": stack.env["STORAGE_EMULATOR_HOST"]},
    )
    return client.bucket(stack.env["VEO_BUCKET"])


def crc32c(data: bytes) -> str:
    """An object's crc32c as Cloud Storage reports it (and every output records it): base64 of the big-endian CRC32C."""
    return base64.b64encode(google_crc32c.Checksum(data).digest()).decode()


def md5(data: bytes) -> str:
    """An object's md5Hash as Cloud Storage reports it: base64 of the MD5."""
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def landed_job_json(bucket: storage.Bucket, job_id: str, timeout_s: float = 10) -> storage.Blob:
    """The job's job.json, once it lands: it is written a moment after the job reads succeeded
    (and before the job.succeeded webhook is queued)."""
    deadline = time.monotonic() + timeout_s
    while (blob := bucket.get_blob(f"videos/{job_id}/job.json")) is None:
        assert time.monotonic() < deadline, f"no job.json for {job_id} after {timeout_s} s"
        time.sleep(0.1)
    return blob


def stored_video(bucket: storage.Bucket, output: dict[str, Any]) -> bytes:
    """An output's video as the bucket holds it, checked against the crc32c and md5 the job recorded."""
    data = bucket.blob(output["name"]).download_as_bytes()
    assert (crc32c(data), md5(data), len(data)) == (output["crc32c"], output["md5"], output["size"]), output
    return data


def unique_prompt(text: str = "a hummingbird in slow motion", directive: str = "") -> str:
    """Tests share one simulator: a unique token lets each find its own operation and calls."""
    return f"{text} #{uuid.uuid4().hex[:10]} {directive}".strip()


class Client:
    def __init__(self, stack, client_id: str = "demo"):
        """A caller of the public API with `client_id`'s dev API key (stack.api_keys)."""
        self.stack = stack
        self.client_id = client_id
        self.auth = {"Authorization": f"Bearer {stack.api_keys[client_id]}"}
        self.api = stack.function_urls["api"].rstrip("/")
        self.sim = stack.simulator_url.rstrip("/")
        self.receiver = stack.webhook_receiver_url.rstrip("/")

    def submit(self, body: dict[str, Any], headers: dict[str, str] | None = None, **kwargs) -> requests.Response:
        return requests.post(f"{self.api}/jobs", json=body, timeout=30, headers={**self.auth, **(headers or {})}, **kwargs)

    def get(self, job_id: str) -> requests.Response:
        return requests.get(f"{self.api}/jobs/{job_id}", timeout=10, headers=self.auth)

    def cancel(self, job_id: str) -> requests.Response:
        return requests.post(f"{self.api}/jobs/{job_id}:cancel", timeout=10, headers=self.auth)

    def job(self, job_id: str) -> dict[str, Any]:
        resp = self.get(job_id)
        resp.raise_for_status()
        return resp.json()

    def wait(self, job_id: str, statuses: set[str] = TERMINAL, timeout_s: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            job = self.job(job_id)
            if job["status"] in statuses:
                return job
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} still {job['status']} after {timeout_s}s: {job}")
            time.sleep(0.25)

    def webhooks(self, path: str, count: int = 1, timeout_s: float = 30, event: str | None = None) -> list[dict[str, Any]]:
        """What the receiver got on `path` (only events of type `event`, when given), once there
        are `count` of them or timeout_s has passed."""
        deadline = time.monotonic() + timeout_s
        while True:
            got = requests.get(f"{self.receiver}/_received", params={"path": path}, timeout=5).json()
            if event is not None:
                got = [r for r in got if json.loads(r["body"]).get("type") == event]
            if len(got) >= count or time.monotonic() > deadline:
                return got
            time.sleep(0.2)

    def hook_url(self, name: str) -> tuple[str, str]:
        path = f"/hooks/{name}-{uuid.uuid4().hex[:8]}"
        return self.receiver + path, path

    def sim_calls(self, prompt: str, kind: str | None = None) -> list[dict[str, Any]]:
        calls = requests.get(f"{self.sim}/_sim/calls", timeout=5).json()
        return [c for c in calls if prompt in (c.get("prompt") or "") and (kind is None or c.get("kind") == kind)]

    def sim_operation(self, prompt: str) -> dict[str, Any]:
        ops = [op for op in requests.get(f"{self.sim}/_sim/operations", timeout=5).json() if op.get("prompt") == prompt]
        assert len(ops) == 1, f"expected one provider operation for the prompt, found {len(ops)}"
        return ops[0]

    def send_task(self, target: str, payload: dict[str, Any]) -> requests.Response:
        """Deliver a task by hand, as Cloud Tasks would (for duplicate-delivery tests)."""
        return requests.post(
            self.stack.function_urls[target], json=payload, timeout=60,
            headers={"X-CloudTasks-QueueName": "manual", "X-CloudTasks-TaskName": "manual", "X-CloudTasks-TaskRetryCount": "0",
                     **self.stack.invoker_headers(target)},  # the invoker's OIDC token, as Cloud Tasks sends it
        )
