"""newapi dialect (doc 001): a new-api gateway's Veo task API.

    POST /v1/video/generations   and  POST /v1/videos          -> {"task_id": ...}
    GET  /v1/video/generations/{task_id}  and  GET /v1/videos/{task_id}
         -> {"code": "success", "message": "", "data": {bytes_base64_encoded, error,
             format, metadata, status, task_id, url}}
    GET  /v1/videos/{task_id}/content                          -> the mp4
    Authorization: Bearer <key> on every route (content included: new-api serves
    it behind the same token check).

Status words: doc 001's status list says queued / in_progress / completed /
failed while its examples and field table say "processing" and "succeeded". We
serve queued -> in_progress -> processing -> succeeded | failed, so a client must
accept both running words; "completed" is never sent.

Documented model rules, enforced as the doc's failure example shows them (the
submit is accepted, the task then reads failed with the message in data.url):
metadata.lastFrame only on Veo 3.1 models; metadata.referenceImages only on
veo-3.1-generate-preview, at most 3, referenceType asset|style.

One task = one video: data has a single url / bytes_base64_encoded, so
sampleCount is accepted but only one output exists.
"""

from __future__ import annotations

import base64
import binascii

from flask import Blueprint, Response, jsonify

from . import media
from .common import Directives, Operation, base_url, bearer, expected_key, json_body, json_error, new_id, poll_fault, state, submit_fault

DIALECT = "newapi"
REFERENCE_MODEL = "veo-3.1-generate-preview"

bp = Blueprint("newapi", __name__)


def error(status: int, message: str, kind: str = "new_api_error") -> Response:
    """new-api's OpenAI-style error envelope."""
    return json_error(status, {"error": {"message": message, "type": kind, "param": "",
                                         "code": None}})


def check_auth() -> Response | None:
    token = bearer()
    if not token:
        return error(401, "未提供令牌 (no token provided)")
    if token != expected_key(DIALECT):
        return error(401, "无效的令牌 (invalid token)")
    return None


def _is_b64(value) -> bool:
    if not isinstance(value, str) or not value:
        return False
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _model_rule_violation(model: str, meta: dict) -> str | None:
    """The doc's model-specific rules, as an upstream error message."""
    if meta.get("lastFrame") is not None and not model.startswith("veo-3.1"):
        return f"lastFrame is not supported by {model}; it requires a Veo 3.1 model."
    refs = meta.get("referenceImages")
    if refs is not None:
        if model != REFERENCE_MODEL:
            return f"Reference to video is not supported by {model}; use {REFERENCE_MODEL}."
        if not isinstance(refs, list) or not 1 <= len(refs) <= 3:
            return "Reference to video supports 1 to 3 reference images."
        if any(not isinstance(r, dict) or r.get("referenceType") not in ("asset", "style")
               for r in refs):
            return "Reference to video does not support this mix of reference images."
    return None


def _validate(body: dict | None) -> str | None:
    """Malformed requests are refused at once with a 400 (not a failed task)."""
    if body is None:
        return "invalid request body: expected a JSON object"
    for field in ("model", "prompt"):
        if not isinstance(body.get(field), str) or not body[field].strip():
            return f"field {field} is required"
    # doc 001 is the image-to-video page and marks `image` required; the same
    # endpoint does text-to-video without it, so it is optional here -- but when
    # present it must be base64.
    if "image" in body and body["image"] not in (None, "") and not _is_b64(body["image"]):
        return "image must be base64-encoded image data"
    meta = body.get("metadata")
    if meta is not None and not isinstance(meta, dict):
        return "metadata must be an object"
    meta = meta or {}
    if meta.get("lastFrame") not in (None, "") and not _is_b64(meta["lastFrame"]):
        return "metadata.lastFrame must be base64-encoded image data"
    for ref in meta.get("referenceImages") or []:
        if isinstance(ref, dict) and not _is_b64(ref.get("image")):
            return "metadata.referenceImages[].image must be base64-encoded image data"
    if "durationSeconds" in meta and meta["durationSeconds"] not in (4, 6, 8):
        return "metadata.durationSeconds must be 4, 6 or 8"
    if "aspectRatio" in meta and meta["aspectRatio"] not in ("16:9", "9:16"):
        return 'metadata.aspectRatio must be "16:9" or "9:16"'
    return None


