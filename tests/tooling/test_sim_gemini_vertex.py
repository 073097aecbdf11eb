"""Gemini API and Vertex AI directly (README public facts)."""

from __future__ import annotations

import base64
import hashlib
import threading

import pytest
import requests
from flask import Flask, request
from werkzeug.serving import make_server

from dev.simulators.mp4check import check_mp4

GKEY = {"x-goog-api-key": "sim-key-gemini"}
VAUTH = {"Authorization": "Bearer sim-key-vertex"}
VMODEL = "veo-3.1-generate-001"
VPATH = f"/v1/projects/proj-1/locations/us-central1/publishers/google/models/{VMODEL}"
IMG = {"bytesBase64Encoded": base64.b64encode(b"\x89PNG fake").decode(), "mimeType": "image/png"}


def gemini_done(sim, until, prompt, **params):
    r = requests.post(f"{sim.url}/v1beta/models/veo-3.1-generate-preview:predictLongRunning",
                      headers=GKEY, json={"instances": [{"prompt": prompt, "image": IMG}],
                                          "parameters": params})
    assert r.status_code == 200, r.text
    name = r.json()["name"]
    return name, until(lambda: (lambda d: d if d.get("done") else None)(
        requests.get(f"{sim.url}/v1beta/{name}", headers=GKEY).json()))


def test_gemini_happy_path_redirects_to_bytes(sim, until):
    name, done = gemini_done(sim, until, "waves", sampleCount=2, durationSeconds=8)
    samples = done["response"]["generateVideoResponse"]["generatedSamples"]
    assert len(samples) == 2
    reported = sim.operation(name.rsplit("/", 1)[1])["outputs"]
    for sample, out in zip(samples, reported):
        uri = sample["video"]["uri"]
        assert uri.startswith(sim.url + "/v1beta/files/") and uri.endswith(":download?alt=media")
        first = requests.get(uri, headers=GKEY, allow_redirects=False)
        assert first.status_code == 302  # as Google does
        r = requests.get(uri, headers=GKEY)
        assert r.status_code == 200 and r.headers["Content-Type"] == "video/mp4"
        check_mp4(r.content)
        assert hashlib.sha256(r.content).hexdigest() == out["sha256"]
    assert [c["kind"] for c in sim.calls(dialect="gemini", kind="blob")] == ["blob", "blob"]


