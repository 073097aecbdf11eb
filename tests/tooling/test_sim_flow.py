"""flow (doc 003): nanoai proxy + Google aisandbox."""

from __future__ import annotations

import hashlib

import pytest
import requests

from dev.simulators.flow import REMAINING_CREDITS
from dev.simulators.mp4check import check_mp4

PROXY = {"Authorization": "Bearer sim-key-flow"}
GOOGLE_TOKEN = "sim-google-token"
GOOGLE = {"Authorization": f"Bearer {GOOGLE_TOKEN}"}
GBASE = "https://aisandbox-pa.googleapis.com"
PROJECT = "11111111-2222-3333-4444-555555555555"
CTX = {"projectId": PROJECT, "recaptchaToken": "", "sessionId": ";1", "tool": "PINHOLE",
       "userPaygateTier": "PAYGATE_TIER_TWO"}


def image_payload(prompt="A cute cat", token=GOOGLE_TOKEN):
    ctx = {"sessionId": ";1", "projectId": PROJECT, "tool": "PINHOLE"}
    return {"body_json": {"clientContext": ctx, "requests": [{
        "clientContext": ctx, "seed": 1, "imageModelName": "GEM_PIX_2",
        "imageAspectRatio": "IMAGE_ASPECT_RATIO_LANDSCAPE", "prompt": prompt, "imageInputs": []}]},
        "flow_auth_token": token,
        "flow_url": f"{GBASE}/v1/projects/{PROJECT}/flowMedia:batchGenerateImages"}


def video_request(prompt, model="veo_3_1_t2v_fast", media_id=None, scene="scene-1",
                  aspect="VIDEO_ASPECT_RATIO_LANDSCAPE"):
    r = {"aspectRatio": aspect, "metadata": {"sceneId": scene}, "seed": 8465,
         "textInput": {"prompt": prompt}, "videoModelKey": model}
    if media_id:
        r["referenceImages"] = [{"imageUsageType": "IMAGE_USAGE_TYPE_ASSET", "mediaId": media_id}]
    return r


def video_payload(reqs, endpoint="batchAsyncGenerateVideoText", token=GOOGLE_TOKEN):
    return {"body_json": {"clientContext": CTX, "requests": reqs}, "flow_auth_token": token,
            "flow_url": f"{GBASE}/v1/video:{endpoint}"}


def task_result(sim, until, path, payload):
    r = requests.post(f"{sim.url}/api/fix/{path}", headers=PROXY, json=payload)
    assert r.status_code == 200, r.text
    task_id = r.json()["taskId"]
    return until(lambda: (lambda d: d if d["status"] != "processing" else None)(
        requests.get(f"{sim.url}/api/fix/task-status", params={"taskId": task_id},
                     headers=PROXY).json()))


def create_video(sim, until, reqs, endpoint="batchAsyncGenerateVideoText"):
    doc = task_result(sim, until, "create-video-veo3", video_payload(reqs, endpoint))
    assert doc["status"] == "completed", doc
    return doc["result"]["operations"]


def check(sim, operations, headers=GOOGLE):
    return requests.post(f"{sim.url}/v1/video:batchCheckAsyncVideoGenerationStatus",
                         headers=headers, json={"operations": operations})


def poll_until_final(sim, until, operations):
    seen = set()

    def step():
        doc = check(sim, operations).json()
        seen.update(op["status"] for op in doc["operations"])
        return doc if all(op["status"] not in ("MEDIA_GENERATION_STATUS_PENDING",
                                               "MEDIA_GENERATION_STATUS_ACTIVE")
                          for op in doc["operations"]) else None
    return until(step, interval=0.03), seen


def test_image_then_reference_video(sim, until):
    doc = task_result(sim, until, "create-image-veo3", image_payload())
    media_id = doc["result"]["media"][0]["name"]
    assert media_id.startswith("CAMS")
    ops = create_video(sim, until, [video_request("The cat walks [sim:duration=0.5]",
                                                  "veo_3_0_r2v_fast_ultra", media_id)],
                       "batchAsyncGenerateVideoReferenceImages")
    assert ops[0]["status"] == "MEDIA_GENERATION_STATUS_PENDING"
    assert set(ops[0]) == {"operation", "sceneId", "status"} and ops[0]["sceneId"] == "scene-1"
    final, seen = poll_until_final(sim, until, ops)
    assert {"MEDIA_GENERATION_STATUS_PENDING", "MEDIA_GENERATION_STATUS_ACTIVE"} & seen
    op = final["operations"][0]
    assert op["status"] == "MEDIA_GENERATION_STATUS_SUCCESSFUL"
    url = op["operation"]["metadata"]["video"]["fifeUrl"]
    video = requests.get(url)  # signed URL, no auth
    assert video.status_code == 200
    check_mp4(video.content)
    (reported,) = sim.operations(dialect="flow")
    assert hashlib.sha256(video.content).hexdigest() == reported["outputs"][0]["sha256"]


def test_several_requests_several_videos(sim, until):
    reqs = [video_request(f"shot {i}", scene=f"s{i}") for i in range(3)]
    ops = create_video(sim, until, reqs)
    assert len(ops) == 3
    final, _ = poll_until_final(sim, until, ops)
    urls = [o["operation"]["metadata"]["video"]["fifeUrl"] for o in final["operations"]]
    shas = {hashlib.sha256(requests.get(u).content).hexdigest() for u in urls}
    assert len(shas) == 3
    reported = sim.operations(dialect="flow")[0]["outputs"]
    assert shas == {o["sha256"] for o in reported}


