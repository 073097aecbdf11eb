"""flow dialect (doc 003): Google Flow (labs.google) behind the nanoai.pics proxy.

Proxy (Authorization: Bearer <proxy key>), which solves the captcha and calls
Google once on our behalf:
    POST /api/fix/create-image-veo3   {body_json, flow_auth_token, flow_url} -> {"taskId"}
    POST /api/fix/create-video-veo3   {body_json, flow_auth_token, flow_url} -> {"taskId"}
    GET  /api/fix/task-status?taskId= -> {"taskId", "status", "result": {...}}
         result = Google's answer once the proxy has it: {"media": [{"name": mediaId}, ...]}
         for images, {"operations": [...]} for videos. The proxy only caches that
         first answer, so video statuses there stay PENDING forever.
Google (Authorization: Bearer <Google token>, 401 when wrong or "expired"):
    POST /v1/projects/{project}/flowMedia:batchGenerateImages
    POST /v1/video:batchAsyncGenerateVideoText               (t2v models)
    POST /v1/video:batchAsyncGenerateVideoReferenceImages    (r2v / i2v models)
    POST /v1/video:batchCheckAsyncVideoGenerationStatus      {"operations": <the array>}
         PENDING -> ACTIVE -> SUCCESSFUL (operation.metadata.video.fifeUrl) or ERROR_*
    GET  /flow/fife/{file}?Expires=&Signature=                the fifeUrl (no auth)

One create-video call = one simulator operation; each entry of
body_json.requests is one Google operation / one output (Flow makes N videos by
sending N requests), so the samples= directive does not apply here.
"""

from __future__ import annotations

import base64
import random
import time
import uuid
from urllib.parse import urlsplit

from flask import Blueprint, Response, jsonify, request

from . import media
from .common import (
    Directives,
    Operation,
    SimState,
    base_url,
    bearer,
    expected_google_token,
    expected_key,
    google_error,
    json_body,
    json_error,
    new_id,
    poll_fault,
    state,
    submit_fault,
)

DIALECT = "flow"
GOOGLE_HOST = "aisandbox-pa.googleapis.com"
TEXT_ENDPOINT = "/v1/video:batchAsyncGenerateVideoText"
REFERENCE_ENDPOINT = "/v1/video:batchAsyncGenerateVideoReferenceImages"
# videoModelKey -> (endpoint it belongs to, aspect ratio it requires or None)
VIDEO_MODELS = {
    "veo_3_0_r2v_fast_ultra": (REFERENCE_ENDPOINT, None),
    "veo_3_1_i2v_s_fast_fl": (REFERENCE_ENDPOINT, None),
    "veo_3_1_t2v_fast": (TEXT_ENDPOINT, "VIDEO_ASPECT_RATIO_LANDSCAPE"),
    "veo_3_1_t2v_fast_portrait": (TEXT_ENDPOINT, "VIDEO_ASPECT_RATIO_PORTRAIT"),
}
VIDEO_ASPECTS = {"VIDEO_ASPECT_RATIO_LANDSCAPE", "VIDEO_ASPECT_RATIO_PORTRAIT"}
PENDING, ACTIVE = "MEDIA_GENERATION_STATUS_PENDING", "MEDIA_GENERATION_STATUS_ACTIVE"
SUCCESSFUL = "MEDIA_GENERATION_STATUS_SUCCESSFUL"
ERROR_FAILED = "MEDIA_GENERATION_STATUS_ERROR_INTERNAL"
ERROR_FILTERED = "MEDIA_GENERATION_STATUS_ERROR_UNSAFE_GENERATION"
MEDIA_TYPE = "type.googleapis.com/google.internal.labs.aisandbox.v1.Media"
REMAINING_CREDITS = 12345
# 1x1 PNG, so generated images carry real (tiny) image bytes.
TINY_PNG = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360f8cfc0f01f0005000201e5279ba30000000049454e44ae426082")).decode()

bp = Blueprint("flow", __name__)


class GoogleError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message

    def body(self) -> dict:
        return google_error(self.status, self.message).get_json()


def _flow_state(st: SimState) -> dict:
    fs = st.dialect_state[DIALECT]
    fs.setdefault("media", {})   # mediaId -> prompt
    fs.setdefault("tasks", {})   # proxy taskId -> task dict
    return fs


# ------------------------------------------------------------------ Google side


def _check_google_token(token: str | None) -> None:
    if not token or token != expected_google_token():
        raise GoogleError(401, "Request had invalid authentication credentials. Expected OAuth 2 "
                               "access token, login cookie or other valid authentication "
                               "credential.")


