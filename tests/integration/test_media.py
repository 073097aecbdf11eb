"""Deep output checks end to end, on the real emulators and simulators: every video read back
from the bucket (media), its first frame stored beside it (poster), a video unlike the request
a warning the client sees, a file with no video track a failed job with nothing left."""
from __future__ import annotations

import io
import time

import pytest
import requests
import standardwebhooks
from PIL import Image

from .helpers import landed_job_json, unique_prompt

pytestmark = pytest.mark.integration


def names_of(bucket, job_id: str) -> set[str]:
    return {b.name for b in bucket.list_blobs(prefix=f"videos/{job_id}/")}


def test_a_normal_job_has_its_media_and_a_poster_of_its_first_frame(client, bucket, stack):
    hook_url, hook_path = client.hook_url("media")
    resp = client.submit({"prompt": unique_prompt(), "aspect_ratio": "9:16", "duration_seconds": 6, "webhook_url": hook_url})
    assert resp.status_code == 202, resp.text

    job = client.wait(resp.json()["id"])

    assert job["status"] == "succeeded" and job["warnings"] == [], job
    [output] = job["outputs"]
    assert output["media"] == {"duration_seconds": 6.0, "width": 720, "height": 1280, "video_codec": "h264",
                               "audio_codec": "aac", "has_audio": True}
    poster = output["poster"]
    assert poster["name"] == f"videos/{job['id']}/0.jpg" and poster["content_type"] == "image/jpeg"
    blob = bucket.get_blob(poster["name"])
    data = blob.download_as_bytes()
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG" and image.size == (720, 1280) and len(data) == poster["size"]
    assert blob.content_type == "image/jpeg" and blob.metadata["job_id"] == job["id"] and blob.metadata["output_index"] == "0"
    assert blob.metadata["video_crc32c"] == output["crc32c"] and "sha256" not in blob.metadata
    landed_job_json(bucket, job["id"])
    assert names_of(bucket, job["id"]) == {f"videos/{job['id']}/0.mp4", f"videos/{job['id']}/0.jpg", f"videos/{job['id']}/job.json"}

    # The webhook hands a signed URL for the poster too, and it fetches the same JPEG.
    [hook] = client.webhooks(hook_path, event="job.succeeded")
    event = standardwebhooks.Webhook(stack.env["VEO_WEBHOOK_SECRET"]).verify(hook["body"], hook["headers"])
    signed = event["data"]["outputs"][0]["poster"]["signed_url"]
    assert signed and requests.get(signed, timeout=10).content == data


def test_an_index_at_the_end_of_the_file_is_found_through_the_bucket_reader(client, bucket):
    # ftyp, mdat, 8 MiB of padding, then moov: the read-back seeks to the end of the object.
    job_id = client.submit({"prompt": unique_prompt(directive="[sim:moov_last,size=8MiB]"), "duration_seconds": 8}).json()["id"]

    job = client.wait(job_id)

    assert job["status"] == "succeeded" and job["warnings"] == [], job
    [output] = job["outputs"]
    assert output["size"] == 8 << 20 and output["media"]["duration_seconds"] == 8.0 and output["media"]["width"] == 1280
    assert Image.open(io.BytesIO(bucket.blob(output["poster"]["name"]).download_as_bytes())).size == (1280, 720)


@pytest.mark.parametrize("body, warning", [
    ({"prompt": "[sim:clip_seconds=4]", "duration_seconds": 8},
     {"code": "duration_mismatch", "output": 0, "message": "output 0 lasts 4 s; 8 s were asked for"}),
    ({"prompt": "[sim:no_audio]", "provider": "vertex", "generate_audio": True},
     {"code": "audio_missing", "output": 0, "message": "output 0 has no audio track; generate_audio was asked for"}),
], ids=["duration", "audio"])
def test_a_video_unlike_the_request_succeeds_with_a_warning_the_client_sees(client, bucket, body, warning):
    resp = client.submit({**body, "prompt": unique_prompt(directive=body["prompt"])})
    assert resp.status_code == 202, resp.text

    job = client.wait(resp.json()["id"])

    assert job["status"] == "succeeded" and job["warnings"] == [warning], job
    assert names_of(bucket, job["id"]) >= {job["outputs"][0]["name"], job["outputs"][0]["poster"]["name"]}  # kept
    assert client.job(job["id"])["warnings"] == [warning]  # GET /jobs/{id} keeps saying so


@pytest.mark.parametrize("directive, why", [("no_video_track", "no video track"), ("zero_duration", "zero seconds")])
def test_a_file_with_no_video_fails_download_invalid_and_leaves_no_object(client, bucket, directive, why):
    job_id = client.submit({"prompt": unique_prompt(directive=f"[sim:{directive}]")}).json()["id"]

    job = client.wait(job_id)

    assert job["status"] == "failed" and job["error"]["code"] == "download_invalid" and why in job["error"]["message"], job
    assert job["outputs"] == []
    # The video was stored (it passed the size, head and CRC32C checks) before it was read back:
    # the failing attempt removes it right after recording the failure.
    deadline = time.monotonic() + 15
    while names_of(bucket, job_id) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert names_of(bucket, job_id) == set()
