"""Video extension end to end on the real emulators and the simulators: a job, an extension of
it, an extension of that (gemini, vertex), each succeeded in the bucket with `extends` set and a
video 7 s longer than its source; the openai SDK's `extend`; and the simulators refusing, as the
real APIs do, a source they do not hold or one too long."""
from __future__ import annotations

import json
import time

import openai
import pytest
import requests
from openai import OpenAI

from .helpers import unique_prompt

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


def run(client, provider: str, **fields) -> dict:
    resp = client.submit({"prompt": unique_prompt("a paper boat on a stream"), "provider": provider, **fields})
    assert resp.status_code == 202, resp.text
    job = client.wait(resp.json()["id"], timeout_s=90)
    assert job["status"] == "succeeded", job
    return job


def until(probe, timeout_s: float = 10.0):
    """probe() until it gives something (fail after timeout_s)."""
    deadline = time.monotonic() + timeout_s
    while (value := probe()) is None:
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.2)
    return value


def seconds_of(job: dict) -> float:
    return job["outputs"][0]["media"]["duration_seconds"]


@pytest.mark.parametrize("provider", ["gemini", "vertex"])
def test_a_chain_of_extensions_each_7_s_longer_in_its_own_folder(client, bucket, provider):
    a = run(client, provider)
    b = run(client, provider, extend={"job_id": a["id"]})
    c = run(client, provider, extend={"job_id": b["id"]})

    assert a["extends"] is None
    assert (b["extends"]["job_id"], b["extends"]["root_job_id"], b["extends"]["depth"]) == (a["id"], a["id"], 1)
    assert (c["extends"]["job_id"], c["extends"]["root_job_id"], c["extends"]["depth"]) == (b["id"], a["id"], 2)
    assert seconds_of(b) == pytest.approx(seconds_of(a) + 7, abs=0.5)
    assert seconds_of(c) == pytest.approx(seconds_of(b) + 7, abs=0.5)
    assert c["warnings"] == [] and c["cost"]["basis"]["seconds"] == 7
    for job in (a, b, c):  # job.json is written just after the job is marked succeeded
        names = until(lambda job=job: (lambda found: found if f"videos/{job['id']}/job.json" in found else None)(
            {blob.name for blob in bucket.list_blobs(prefix=f"videos/{job['id']}/")}))
        assert f"videos/{job['id']}/0.mp4" in names
    stored = json.loads(bucket.blob(f"videos/{c['id']}/job.json").download_as_bytes())
    assert stored["extends"]["job_id"] == b["id"] and stored["extends"]["source_uri"] == b["outputs"][0]["uri"]
    sent = client.sim_calls(c["request"]["prompt"], "submit")
    assert [call["status"] for call in sent] == [200]  # the provider took it at once: the source was as it wants


@pytest.mark.badinput
def test_an_extension_the_provider_cannot_make_is_refused_before_anything_is_made(client):
    a = run(client, "gemini")
    prompt = unique_prompt("on vertex")
    resp = client.submit({"prompt": prompt, "provider": "litellm-gemini", "extend": {"job_id": a["id"]}})
    assert resp.status_code == 400 and resp.json()["error"]["field"] == "extend.job_id", resp.text  # another API's file
    assert client.sim_calls(prompt) == []
    other = client.submit({"prompt": prompt, "provider": "newapi", "extend": {"job_id": a["id"]}})
    assert other.status_code == 400 and other.json()["error"] == {
        "code": "unsupported_option", "message": "this provider does not support extend", "field": "extend"}


def test_the_openai_sdk_extends_a_completed_video(stack, client):
    sdk = OpenAI(base_url=stack.function_urls["api"].rstrip("/") + "/v1", api_key=stack.api_key, max_retries=0, timeout=30)
    source = sdk.videos.create_and_poll(prompt=unique_prompt("a train leaves"), seconds="8")
    # openai 3.51.0 refuses video={"id": ...} before sending (its multipart file extraction takes
    # only files at `video`): the reference goes in extra_body, as docs/OPENAI.md shows.
    with pytest.raises(RuntimeError, match="Expected entry at `video`"):
        sdk.videos.extend(prompt="it enters a tunnel", seconds="8", video={"id": source.id})
    video = sdk.videos.extend(prompt="it enters a tunnel", seconds="8", video=openai.omit, extra_body={"video": {"id": source.id}})
    assert video.status == "queued"
    done = sdk.videos.poll(video.id)
    assert done.status == "completed" and done.seconds == str(int(source.seconds) + 7)
    assert client.job(video.id)["extends"]["job_id"] == source.id


def _gemini_predict(client, stack, video: dict) -> requests.Response:
    key = stack.env.get("VEO_GEMINI_API_KEY") or "sim-key-gemini"
    return requests.post(f"{client.sim}/v1beta/models/veo-3.1-generate-preview:predictLongRunning", timeout=10,
                         headers={"x-goog-api-key": key}, json={"instances": [{"prompt": unique_prompt(), "video": video}]})


def test_the_gemini_simulator_refuses_a_file_it_never_made(client, stack):
    resp = _gemini_predict(client, stack, {"uri": f"{client.sim}/v1beta/files/nosuchfile123:download?alt=media"})
    assert resp.status_code == 400 and resp.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert "only videos generated by Veo" in resp.json()["error"]["message"]


def test_the_vertex_simulator_refuses_a_source_too_long(client, bucket, stack):
    a = run(client, "gemini", **{"prompt": unique_prompt(directive="[sim:clip_seconds=31]")})
    token = stack.env.get("VEO_VERTEX_API_KEY") or stack.env.get("VEO_VERTEX_ACCESS_TOKEN") or "sim-key-vertex"
    url = (f"{client.sim}/v1/projects/{stack.env['VEO_VERTEX_PROJECT']}/locations/{stack.env['VEO_VERTEX_LOCATION']}"
           "/publishers/google/models/veo-3.1-generate-001:predictLongRunning")
    body = {"instances": [{"prompt": unique_prompt(), "video": {"gcsUri": a["outputs"][0]["uri"], "mimeType": "video/mp4"}}]}
    resp = requests.post(url, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert resp.status_code == 400 and "at most 30 seconds" in resp.json()["error"]["message"], resp.text
    # veo-relay refuses it itself, before the provider is asked
    refused = client.submit({"prompt": unique_prompt(), "provider": "vertex", "extend": {"job_id": a["id"]}})
    assert refused.status_code == 400 and refused.json()["error"]["field"] == "extend.job_id"