def test_check_requires_whole_array(sim, until):
    ops = create_video(sim, until, [video_request("x")])
    names_only = [{"operation": {"name": ops[0]["operation"]["name"]}}]
    assert check(sim, names_only).status_code == 400
    assert check(sim, [ops[0]["operation"]["name"]]).status_code == 400
    assert check(sim, [{**ops[0], "sceneId": "other"}]).status_code == 400
    assert check(sim, [{**ops[0], "operation": {"name": "nope"}}]).status_code == 404
    assert check(sim, ops).status_code == 200


def test_google_token_checks(sim, until):
    ops = create_video(sim, until, [video_request("x")])
    assert check(sim, ops, headers={"Authorization": "Bearer ya29.old"}).status_code == 401
    ops = create_video(sim, until, [video_request("y [sim:token_expired]")])
    assert [check(sim, ops).status_code for _ in range(2)] == [401, 401]
    ops = create_video(sim, until, [video_request("z [sim:token_expiredx1]")])
    assert [check(sim, ops).status_code for _ in range(2)] == [401, 200]
    # a wrong flow_auth_token: the proxy relays Google's 401 in the task result
    doc = task_result(sim, until, "create-video-veo3", video_payload([video_request("w")],
                                                                      token="ya29.bad"))
    assert doc["status"] == "failed" and doc["result"]["error"]["code"] == 401


@pytest.mark.parametrize("payload,fragment", [
    (video_payload([video_request("x", model="veo_9")]), "videoModelKey"),
    (video_payload([video_request("x", model="veo_3_0_r2v_fast_ultra")]), "cannot be used"),
    (video_payload([video_request("x", model="veo_3_1_t2v_fast_portrait")]), "aspectRatio"),
    (video_payload([video_request("x", model="veo_3_0_r2v_fast_ultra", media_id="CAMSunknown")],
                   "batchAsyncGenerateVideoReferenceImages"), "not found"),
])
def test_google_validation_in_task(sim, until, payload, fragment):
    doc = task_result(sim, until, "create-video-veo3", payload)
    assert doc["status"] == "failed" and fragment in doc["result"]["error"]["message"]


def test_proxy_refusals(sim):
    url = f"{sim.url}/api/fix/create-video-veo3"
    payload = video_payload([video_request("x")])
    assert requests.post(url, json=payload).status_code == 401
    bad = {**payload, "flow_url": "https://evil.example/v1/video:batchAsyncGenerateVideoText"}
    assert requests.post(url, headers=PROXY, json=bad).status_code == 400
    bad = {**payload, "flow_url": f"{GBASE}/v1/video:batchCheckAsyncVideoGenerationStatus"}
    assert requests.post(url, headers=PROXY, json=bad).status_code == 400
    bad = {k: v for k, v in payload.items() if k != "flow_auth_token"}
    assert requests.post(url, headers=PROXY, json=bad).status_code == 400
    img = image_payload()
    img["flow_url"] = f"{GBASE}/v1/projects/other/flowMedia:batchGenerateImages"
    assert requests.post(f"{sim.url}/api/fix/create-image-veo3", headers=PROXY,
                         json=img).status_code == 400
    assert requests.get(f"{sim.url}/api/fix/task-status", params={"taskId": "x"},
                        headers=PROXY).status_code == 404


def test_errors_and_faults(sim, until):
    for directive, status in (("op_error", "MEDIA_GENERATION_STATUS_ERROR_INTERNAL"),
                              ("rai_filtered", "MEDIA_GENERATION_STATUS_ERROR_UNSAFE_GENERATION")):
        ops = create_video(sim, until, [video_request(f"x [sim:{directive}]")])
        final, _ = poll_until_final(sim, until, ops)
        assert final["operations"][0]["status"] == status
        assert "fifeUrl" not in str(final)
    r = requests.post(f"{sim.url}/api/fix/create-video-veo3", headers=PROXY,
                      json=video_payload([video_request("x [sim:submit_429]")]))
    assert r.status_code == 429 and r.headers["Retry-After"] == "2"
    ops = create_video(sim, until, [video_request("p [sim:poll_500x2]")])
    assert [check(sim, ops).status_code for _ in range(3)] == [500, 500, 200]
    ops = create_video(sim, until, [video_request("e [sim:expired]")])
    final, _ = poll_until_final(sim, until, ops)
    url = final["operations"][0]["operation"]["metadata"]["video"]["fifeUrl"]
    assert requests.get(url).status_code == 404


def test_google_direct_variants(sim, until):
    ctx = {"sessionId": ";1", "projectId": PROJECT, "tool": "PINHOLE"}
    r = requests.post(f"{sim.url}/v1/projects/{PROJECT}/flowMedia:batchGenerateImages",
                      headers=GOOGLE, json={"clientContext": ctx, "requests": [
                          {"prompt": "a dog", "imageModelName": "GEM_PIX_2"}]})
    assert r.status_code == 200
    media_id = r.json()["media"][0]["name"]
    r = requests.post(f"{sim.url}/v1/video:batchAsyncGenerateVideoReferenceImages", headers=GOOGLE,
                      json={"clientContext": CTX, "requests": [
                          video_request("dog runs", "veo_3_1_i2v_s_fast_fl", media_id)]})
    assert r.status_code == 200 and r.json()["remainingCredits"] == REMAINING_CREDITS
    final, _ = poll_until_final(sim, until, r.json()["operations"])
    assert final["operations"][0]["status"] == "MEDIA_GENERATION_STATUS_SUCCESSFUL"
    r = requests.post(f"{sim.url}/v1/video:batchAsyncGenerateVideoText",
                      json={"clientContext": CTX, "requests": [video_request("x")]})
    assert r.status_code == 401
