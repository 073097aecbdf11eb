"""One job end to end on the real emulators and the litellm-gemini simulator."""
from __future__ import annotations

import hashlib
import json

import pytest
import standardwebhooks
from google.cloud import storage

from .helpers import crc32c, landed_job_json, md5, unique_prompt
from .reliability import drained

pytestmark = pytest.mark.integration


def objects_of(bucket, job_id: str) -> dict[str, storage.Blob]:
    return {b.name: b for b in bucket.list_blobs(prefix=f"videos/{job_id}/")}


def test_a_job_ends_as_a_verified_video_in_the_bucket_and_a_signed_webhook(client, bucket, stack):
    hook_url, hook_path = client.hook_url("happy")
    prompt = unique_prompt()
    resp = client.submit({"prompt": prompt, "webhook_url": hook_url, "metadata": {"order": 42}})
    assert resp.status_code == 202, resp.text
    accepted = resp.json()
    assert accepted["status"] == "accepted" and accepted["links"]["self"] == f"/jobs/{accepted['id']}"

    job = client.wait(accepted["id"])
    assert job["status"] == "succeeded", job
    assert set(job["timestamps"]) == {"accepted", "running", "downloading", "succeeded"}
    assert job["metadata"] == {"order": 42}
    assert job["provider"] == "litellm-gemini" and job["model"] == "veo-3.1-generate-preview"

    served = client.sim_operation(prompt)["outputs"]
    [output] = job["outputs"]
    assert output["uri"] == f"gs://{stack.env['VEO_BUCKET']}/videos/{job['id']}/0.mp4"
    assert output["size"] == served[0]["size"]
    assert output["content_type"] == "video/mp4"

    blob = bucket.blob(f"videos/{job['id']}/0.mp4")
    data = blob.download_as_bytes()
    assert hashlib.sha256(data).hexdigest() == served[0]["sha256"]  # the very bytes the provider served
    assert data[4:8] == b"ftyp"
    assert (output["crc32c"], output["md5"]) == (crc32c(data), md5(data)) and "sha256" not in output
    blob.reload()
    assert blob.content_type == "video/mp4" and (blob.crc32c, blob.md5_hash) == (output["crc32c"], output["md5"])
    assert blob.metadata["job_id"] == job["id"] and "sha256" not in blob.metadata
    assert json.loads(landed_job_json(bucket, job["id"]).download_as_text())["status"] == "succeeded"
    assert set(objects_of(bucket, job["id"])) == {f"videos/{job['id']}/0.jpg", f"videos/{job['id']}/0.mp4", f"videos/{job['id']}/job.json"}

    [hook] = client.webhooks(hook_path, event="job.succeeded")
    event = standardwebhooks.Webhook(stack.env["VEO_WEBHOOK_SECRET"]).verify(hook["body"], hook["headers"])
    assert event["type"] == "job.succeeded"
    assert event["data"]["id"] == job["id"] and event["data"]["outputs"][0]["crc32c"] == output["crc32c"]
    assert len(client.sim_calls(prompt, "submit")) == 1


def test_duplicate_and_late_tasks_change_nothing(client, bucket, stack):
    hook_url, hook_path = client.hook_url("dupes")
    prompt = unique_prompt()
    job_id = client.submit({"prompt": prompt, "webhook_url": hook_url}).json()["id"]
    before = client.wait(job_id)
    assert before["status"] == "succeeded"
    client.webhooks(hook_path, event="job.succeeded")

    provider_calls_before = len(client.sim_calls(prompt))
    for target, payload in [("submit_job", {"job_id": job_id}), ("poll_job", {"job_id": job_id, "poll": 1}),
                            ("poll_job", {"job_id": job_id, "poll": 2}), ("finalize_job", {"job_id": job_id}),
                            ("finalize_job", {"job_id": job_id})]:
        assert client.send_task(target, payload).status_code == 200

    after = client.job(job_id)
    # A late task reaches no provider: no second submission, no poll, no second download.
    assert len(client.sim_calls(prompt)) == provider_calls_before
    assert {k: after[k] for k in ("status", "outputs", "timestamps", "error")} == {k: before[k] for k in ("status", "outputs", "timestamps", "error")}
    assert len(client.sim_calls(prompt, "submit")) == 1
    assert len([n for n in objects_of(bucket, job_id) if n.endswith(".mp4")]) == 1
    # Every webhook task of the job has run (a late task would have queued its event by now,
    # before it answered): still one job.succeeded.
    drained(stack, "veo-webhooks", job_id)
    assert len(client.webhooks(hook_path, timeout_s=0, event="job.succeeded")) == 1


# op_error: the operation's own error object (code 13, INTERNAL), mapped to the vocabulary.
@pytest.mark.parametrize("directive,code", [("[sim:op_error]", "provider_error"), ("[sim:rai_filtered]", "rai_filtered")])
def test_provider_failures_end_failed_with_their_code_and_a_webhook(client, bucket, stack, directive, code):
    hook_url, hook_path = client.hook_url("fail")
    prompt = unique_prompt(directive=directive)
    job_id = client.submit({"prompt": prompt, "webhook_url": hook_url}).json()["id"]
    job = client.wait(job_id)
    assert (job["status"], job["error"]["code"], job["error"]["retryable"]) == ("failed", code, False), job["error"]
    assert job["error"]["message"]
    [hook] = client.webhooks(hook_path, event="job.failed")
    event = standardwebhooks.Webhook(stack.env["VEO_WEBHOOK_SECRET"]).verify(hook["body"], hook["headers"])
    assert event["type"] == "job.failed" and event["data"]["error"]["code"] == job["error"]["code"]
    assert objects_of(bucket, job_id) == {}


@pytest.mark.parametrize("directive", ["[sim:html_200]", "[sim:truncated]", "[sim:wrong_length]"])
def test_a_download_that_is_not_a_whole_video_fails_and_leaves_no_object(client, bucket, directive):
    hook_url, hook_path = client.hook_url("badvideo")
    job_id = client.submit({"prompt": unique_prompt(directive=directive), "webhook_url": hook_url}).json()["id"]
    job = client.wait(job_id, timeout_s=90)
    assert job["status"] == "failed", job
    assert job["error"]["code"] == "download_invalid"
    assert objects_of(bucket, job_id) == {}
    [hook] = client.webhooks(hook_path, event="job.failed")
    assert json.loads(hook["body"])["data"]["error"]["code"] == "download_invalid"


def test_an_expired_download_fails_with_download_expired(client, bucket):
    job_id = client.submit({"prompt": unique_prompt(directive="[sim:expired]")}).json()["id"]
    job = client.wait(job_id)
    assert (job["status"], job["error"]["code"]) == ("failed", "download_expired")
    assert objects_of(bucket, job_id) == {}