def _requests_of(body_json) -> list[dict]:
    if not isinstance(body_json, dict) or not isinstance(body_json.get("clientContext"), dict):
        raise GoogleError(400, "clientContext is required.")
    reqs = body_json.get("requests")
    if not isinstance(reqs, list) or not 1 <= len(reqs) <= 4 or \
            not all(isinstance(r, dict) for r in reqs):
        raise GoogleError(400, "requests must hold 1 to 4 request objects.")
    return reqs


def generate_images(st: SimState, body_json, token: str | None) -> dict:
    _check_google_token(token)
    reqs = _requests_of(body_json)
    media_out = []
    for r in reqs:
        if not isinstance(r.get("prompt"), str) or not r["prompt"].strip():
            raise GoogleError(400, "prompt is required.")
        media_id = "CAMSJD" + base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        _flow_state(st)["media"][media_id] = r["prompt"]
        media_out.append({"name": media_id, "image": {"generatedImage": {
            "seed": r.get("seed", 0), "mediaGenerationId": media_id, "prompt": r["prompt"],
            "modelNameType": r.get("imageModelName", "GEM_PIX_2"),
            "aspectRatio": r.get("imageAspectRatio", "IMAGE_ASPECT_RATIO_LANDSCAPE"),
            "encodedImage": TINY_PNG}}})
    return {"media": media_out}


def _check_video_request(st: SimState, r: dict, endpoint: str) -> str:
    key = r.get("videoModelKey")
    if key not in VIDEO_MODELS:
        raise GoogleError(400, f"Unknown videoModelKey {key!r}; expected one of "
                               f"{sorted(VIDEO_MODELS)}.")
    wanted_endpoint, wanted_aspect = VIDEO_MODELS[key]
    if endpoint != wanted_endpoint:
        raise GoogleError(400, f"videoModelKey {key} cannot be used with {endpoint}.")
    aspect = r.get("aspectRatio")
    if aspect not in VIDEO_ASPECTS or (wanted_aspect and aspect != wanted_aspect):
        raise GoogleError(400, f"aspectRatio {aspect!r} is not valid for {key}.")
    prompt = (r.get("textInput") or {}).get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise GoogleError(400, "textInput.prompt is required.")
    if endpoint == REFERENCE_ENDPOINT:
        refs = r.get("referenceImages")
        if not isinstance(refs, list) or not 1 <= len(refs) <= 3:
            raise GoogleError(400, "referenceImages must hold 1 to 3 images.")
        known = _flow_state(st)["media"]
        for ref in refs:
            if not isinstance(ref, dict) or not ref.get("imageUsageType"):
                raise GoogleError(400, "referenceImages[] needs imageUsageType and mediaId.")
            if ref.get("mediaId") not in known:
                raise GoogleError(404, f"Media {ref.get('mediaId')!r} not found.")
    return prompt


def generate_videos(st: SimState, body_json, endpoint: str, token: str | None) -> dict:
    """What Google answers to batchAsyncGenerateVideo*: PENDING operations."""
    _check_google_token(token)
    reqs = _requests_of(body_json)
    prompts = [_check_video_request(st, r, endpoint) for r in reqs]
    op = st.create_operation(DIALECT, prompts[0], reqs[0]["videoModelKey"], len(reqs),
                             samples_directive=False)
    names, scenes = [], []
    for r, out in zip(reqs, op.outputs):
        name = uuid.uuid4().hex
        names.append(name)
        scenes.append(str((r.get("metadata") or {}).get("sceneId") or uuid.uuid4()))
        with st.lock:
            st.aliases[name] = op.id
        out.url = out.download_url = (
            f"{base_url()}/flow/fife/{out.file_id}?Expires={int(time.time()) + 3600}"
            f"&Signature={new_id(32)}")
    op.extra.update(names=names, scenes=scenes, requests=reqs, prompts=prompts)
    return {"operations": [{"operation": {"name": n}, "sceneId": s, "status": PENDING}
                           for n, s in zip(names, scenes)],
            "remainingCredits": REMAINING_CREDITS}


def _operation_entry(op: Operation, index: int) -> dict:
    name, scene = op.extra["names"][index], op.extra["scenes"][index]
    entry: dict = {"operation": {"name": name}, "sceneId": scene}
    if not op.is_done():
        entry["status"] = PENDING if op.progress() < 0.25 else ACTIVE
        return entry
    outcome = op.outcome
    if outcome in ("error", "rai_filtered"):
        entry["operation"]["error"] = (
            {"code": 3, "message": "PUBLIC_ERROR_UNSAFE_GENERATION: the output was filtered."}
            if outcome == "rai_filtered" else
            {"code": 13, "message": "Video generation failed (simulated op_error)."})
        entry["status"] = ERROR_FILTERED if outcome == "rai_filtered" else ERROR_FAILED
        return entry
    out, req = op.outputs[index], op.extra["requests"][index]
    media_id = "CAUS" + name[:24]
    video = {"seed": req.get("seed", 0), "mediaGenerationId": media_id,
             "prompt": op.extra["prompts"][index], "mediaVisibility": "PRIVATE",
             "model": req["videoModelKey"], "isLooped": False,
             "aspectRatio": req.get("aspectRatio")}
    if outcome == "success":
        video["fifeUrl"] = out.url
        video["servingBaseUri"] = out.url.split("?")[0]
    entry["operation"]["metadata"] = {"@type": MEDIA_TYPE, "name": media_id, "video": video}
    entry["mediaGenerationId"] = media_id
    entry["status"] = SUCCESSFUL
    return entry


