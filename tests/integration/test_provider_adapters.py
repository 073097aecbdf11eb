"""Adapters called directly against the simulator, for paths one stack configuration cannot show:
Vertex without storageUri (videos inline as base64), wrong credentials, a lost genaipro answer."""
from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
import requests
from google.cloud import firestore

from veorelay.config import ProviderSettings
from veorelay.core.errors import PermanentError
from veorelay.core.request import GenerationRequest
from veorelay.gcp.sink import store_video
from veorelay.providers.base import ProviderEnv
from veorelay.providers.gemini import Gemini
from veorelay.providers.vertex import Vertex

from .helpers import crc32c, md5, unique_prompt
from .provider_helpers import assert_videos_match_the_provider, eventually, provider_calls

pytestmark = pytest.mark.integration


def test_vertex_without_the_bucket_streams_inline_videos_into_it(stack, client, bucket):
    """VEO_VERTEX_WRITE_TO_BUCKET=false: the operation carries every video as base64; each is
    decoded while it streams to the bucket and is byte for byte what Vertex made."""
    settings = ProviderSettings("vertex", stack.env["VEO_VERTEX_BASE_URL"], "sim-key-vertex",
                                {"PROJECT": "p", "LOCATION": "us-central1", "WRITE_TO_BUCKET": "false"})
    vertex = Vertex(settings, requests.Session(), ProviderEnv(bucket=bucket.name))
    prompt = unique_prompt("three inline videos [sim:size=300000]")
    handle = vertex.submit("inline-test", GenerationRequest(prompt=prompt, sample_count=3))
    assert handle["storage_prefix"] is None
    progress = eventually(lambda: (p := vertex.check(handle)).state != "running" and p, timeout_s=30)
    assert progress.state == "succeeded" and len(progress.outputs) == 3
    served = client.sim_operation(prompt)["outputs"]
    for ref, expected in zip(progress.outputs, served):
        assert ref.url is None and ref.gcs_uri is None and ref.extra["inline"]["size"] == expected["size"] == 300000
        stored = store_video(vertex.open_output(ref), bucket, f"tests/inline/{prompt[-10:]}/{ref.index}.mp4", {"test": "inline"}, 256 * 1024)
        data = bucket.blob(stored.name).download_as_bytes()
        assert hashlib.sha256(data).hexdigest() == expected["sha256"] and stored.size == len(data) == expected["size"]
        assert (stored.crc32c, stored.md5, stored.sha256) == (crc32c(data), md5(data), None)


@pytest.mark.faults
def test_a_wrong_gemini_key_is_access_denied(stack):
    """The Gemini API answers a wrong key with 400 API_KEY_INVALID, not 401."""
    gemini = Gemini(ProviderSettings("gemini", stack.env["VEO_GEMINI_BASE_URL"], "a-wrong-key"), requests.Session())
    with pytest.raises(PermanentError) as refused:
        gemini.submit("wrong-key", GenerationRequest(prompt=unique_prompt("wrong key")))
    assert refused.value.code == "access_denied" and "VEO_GEMINI_API_KEY" in refused.value.message


@pytest.mark.faults
def test_a_genaipro_submission_whose_answer_was_lost_is_found_not_paid_again(stack_env, client, bucket):
    """The POST reached genaipro but its answer never came back (the step died after sending it).
    The redelivered stream task finds the job in the histories and follows it; it does not POST."""
    prompt = unique_prompt("a lost answer")
    stack = stack_env
    sim = stack.simulator_url.rstrip("/")
    sent = requests.post(f"{sim}/api/v1/veo/text-to-video", headers={"Authorization": "Bearer sim-key-genaipro"},
                         json={"prompt": prompt, "number_of_videos": 1}, stream=True, timeout=10)
    assert sent.status_code == 200
    sent.close()  # the answer is lost

    now = datetime.now(UTC)
    job_id = hashlib.sha256(prompt.encode()).hexdigest()[:32]
    db = firestore.Client(project=stack.env["GOOGLE_CLOUD_PROJECT"])
    db.collection("jobs").document(job_id).create({
        "id": job_id, "status": "accepted", "client_id": "demo", "provider": "genaipro", "model": "auto",
        "request": {"prompt": prompt}, "metadata": None, "webhook": {"url": None, "events": None},
        "progress": {"percent": 0, "stage": "accepted"}, "outputs": [], "error": None,
        "created_at": now, "updated_at": now, "deadline_at": now + timedelta(minutes=30), "timestamps": {"accepted": now},
        # what stream_job wrote just before its POST, then its claim ran out
        "stream_submitted_at": now - timedelta(seconds=1), "submit_claim": {"at": now - timedelta(minutes=5)},
    })
    assert client.send_task("stream_job", {"job_id": job_id}).status_code == 200
    job = client.wait(job_id, timeout_s=60)
    assert_videos_match_the_provider(client, bucket, job, 1)
    assert len(provider_calls(client, prompt, "submit")) == 1  # only the first, lost one
