"""infra/smoke.sh, the after-deploy check, run against the local stack exactly as against a
deployment: the API's URL and a client's key, the bucket read through the Cloud Storage JSON API
(here the stack's fake GCS). It passes on a healthy stack, and fails (non-zero, saying why) on a
job that fails and on a video in the bucket whose bytes are not the ones the job records."""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from .helpers import unique_prompt

pytestmark = pytest.mark.integration

SMOKE = Path(__file__).resolve().parents[2] / "infra" / "smoke.sh"
JOB_LINE = re.compile(r"OK job ([0-9a-f]{8,64}) succeeded, (\d+) video\(s\) verified")


def run_smoke(stack, timeout_s: float = 90, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("VEO_") and k != "STORAGE_EMULATOR_HOST"}
    base.update({
        "VEO_URL": stack.function_urls["api"],
        "VEO_API_KEY": stack.api_keys["demo"],
        "VEO_STORAGE_URL": stack.env["STORAGE_EMULATOR_HOST"],
        "VEO_SMOKE_POLL": "0.5",
        "VEO_SMOKE_TIMEOUT": "60",
        "NO_PROXY": "127.0.0.1,localhost",
    })
    base.update(env)
    return subprocess.run(["bash", str(SMOKE)], env=base, capture_output=True, text=True, timeout=timeout_s)


@pytest.fixture(scope="module")
def passed(stack):
    """One smoke run on the healthy stack (shared: the tamper test re-checks its job)."""
    return run_smoke(stack, VEO_SMOKE_PROMPT=unique_prompt("a paper boat on a calm pond"))


def test_smoke_passes_on_a_working_deployment(passed, client, bucket):
    assert passed.returncode == 0, passed.stderr
    m = JOB_LINE.search(passed.stderr)
    assert m, passed.stderr
    job = client.job(m.group(1))
    assert job["status"] == "succeeded"
    assert "lite" in job["model"], f"smoke ran {job['model']}, not the provider's lite model"
    assert job["request"].get("sample_count") == 1
    # What the script says it verified is what a user finds in the bucket.
    out = job["outputs"][0]
    blob = bucket.get_blob(out["name"])
    assert blob is not None and blob.size == out["size"]
    assert f"{out['size']} bytes, MD5 {out['md5']} as the job says" in passed.stderr  # no sha256: the stack records none
    assert int(m.group(2)) == len(job["outputs"]) == 1  # one sample: the cheapest job


def test_smoke_fails_when_the_job_fails(stack):
    failed = run_smoke(stack, VEO_SMOKE_PROMPT=unique_prompt("a paper boat", "[sim:op_error]"))
    assert failed.returncode == 1, failed.stderr
    assert re.search(r"FAILED: job [0-9a-f]+ ended failed: \w+", failed.stderr), failed.stderr


def test_smoke_fails_when_the_bucket_holds_other_bytes_than_the_job_says(stack, passed, client, bucket):
    job_id = JOB_LINE.search(passed.stderr).group(1)
    out = client.job(job_id)["outputs"][0]
    blob = bucket.blob(out["name"])
    original = blob.download_as_bytes()
    tampered = original[:-1] + bytes([original[-1] ^ 0xFF])  # same size, one byte differs
    blob.upload_from_string(tampered, content_type="video/mp4")
    try:
        checked = run_smoke(stack, VEO_SMOKE_JOB_ID=job_id)
    finally:
        blob.upload_from_string(original, content_type="video/mp4")
    assert checked.returncode == 1, checked.stderr
    assert f"the job says {out['md5']}" in checked.stderr and "FAILED" in checked.stderr, checked.stderr
    again = run_smoke(stack, VEO_SMOKE_JOB_ID=job_id)  # the original back: the same job checks out
    assert again.returncode == 0, again.stderr


def test_smoke_refuses_to_run_without_its_inputs(stack):
    missing = run_smoke(stack, VEO_URL="")
    assert missing.returncode == 2 and "VEO_URL is not set" in missing.stderr


def test_smoke_on_vertex_leaves_nothing_under_vertex(stack, client, bucket):
    """Vertex writes the video into the bucket itself (storageUri, vertex/<job id>/); finalize
    copies it to the output prefix and removes the original, which the deployment lets it do
    (infra: finalize's objectUser on vertex/), so the smoke job leaves no staging copy behind."""
    done = run_smoke(stack, VEO_PROVIDER="vertex", VEO_SMOKE_PROMPT=unique_prompt("a paper boat on a calm pond"))
    assert done.returncode == 0, done.stderr
    job_id = JOB_LINE.search(done.stderr).group(1)
    job = client.job(job_id)
    assert job["provider"] == "vertex" and "lite" in job["model"]
    written = client.sim_operation(job["request"]["prompt"]).get("gcs_uris") or []
    assert written and all(u.startswith(f"gs://{bucket.name}/vertex/{job_id}/") for u in written), written
    assert [b.name for b in bucket.list_blobs(prefix=f"vertex/{job_id}/")] == [], "the staging copy was left behind"
    assert bucket.get_blob(job["outputs"][0]["name"]) is not None
