"""Secrets never leave: after jobs that succeed, fail and retry (and everything the session ran
before), no provider key, webhook secret or API key (nor an API key's hash) appears in the
functions' logs, the job documents, the objects in the bucket, or the webhooks sent."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import requests

from dev.stack import DEV_API_KEYS, DEV_WEBHOOK_SECRET, PROVIDERS

from .helpers import Client, gcs_bucket, unique_prompt
from .reliability import FINAL_EVENTS, jobs_collection

pytestmark = pytest.mark.integration


def secrets_of(stack) -> dict[str, str]:
    found = {f"{p} provider key": stack.env[f"VEO_{p.upper().replace('-', '_')}_API_KEY"] for p in PROVIDERS}
    found["flow Google token"] = stack.env["VEO_FLOW_GOOGLE_TOKEN"]
    found["webhook secret"] = DEV_WEBHOOK_SECRET
    found["webhook secret bytes"] = DEV_WEBHOOK_SECRET.removeprefix("whsec_")
    for client, key in DEV_API_KEYS.items():
        found[f"{client} API key"] = key
        found[f"{client} API key hash"] = hashlib.sha256(key.encode()).hexdigest()
    for client, values in json.loads(stack.env.get("VEO_WEBHOOK_SECRETS") or "{}").items():
        for i, value in enumerate(values):
            found[f"{client} webhook secret {i}"] = value
    return found


def leaks(text: str, secrets: dict[str, str]) -> list[str]:
    return [name for name, value in secrets.items() if value and value in text]


def test_no_secret_in_logs_job_documents_objects_or_webhooks(stack):
    client = Client(stack)
    secrets = secrets_of(stack)
    # A few more jobs through the paths that handle provider answers and errors.
    hook_url, hook_path = client.hook_url("secrets")
    ids = [client.submit({"prompt": unique_prompt(directive=d), "webhook_url": hook_url}).json()["id"]
           for d in ("", "[sim:op_error]", "[sim:expired]", "[sim:poll_500x1]", "[sim:submit_429x1]")]
    finals = {job_id: client.wait(job_id, timeout_s=120)["status"] for job_id in ids}
    assert list(finals.values()) == ["succeeded", "failed", "failed", "succeeded", "succeeded"]
    # Each job's start and end (the default events) reached the receiver: they are checked below.
    sent = {(json.loads(r["body"])["data"]["id"], json.loads(r["body"])["type"]) for r in client.webhooks(hook_path, count=2 * len(ids))}
    assert sent == {(job_id, event) for job_id, status in finals.items() for event in ("job.running", FINAL_EVENTS[status])}

    logs_dir = Path(stack.workdir) / "logs"
    function_logs = [logs_dir / f"{name}.log" for name in stack.functions]
    assert all(path.stat().st_size for path in function_logs if path.stem in ("api", "poll_job", "deliver_webhook"))
    for path in [*function_logs, logs_dir / "tasks.log"]:
        assert not leaks(path.read_text(errors="replace"), secrets), f"{path.name} leaks {leaks(path.read_text(errors='replace'), secrets)}"

    for snap in jobs_collection(stack).stream():
        doc = json.dumps(snap.to_dict(), default=str)
        assert not leaks(doc, secrets), f"job {snap.id} leaks {leaks(doc, secrets)}"

    for blob in gcs_bucket(stack).list_blobs(prefix="videos/"):
        if blob.name.endswith(".json"):
            assert not leaks(blob.download_as_text(), secrets), blob.name
        assert not leaks(json.dumps(blob.metadata or {}), secrets), blob.name

    received = requests.get(f"{client.receiver}/_received", timeout=10).json()  # every path
    assert received
    for record in received:
        assert not leaks(record["body"] + json.dumps(record["headers"]), secrets), record["path"]