@bp.post("/v1/video:batchCheckAsyncVideoGenerationStatus")
def batch_check():
    st = state()
    try:
        _check_google_token(bearer())
    except GoogleError as exc:
        st.record(DIALECT, "poll", None, exc.status)
        return google_error(exc.status, exc.message)
    body = json_body() or {}
    ops_in = body.get("operations")
    # Doc 003's point: send back the WHOLE array (operation, sceneId, status), not
    # just names. Anything else is refused.
    if not isinstance(ops_in, list) or not ops_in or not all(
            isinstance(e, dict) and isinstance(e.get("operation"), dict)
            and isinstance(e["operation"].get("name"), str)
            and "sceneId" in e and "status" in e for e in ops_in):
        st.record(DIALECT, "poll", None, 400)
        return google_error(400, "operations must be the operations array exactly as returned "
                                 "by the generate call ({operation: {name}, sceneId, status}).")
    found = []
    for e in ops_in:
        name = e["operation"]["name"]
        with st.lock:
            op = st.operations.get(st.aliases.get(name, ""))
        if op is None or op.dialect != DIALECT:
            st.record(DIALECT, "poll", None, 404, op_id=name)
            return google_error(404, f"Operation {name} not found.")
        index = op.extra["names"].index(name)
        if e["sceneId"] != op.extra["scenes"][index]:
            st.record(DIALECT, "poll", op, 400)
            return google_error(400, f"sceneId does not match operation {name}.")
        found.append((op, index))

    first = found[0][0]
    present, times = first.directives.counted("token_expired")
    if present and (times is None or st.bump("token_expired", first.id) <= times):
        st.record(DIALECT, "poll", first, 401)
        return google_error(401, "Request had invalid authentication credentials. Expected "
                                 "OAuth 2 access token (simulated expired token).")
    resp = poll_fault(st, first, google_error)
    if resp is None:
        resp = jsonify({"operations": [_operation_entry(op, i) for op, i in found],
                        "remainingCredits": REMAINING_CREDITS})
    st.record(DIALECT, "poll", first, resp.status_code)
    return resp


def _first_prompt(body_json) -> str:
    try:
        r = body_json["requests"][0]
        return (r.get("textInput") or {}).get("prompt") or r.get("prompt") or ""
    except (KeyError, IndexError, TypeError, AttributeError):
        return ""


def _google_direct(kind: str, run) -> Response:
    st = state()
    body = json_body()
    prompt = _first_prompt(body)
    try:
        _check_google_token(bearer())
    except GoogleError as exc:
        st.record(DIALECT, kind, None, exc.status, prompt=prompt)
        return google_error(exc.status, exc.message)
    fault = submit_fault(st, DIALECT, Directives(prompt), prompt, google_error)
    if fault is not None:
        st.record(DIALECT, kind, None, fault.status_code, prompt=prompt)
        return fault
    try:
        result = run(st, body, bearer())
    except GoogleError as exc:
        st.record(DIALECT, kind, None, exc.status, prompt=prompt)
        return google_error(exc.status, exc.message)
    op = _op_of(st, result)
    st.record(DIALECT, kind, op, 200, prompt=prompt)
    return jsonify(result)


def _op_of(st: SimState, result: dict) -> Operation | None:
    ops = result.get("operations")
    if ops:
        with st.lock:
            return st.operations.get(st.aliases.get(ops[0]["operation"]["name"], ""))
    return None


@bp.post("/v1/projects/<project_id>/flowMedia:batchGenerateImages")
def direct_images(project_id: str):
    return _google_direct("image_submit", generate_images)


@bp.post(TEXT_ENDPOINT)
def direct_text():
    return _google_direct("submit", lambda st, b, t: generate_videos(st, b, TEXT_ENDPOINT, t))


@bp.post(REFERENCE_ENDPOINT)
def direct_reference():
    return _google_direct("submit",
                          lambda st, b, t: generate_videos(st, b, REFERENCE_ENDPOINT, t))


# ------------------------------------------------------------------- proxy side


def proxy_error(status: int, message: str) -> Response:
    return json_error(status, {"success": False, "message": message})


def _check_proxy_auth() -> Response | None:
    token = bearer()
    if not token or token != expected_key(DIALECT):
        return proxy_error(401, "Invalid or missing proxy token")
    return None