def test_gemini_auth_like_google(sim):
    url = f"{sim.url}/v1beta/models/veo-3.1-generate-preview:predictLongRunning"
    body = {"instances": [{"prompt": "x"}]}
    r = requests.post(url, json=body)
    assert r.status_code == 403 and r.json()["error"]["status"] == "PERMISSION_DENIED"
    r = requests.post(url, json=body, headers={"x-goog-api-key": "wrong"})
    assert r.status_code == 400
    assert r.json()["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    assert requests.post(url + "?key=sim-key-gemini", json=body).status_code == 200


def test_gemini_rejects_bad_params(sim):
    url = f"{sim.url}/v1beta/models/veo-3.1-generate-preview:predictLongRunning"
    for params in ({"durationSeconds": 5}, {"aspectRatio": "4:3"}, {"storageUri": "gs://b/x"}):
        r = requests.post(url, headers=GKEY, json={"instances": [{"prompt": "x"}],
                                                   "parameters": params})
        assert r.status_code == 400, params


def test_gemini_expired_and_rai(sim, until):
    _, done = gemini_done(sim, until, "x [sim:expired]")
    uri = done["response"]["generateVideoResponse"]["generatedSamples"][0]["video"]["uri"]
    assert requests.get(uri, headers=GKEY).status_code == 403
    _, done = gemini_done(sim, until, "x [sim:rai_filtered]")
    assert done["response"]["generateVideoResponse"]["raiMediaFilteredCount"] == 1


def vertex_submit(sim, prompt, auth=VAUTH, **params):
    return requests.post(f"{sim.url}{VPATH}:predictLongRunning", headers=auth,
                         json={"instances": [{"prompt": prompt}], "parameters": params})


def vertex_fetch(sim, name, auth=VAUTH):
    return requests.post(f"{sim.url}{VPATH}:fetchPredictOperation", headers=auth,
                         json={"operationName": name})


def vertex_done(sim, until, prompt, **params):
    r = vertex_submit(sim, prompt, **params)
    assert r.status_code == 200, r.text
    name = r.json()["name"]
    return name, until(lambda: (lambda d: d if d.get("done") else None)(
        vertex_fetch(sim, name).json()))


def test_vertex_inline_videos(sim, until):
    name, done = vertex_done(sim, until, "forest", sampleCount=3)
    assert name.startswith(f"projects/proj-1/locations/us-central1/publishers/google/models/"
                           f"{VMODEL}/operations/")
    resp = done["response"]
    assert resp["@type"] == "type.googleapis.com/cloud.ai.large_models.vision.GenerateVideoResponse"
    assert len(resp["videos"]) == 3
    reported = sim.operation(name.rsplit("/", 1)[1])["outputs"]
    for video, out in zip(resp["videos"], reported):
        assert video["mimeType"] == "video/mp4"
        data = base64.b64decode(video["bytesBase64Encoded"])
        check_mp4(data)
        assert hashlib.sha256(data).hexdigest() == out["sha256"]


def test_vertex_running_then_errors(sim, until):
    r = vertex_submit(sim, "x [sim:duration=5]")
    assert vertex_fetch(sim, r.json()["name"]).json() == {"name": r.json()["name"]}
    _, done = vertex_done(sim, until, "x [sim:op_error]")
    assert done["error"]["status"] == "INTERNAL"
    _, done = vertex_done(sim, until, "x [sim:rai_filtered]")
    assert done["response"]["raiMediaFilteredCount"] == 1
    assert "videos" not in done["response"]


def test_vertex_auth_and_bad_operation_name(sim):
    assert vertex_submit(sim, "x", auth={}).status_code == 401
    assert vertex_submit(sim, "x", auth={"Authorization": "Bearer no"}).status_code == 401
    assert vertex_fetch(sim, "operations/abc").status_code == 400
    name = vertex_submit(sim, "x").json()["name"]
    assert vertex_fetch(sim, name.replace("proj-1", "proj-2")).status_code == 404
    assert vertex_fetch(sim, name, auth={}).status_code == 401


def test_vertex_submit_429_and_poll_faults(sim):
    r = vertex_submit(sim, "x [sim:submit_429]")
    assert r.status_code == 429 and r.headers["Retry-After"] == "2"
    name = vertex_submit(sim, "x [sim:poll_503x1]").json()["name"]
    assert [vertex_fetch(sim, name).status_code for _ in range(2)] == [503, 200]


@pytest.fixture
def fake_gcs(monkeypatch):
    """Just enough of the GCS JSON API media upload to receive Vertex's writes."""
    objects: dict[str, bytes] = {}
    app = Flask("fake_gcs")

    @app.post("/upload/storage/v1/b/<bucket>/o")
    def upload(bucket):
        assert request.args["uploadType"] == "media"
        objects[f"gs://{bucket}/{request.args['name']}"] = request.get_data()
        return {"bucket": bucket, "name": request.args["name"]}

    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{server.port}")
    yield objects
    server.shutdown()


def test_vertex_storage_uri_writes_objects(sim, until, fake_gcs):
    name, done = vertex_done(sim, until, "city", sampleCount=2, storageUri="gs://bkt/out/")
    videos = done["response"]["videos"]
    assert len(videos) == 2 and all(v["mimeType"] == "video/mp4" for v in videos)
    reported = sim.operation(name.rsplit("/", 1)[1])["outputs"]
    for video, out in zip(videos, reported):
        uri = video["gcsUri"]
        assert uri.startswith("gs://bkt/out/") and uri.endswith(f"/sample_{out['index']}.mp4")
        check_mp4(fake_gcs[uri])
        assert hashlib.sha256(fake_gcs[uri]).hexdigest() == out["sha256"]
    assert len(fake_gcs) == 2
    vertex_fetch(sim, name)
    assert len(fake_gcs) == 2  # written once


def test_vertex_storage_uri_without_emulator_fails_op(sim, until, monkeypatch):
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    _, done = vertex_done(sim, until, "city", storageUri="gs://bkt/out/")
    assert done["error"]["code"] == 13


def test_the_google_simulators_serve_todays_models_only(sim):
    """Veo 3.0 and 2.0 are gone from both APIs and Vertex's 3.1 previews too: 404 NOT_FOUND,
    as Google answers; the 3.1 models (lite included) are served."""
    gemini = f"{sim.url}/v1beta/models/%s:predictLongRunning"
    body = {"instances": [{"prompt": "x"}]}
    for model in ("veo-3.0-generate-001", "veo-3.0-fast-generate-001", "veo-2.0-generate-001"):
        r = requests.post(gemini % model, headers=GKEY, json=body)
        assert (r.status_code, r.json()["error"]["status"]) == (404, "NOT_FOUND"), model
    for model in ("veo-3.1-generate-preview", "veo-3.1-fast-generate-preview", "veo-3.1-lite-generate-preview"):
        assert requests.post(gemini % model, headers=GKEY, json=body).status_code == 200, model
    vertex = f"{sim.url}/v1/projects/proj-1/locations/us-central1/publishers/google/models/%s:predictLongRunning"
    for model in ("veo-3.0-generate-001", "veo-3.1-generate-preview"):
        r = requests.post(vertex % model, headers=VAUTH, json=body)
        assert (r.status_code, r.json()["error"]["status"]) == (404, "NOT_FOUND"), model
    for model in ("veo-3.1-generate-001", "veo-3.1-fast-generate-001", "veo-3.1-lite-generate-001"):
        assert requests.post(vertex % model, headers=VAUTH, json=body).status_code == 200, model


@pytest.mark.parametrize("model,params,status", [
    ("veo-3.1-generate-preview", {"resolution": "4k", "durationSeconds": 8}, 200),
    ("veo-3.1-generate-preview", {"resolution": "4k", "durationSeconds": 4}, 400),  # 1080p and 4k need 8 s
    ("veo-3.1-generate-preview", {"resolution": "1080p", "durationSeconds": 6}, 400),
    ("veo-3.1-lite-generate-preview", {"resolution": "4k"}, 400),  # no 4k on lite
    ("veo-3.1-lite-generate-preview", {"resolution": "1080p"}, 200),
])
def test_gemini_resolutions_and_their_durations(sim, model, params, status):
    r = requests.post(f"{sim.url}/v1beta/models/{model}:predictLongRunning", headers=GKEY,
                      json={"instances": [{"prompt": "x"}], "parameters": params})
    assert r.status_code == status, r.text
