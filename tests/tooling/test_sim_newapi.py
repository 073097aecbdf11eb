"""newapi (doc 001)."""

from __future__ import annotations

import base64
import hashlib

import pytest
import requests

from dev.simulators.mp4check import check_mp4

AUTH = {"Authorization": "Bearer sim-key-newapi"}
IMG = base64.b64encode(b"\x89PNG fake image").decode()
DATA_KEYS = {"bytes_base64_encoded", "error", "format", "metadata", "status", "task_id", "url"}


def submit(sim, prompt, model="veo-3.0-fast-generate-001", path="/v1/video/generations",
           auth=AUTH, **extra):
    body = {"model": model, "prompt": prompt, "image": IMG, "metadata": {}, **extra}
    return requests.post(sim.url + path, headers=auth, json=body)


def get(sim, task_id, path="/v1/video/generations", auth=AUTH):
    return requests.get(f"{sim.url}{path}/{task_id}", headers=auth)


def final(sim, until, task_id, path="/v1/video/generations"):
    return until(lambda: (lambda d: d if d["data"]["status"] in ("succeeded", "failed") else None)(
        get(sim, task_id, path).json()))


@pytest.mark.parametrize("path", ["/v1/video/generations", "/v1/videos"])
def test_happy_path(sim, until, path):
    r = submit(sim, "a cat playing piano [sim:duration=0.5]", path=path)
    assert r.status_code == 200 and list(r.json()) == ["task_id"]
    task_id = r.json()["task_id"]
    seen = set()
    doc = until(lambda: (lambda d: seen.add(d["data"]["status"]) or (
        d if d["data"]["status"] == "succeeded" else None))(get(sim, task_id, path).json()),
        interval=0.03)
    assert {"queued", "succeeded"} <= seen and seen & {"in_progress", "processing"}
    assert doc["code"] == "success" and doc["message"] == ""
    data = doc["data"]
    assert set(data) == DATA_KEYS
    assert data["format"] == "mp4" and data["error"] is None and data["metadata"] is None
    assert data["task_id"] == task_id and data["bytes_base64_encoded"] == ""
    assert data["url"] == f"{sim.url}/v1/videos/{task_id}/content"
    assert requests.get(data["url"]).status_code == 401  # behind the token check
    video = requests.get(data["url"], headers=AUTH)
    assert video.status_code == 200 and video.headers["Content-Type"] == "video/mp4"
    check_mp4(video.content)
    (out,) = sim.operation(task_id)["outputs"]
    assert hashlib.sha256(video.content).hexdigest() == out["sha256"]


def test_vertex_upstream_inline_bytes(sim, until):
    task_id = submit(sim, "x [sim:upstream=vertex]").json()["task_id"]
    data = final(sim, until, task_id)["data"]
    assert data["status"] == "succeeded" and data["url"] == ""
    raw = base64.b64decode(data["bytes_base64_encoded"])
    check_mp4(raw)
    assert hashlib.sha256(raw).hexdigest() == sim.operation(task_id)["outputs"][0]["sha256"]
    sim.config(newapi_upstream="vertex")
    data = final(sim, until, submit(sim, "y").json()["task_id"])["data"]
    assert data["bytes_base64_encoded"] and data["url"] == ""


@pytest.mark.parametrize("model,metadata,fragment", [
    ("veo-3.0-fast-generate-001", {"lastFrame": IMG}, "lastFrame"),
    ("veo-3.1-fast-generate-preview", {"referenceImages": [{"image": IMG, "referenceType": "asset"}]},
     "Reference to video"),
    ("veo-3.1-generate-preview", {"referenceImages": [{"image": IMG, "referenceType": "asset"}] * 4},
     "1 to 3"),
    ("veo-3.1-generate-preview", {"referenceImages": [{"image": IMG, "referenceType": "face"}]},
     "does not support this mix of reference images"),
])
def test_documented_model_rules_fail_the_task(sim, until, model, metadata, fragment):
    r = submit(sim, "x", model=model, metadata=metadata)
    assert r.status_code == 200
    data = get(sim, r.json()["task_id"]).json()["data"]  # fails at once
    assert data["status"] == "failed" and fragment in data["url"]


def test_documented_model_rules_allowed(sim, until):
    ok = [("veo-3.1-fast-generate-preview", {"lastFrame": IMG}),
          ("veo-3.1-generate-preview", {"lastFrame": IMG, "referenceImages": [
              {"image": IMG, "referenceType": "asset"}, {"image": IMG, "referenceType": "style"}]})]
    for model, metadata in ok:
        data = final(sim, until, submit(sim, "x", model=model, metadata=metadata).json()["task_id"])
        assert data["data"]["status"] == "succeeded"


def test_bad_requests_and_auth(sim):
    assert submit(sim, "x", auth={}).status_code == 401
    assert submit(sim, "x", auth={"Authorization": "Bearer nope"}).status_code == 401
    r = requests.post(sim.url + "/v1/video/generations", headers=AUTH, json={"prompt": "x"})
    assert r.status_code == 400 and "model" in r.json()["error"]["message"]
    assert submit(sim, "x", image="%%% not base64").status_code == 400
    assert get(sim, "task_missing").status_code == 404
    task_id = submit(sim, "x").json()["task_id"]
    assert get(sim, task_id, auth={}).status_code == 401


def test_failures(sim, until):
    data = final(sim, until, submit(sim, "x [sim:op_error]").json()["task_id"])["data"]
    assert data["status"] == "failed" and data["url"] and not data["url"].startswith("http")
    data = final(sim, until, submit(sim, "x [sim:rai_filtered]").json()["task_id"])["data"]
    assert data["status"] == "failed" and "safety" in data["url"]
    data = final(sim, until, submit(sim, "x [sim:empty_success]").json()["task_id"])["data"]
    assert data["status"] == "succeeded" and data["url"] == "" and data["bytes_base64_encoded"] == ""


def test_faults(sim, until):
    r = submit(sim, "x [sim:submit_429]")
    assert r.status_code == 429 and r.headers["Retry-After"] == "2"
    assert [submit(sim, "y [sim:submit_500x2]").status_code for _ in range(3)] == [500, 500, 200]
    task_id = submit(sim, "z [sim:poll_500x2]").json()["task_id"]
    assert [get(sim, task_id).status_code for _ in range(3)] == [500, 500, 200]
    task_id = submit(sim, "e [sim:expired]").json()["task_id"]
    final(sim, until, task_id)
    assert requests.get(f"{sim.url}/v1/videos/{task_id}/content", headers=AUTH).status_code == 404
    task_id = submit(sim, "r [sim:redirect]").json()["task_id"]
    url = final(sim, until, task_id)["data"]["url"]
    r = requests.get(url, headers=AUTH)
    assert r.history and r.history[0].status_code == 302
    check_mp4(r.content)