def _check_flow_url(flow_url, kind: str, body_json) -> str | None:
    """The Google URL the proxy is asked to call must be the right endpoint."""
    if not isinstance(flow_url, str):
        return "flow_url is required"
    parts = urlsplit(flow_url)
    sim_hosts = {urlsplit(base_url()).netloc, request.host}
    if parts.netloc not in sim_hosts | {GOOGLE_HOST} or (
            parts.netloc == GOOGLE_HOST and parts.scheme != "https"):
        return f"flow_url must point at https://{GOOGLE_HOST} (got {flow_url})"
    if kind == "image":
        project = ((body_json or {}).get("clientContext") or {}).get("projectId")
        want = f"/v1/projects/{project}/flowMedia:batchGenerateImages"
        return None if parts.path == want else f"flow_url path must be {want}"
    if parts.path not in (TEXT_ENDPOINT, REFERENCE_ENDPOINT):
        return f"flow_url path must be {TEXT_ENDPOINT} or {REFERENCE_ENDPOINT}"
    return None


def _proxy_create(kind: str) -> Response:
    st = state()
    log_kind = "image_submit" if kind == "image" else "submit"
    denied = _check_proxy_auth()
    if denied is not None:
        st.record(DIALECT, log_kind, None, denied.status_code)
        return denied
    body = json_body()
    if body is None or not all(k in body for k in ("body_json", "flow_auth_token", "flow_url")):
        st.record(DIALECT, log_kind, None, 400)
        return proxy_error(400, "body_json, flow_auth_token and flow_url are required")
    problem = _check_flow_url(body["flow_url"], kind, body["body_json"])
    if problem:
        st.record(DIALECT, log_kind, None, 400)
        return proxy_error(400, problem)
    prompt = _first_prompt(body["body_json"])
    fault = submit_fault(st, DIALECT, Directives(prompt), prompt, proxy_error)
    if fault is not None:
        st.record(DIALECT, log_kind, None, fault.status_code, prompt=prompt)
        return fault

    # The proxy calls Google now; its task shows the answer after a short delay.
    try:
        if kind == "image":
            result, http_status = generate_images(st, body["body_json"], body["flow_auth_token"]), 200
        else:
            endpoint = urlsplit(body["flow_url"]).path
            result = generate_videos(st, body["body_json"], endpoint, body["flow_auth_token"])
            http_status = 200
    except GoogleError as exc:
        result, http_status = exc.body(), exc.status
    task_id = str(uuid.uuid4())
    op = _op_of(st, result) if http_status == 200 else None
    delay = float(st.config.get("flow_proxy_delay_s") or 0)
    _flow_state(st)["tasks"][task_id] = {
        "ready_at": time.time() + delay * (0.5 + random.random()),
        "result": result, "google_status": http_status, "op_id": op.id if op else None,
        "prompt": prompt, "kind": kind}
    st.record(DIALECT, log_kind, op, 200, prompt=prompt)
    return jsonify({"taskId": task_id})


@bp.post("/api/fix/create-image-veo3")
def proxy_create_image():
    return _proxy_create("image")


@bp.post("/api/fix/create-video-veo3")
def proxy_create_video():
    return _proxy_create("video")


@bp.get("/api/fix/task-status")
def proxy_task_status():
    st = state()
    denied = _check_proxy_auth()
    if denied is not None:
        st.record(DIALECT, "task_status", None, denied.status_code)
        return denied
    task_id = request.args.get("taskId", "")
    task = _flow_state(st)["tasks"].get(task_id)
    if task is None:
        st.record(DIALECT, "task_status", None, 404, op_id=task_id)
        return proxy_error(404, f"task {task_id!r} not found")
    op = st.get(task["op_id"]) if task["op_id"] else None
    if time.time() < task["ready_at"]:
        doc = {"taskId": task_id, "status": "processing", "result": {}}
    elif task["google_status"] == 200:
        doc = {"taskId": task_id, "status": "completed", "result": task["result"]}
    else:  # Google refused the call the proxy made; the proxy relays its error
        doc = {"taskId": task_id, "status": "failed", "result": task["result"]}
    st.record(DIALECT, "task_status", op, 200, prompt=task["prompt"], op_id=task["op_id"])
    return jsonify(doc)


@bp.get("/flow/fife/<file_id>")
def fife(file_id: str):
    def gcs_404():  # fifeUrls are signed storage URLs; storage answers in XML
        return Response("<?xml version='1.0' encoding='UTF-8'?><Error><Code>NoSuchKey</Code>"
                        "<Message>The specified key does not exist.</Message></Error>",
                        status=404, mimetype="application/xml")
    return media.download(DIALECT, file_id, expired=gcs_404, not_found=gcs_404)