def _submit():
    st = state()
    denied = check_auth()
    if denied is not None:
        st.record(DIALECT, "submit", None, denied.status_code)
        return denied
    body = json_body()
    problem = _validate(body)
    if problem:
        st.record(DIALECT, "submit", None, 400)
        return error(400, problem, "invalid_request_error")
    prompt, model = body["prompt"], body["model"]
    directives = Directives(prompt)
    fault = submit_fault(st, DIALECT, directives, prompt, error)
    if fault is not None:
        st.record(DIALECT, "submit", None, fault.status_code, prompt=prompt)
        return fault
    meta = body.get("metadata") or {}
    upstream = "vertex" if (directives.get("upstream") == "vertex" or directives.has("vertex_upstream")) \
        else st.config.get("newapi_upstream", "gemini")
    op = st.create_operation(DIALECT, prompt, model, 1, op_id="task_" + new_id(24),
                             directives=directives, samples_directive=False,
                             rejected=_model_rule_violation(model, meta),
                             extra={"upstream": upstream, "metadata": meta})
    for out in op.outputs:
        out.url = out.download_url = _content_url(op.id)
    st.record(DIALECT, "submit", op, 200)
    return jsonify({"task_id": op.id})


def _content_url(task_id: str) -> str:
    return f"{base_url()}/v1/videos/{task_id}/content"


def _status_word(op: Operation) -> str:
    if op.is_done():
        return "succeeded" if op.outcome in ("success", "empty") else "failed"
    p = op.progress()
    return "queued" if p < 0.2 else "in_progress" if p < 0.6 else "processing"


def _failure_message(op: Operation) -> str:
    if op.rejected:
        return op.rejected
    if op.outcome == "rai_filtered":
        return ("Video generation was blocked by safety filters (raiMediaFilteredCount=1): "
                "the prompt or output violated the usage guidelines.")
    return "Video generation failed: upstream returned an error (simulated op_error)."


def task_json(op: Operation) -> dict:
    data = {"bytes_base64_encoded": "", "error": None, "format": "mp4", "metadata": None,
            "status": _status_word(op), "task_id": op.id, "url": ""}
    if data["status"] == "failed":
        data["url"] = _failure_message(op)  # as documented: the message goes in url
    elif data["status"] == "succeeded" and op.outcome == "success":
        if op.extra["upstream"] == "vertex":
            video = media.video_for(op, op.outputs[0])
            data["bytes_base64_encoded"] = base64.b64encode(video.read_all()).decode()
        else:
            data["url"] = _content_url(op.id)
    # outcome "empty" (empty_success): succeeded with neither url nor bytes -- the
    # gateway that missed a safety filter, recording an empty success.
    return {"code": "success", "message": "", "data": data}


def _poll(task_id: str):
    st = state()
    denied = check_auth()
    op = st.get(task_id)
    if denied is not None:
        st.record(DIALECT, "poll", op, denied.status_code, op_id=task_id)
        return denied
    if op is None or op.dialect != DIALECT:
        st.record(DIALECT, "poll", None, 404, op_id=task_id)
        return error(404, "task_not_exist")
    resp = poll_fault(st, op, error)
    if resp is None:
        resp = jsonify(task_json(op))
    st.record(DIALECT, "poll", op, resp.status_code)
    return resp


bp.add_url_rule("/v1/video/generations", "submit_generations", _submit, methods=["POST"])
bp.add_url_rule("/v1/videos", "submit_videos", _submit, methods=["POST"])
bp.add_url_rule("/v1/video/generations/<task_id>", "poll_generations", _poll, methods=["GET"])
bp.add_url_rule("/v1/videos/<task_id>", "poll_videos", _poll, methods=["GET"])


@bp.get("/v1/videos/<task_id>/content")
def content(task_id: str):
    denied = check_auth()
    if denied is not None:
        state().record(DIALECT, "download", None, denied.status_code, op_id=task_id)
        return denied
    st = state()
    op = st.get(task_id)
    file_id = op.outputs[0].file_id if op is not None and op.dialect == DIALECT and op.outputs else ""
    return media.download(DIALECT, file_id,
                          expired=lambda: error(404, "video expired or not found"),
                          not_found=lambda: error(404, "task_not_exist or video not ready"))
