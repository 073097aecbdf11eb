"""/v1/videos and /openapi.json through the functions-framework test client, over the emulators:
OpenAI's error shape on every refusal, what the create mapping stores, deleted and foreign jobs as
404s, download refusals. (The official SDK end to end: tests/integration/test_openai_sdk.py.)"""
from __future__ import annotations

import io
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from dev.stack import DEV_API_KEYS

pytestmark = pytest.mark.integration


def job_count(jobs_collection) -> int:
    return jobs_collection.count().get()[0][0].value


def openai_error(resp, status: int, code: str, param: str | None) -> dict:
    """The answer is OpenAI's error shape with this status, veo-relay's code and the param at fault."""
    assert resp.status_code == status, resp.get_data(as_text=True)
    body = resp.get_json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}, body
    assert (body["error"]["code"], body["error"]["param"]) == (code, param), body
    assert body["error"]["message"]
    return body["error"]


def stored_job(jobs_collection, status: str = "succeeded", client_id: str = "demo", **more) -> str:
    """A job record written straight into Firestore (what the steps would have left)."""
    job_id = uuid.uuid4().hex
    now = datetime.now(UTC)
    jobs_collection.document(job_id).create({
        "id": job_id, "status": status, "client_id": client_id, "provider": "litellm-gemini", "model": "veo-3.0-generate-001",
        "request": {"prompt": "stored"}, "metadata": None, "webhook": {"url": None, "events": None},
        "progress": {"percent": 100, "stage": status}, "outputs": [], "error": None, "created_at": now, "updated_at": now,
        "deadline_at": now + timedelta(hours=1), "timestamps": {status: now}, **more})
    return job_id


def test_openapi_json_needs_no_key(bare):
    resp = bare("api").get("/openapi.json")
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    doc = resp.get_json()
    assert doc["openapi"] == "3.1.0" and "/v1/videos" in doc["paths"] and "/jobs" in doc["paths"]


def test_no_key_is_a_401_in_openais_shape(bare):
    resp = bare("api").get("/v1/videos")
    error = openai_error(resp, 401, "unauthenticated", "Authorization")
    assert error["type"] == "authentication_error" and resp.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.badinput
@pytest.mark.parametrize(("method", "path", "kwargs", "status", "code", "param"), [
    ("post", "/v1/videos", {"json": {"prompt": "p", "size": "1792x1024"}}, 400, "unsupported_option", "size"),
    ("post", "/v1/videos", {"json": {"prompt": "p", "seconds": "eight"}}, 400, "invalid_request", "seconds"),
    ("post", "/v1/videos", {"json": {"prompt": "p", "seconds": "7"}}, 400, "unsupported_option", "duration_seconds"),
    ("post", "/v1/videos", {"json": {"prompt": "p", "model": "sora-2"}}, 400, "unsupported_option", "model"),
    ("post", "/v1/videos", {"json": {"prompt": "p", "style": "noir"}}, 400, "invalid_request", "style"),
    ("post", "/v1/videos", {"json": {"size": "1280x720"}}, 400, "invalid_request", "prompt"),
    ("post", "/v1/videos", {"json": {"prompt": "p", "provider": "nope"}}, 400, "unsupported_option", "provider"),
    ("post", "/v1/videos", {"data": "prompt=p", "content_type": "text/plain"}, 415, "invalid_request", None),
    ("post", "/v1/videos", {"data": {"prompt": "p", "other": (io.BytesIO(b"x"), "a.png")}}, 400, "invalid_request", "other"),
    ("post", "/v1/videos", {"data": {"prompt": "p", "seed": "many"}, "content_type": "multipart/form-data"}, 400, "invalid_request", "seed"),
    ("post", "/v1/videos", {"json": {"prompt": "p"}, "headers": {"Idempotency-Key": "has space"}}, 400, "invalid_request",
     "Idempotency-Key"),
    ("get", "/v1/videos?limit=500", {}, 400, "invalid_request", "limit"),
    ("get", "/v1/videos?order=sideways", {}, 400, "invalid_request", "order"),
    ("get", "/v1/videos/not-an-id", {}, 404, "not_found", "video_id"),
    ("get", "/v1/videos/" + "0" * 32, {}, 404, "not_found", "video_id"),
    ("delete", "/v1/videos/" + "0" * 32, {}, 404, "not_found", "video_id"),  # as GET answers a video that is not the client's
    ("post", "/v1/videos/" + "0" * 32 + "/remix", {"json": {"prompt": "p"}}, 400, "unsupported_option", None),
    ("post", "/v1/videos/edits", {"json": {"prompt": "p"}}, 400, "unsupported_option", None),
    ("get", "/v1/videos/characters/char_1", {}, 400, "unsupported_option", None),
    ("put", "/v1/videos", {}, 405, "invalid_request", None),
    ("get", "/v1/models", {}, 404, "not_found", None),
])
def test_refusals_are_openai_errors_and_create_nothing(call, jobs_collection, method, path, kwargs, status, code, param):
    before = job_count(jobs_collection)
    openai_error(getattr(call("api"), method)(path, **kwargs), status, code, param)
    assert job_count(jobs_collection) == before


def test_a_multipart_create_stores_the_mapped_job(call, jobs_collection):
    from tests.steps.image_files import png

    resp = call("api").post("/v1/videos", data={
        "prompt": "a heron", "seconds": "8", "size": "1920x1080", "metadata[order]": "7", "metadata[team]": "blue",
        "negative_prompt": "fog", "input_reference": (io.BytesIO(png()), "frame.png", "image/png")})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    video = resp.get_json()
    assert (video["object"], video["status"], video["seconds"], video["size"]) == ("video", "queued", "8", "1920x1080")
    assert int(resp.headers["openai-poll-after-ms"]) >= 250
    stored = jobs_collection.document(video["id"]).get().to_dict()
    request = stored["request"]
    assert (request["duration_seconds"], request["aspect_ratio"], request["resolution"]) == (8, "16:9", "1080p")
    assert request["negative_prompt"] == "fog" and request["image"]["gcs_uri"].startswith("gs://")
    assert stored["metadata"] == {"order": "7", "team": "blue"}


def test_another_clients_video_is_a_404_everywhere(call, jobs_collection):
    job_id = stored_job(jobs_collection)
    other = {"Authorization": f"Bearer {DEV_API_KEYS['other']}"}
    for method, path in (("get", f"/v1/videos/{job_id}"), ("get", f"/v1/videos/{job_id}/content"),
                         ("delete", f"/v1/videos/{job_id}")):
        resp = getattr(call("api"), method)(path, headers=other)
        assert resp.status_code == 404 and resp.get_json()["error"]["type"] == "not_found_error"
    assert call("api").get(f"/v1/videos/{job_id}").status_code == 200  # its owner sees it


def test_a_deleted_job_is_a_404_on_both_apis(call, jobs_collection):
    job_id = stored_job(jobs_collection, deleted_at=datetime.now(UTC))
    openai_error(call("api").get(f"/v1/videos/{job_id}"), 404, "not_found", "video_id")
    assert call("api").get(f"/jobs/{job_id}").status_code == 404
    assert call("api").post(f"/jobs/{job_id}:cancel").status_code == 404


def test_download_refusals(call, jobs_collection):
    running = stored_job(jobs_collection, status="running")
    error = openai_error(call("api").get(f"/v1/videos/{running}/content"), 409, "conflict", None)
    assert "not ready" in error["message"]
    no_poster = stored_job(jobs_collection, outputs=[{"index": 0, "name": "videos/x/0.mp4", "uri": "gs://b/videos/x/0.mp4",
                                                      "size": 1, "crc32c": "AAAAAA==", "md5": None, "content_type": "video/mp4",
                                                      "poster": None}])
    openai_error(call("api").get(f"/v1/videos/{no_poster}/content?variant=thumbnail"), 404, "not_found", "variant")
    openai_error(call("api").get(f"/v1/videos/{no_poster}/content?variant=spritesheet"), 400, "unsupported_option", "variant")
    openai_error(call("api").get(f"/v1/videos/{no_poster}/content?index=3"), 404, "not_found", "index")
    # A recorded name outside the job's own folder is never read.
    openai_error(call("api").get(f"/v1/videos/{no_poster}/content"), 404, "not_found", None)


def test_delete_of_a_running_job_is_a_409_and_changes_nothing(call, jobs_collection):
    job_id = stored_job(jobs_collection, status="running")
    openai_error(call("api").delete(f"/v1/videos/{job_id}"), 409, "conflict", None)
    assert "deleted_at" not in jobs_collection.document(job_id).get().to_dict()


def test_a_video_as_the_sdk_types_it(call, jobs_collection):
    from openai.types import Video

    job_id = stored_job(jobs_collection, status="failed", error={"code": "rai_filtered", "message": "blocked"},
                        request={"prompt": "stored", "aspect_ratio": "9:16", "resolution": "720p"})
    body = call("api").get(f"/v1/videos/{job_id}").get_json()
    video = Video.model_validate(body)
    assert (video.status, video.size, video.error.code, video.error.message) == ("failed", "720x1280", "rai_filtered", "blocked")
    assert json.loads(json.dumps(body))["veorelay_status"] == "failed"
