"""Gemini API (Google AI Studio) Veo dialect, Google directly.

    POST /v1beta/models/{model}:predictLongRunning     x-goog-api-key (or ?key=)
    GET  /v1beta/models/{model}/operations/{id}        the operation `name`
    GET  /v1beta/files/{file}:download?alt=media       302 -> the bytes, like Google

The request/operation logic here is shared with litellm_gemini (a LiteLLM
pass-through of this same API) through `add_google_ai_routes`; the two differ
only in path prefix, auth answers and where the video URI points.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, jsonify, request

from . import extension, media, push
from .common import Directives, Operation, base_url, expected_key, google_error, json_body, poll_fault, state, submit_fault

DIALECT = "gemini"
RESPONSE_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse"
RAI_REASON = ("We encountered an issue with the audio for your prompt. You have not been "
              "charged. Please try a different prompt.")
# op_error=<value>: the google.rpc code/status the operation ends with.
OP_ERRORS = {"3": (3, "INVALID_ARGUMENT"), "4": (4, "DEADLINE_EXCEEDED"),
             "8": (8, "RESOURCE_EXHAUSTED"), "13": (13, "INTERNAL"), "14": (14, "UNAVAILABLE")}

ASPECT_RATIOS = {"16:9", "9:16"}
RESOLUTIONS = {"720p", "1080p", "4k"}
# Models Google no longer serves (docs/PROVIDERS.md): predictLongRunning answers 404 NOT_FOUND,
# as the real APIs do. Any other name is served (the 3.1 models, and names tests make up).
RETIRED_GEMINI = frozenset({"veo-2.0-generate-001", "veo-3.0-generate-001", "veo-3.0-fast-generate-001",
                            "veo-3.0-generate-preview", "veo-3.0-fast-generate-preview"})
RETIRED_VERTEX = RETIRED_GEMINI | {"veo-3.1-generate-preview", "veo-3.1-fast-generate-preview"}


def retired_model(model: str, *, vertex: bool) -> Response | None:
    """Google's answer to a model it no longer serves, or None."""
    if model not in (RETIRED_VERTEX if vertex else RETIRED_GEMINI):
        return None
    if vertex:
        return google_error(404, f"Publisher Model `publishers/google/models/{model}` was not found or your project "
                                 "does not have access to it.")
    return google_error(404, f"models/{model} is not found for API version v1beta, or is not supported for "
                             "predictLongRunning. Call ListModels to see the list of available models and their supported methods.")
PERSON_GENERATION = {"allow_all", "allow_adult", "dont_allow"}
REFERENCE_TYPES = {"asset", "style"}


def _valid_image(img: Any, allow_gcs: bool) -> bool:
    if not isinstance(img, dict):
        return False
    if allow_gcs and isinstance(img.get("gcsUri"), str):
        return img["gcsUri"].startswith("gs://")
    data = img.get("bytesBase64Encoded")
    if not isinstance(data, str) or not data:
        return False
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def validate_predict(body: dict | None, model: str, *, vertex: bool) -> tuple[str, int] | str:
    """Checks a predictLongRunning body; returns (prompt, sampleCount) or an
    error message for a 400 INVALID_ARGUMENT."""
    if body is None:
        return "Invalid JSON payload received."
    instances = body.get("instances")
    if not isinstance(instances, list) or len(instances) != 1 or not isinstance(instances[0], dict):
        return "`instances` must be a list holding exactly one instance."
    inst = instances[0]
    prompt = inst.get("prompt", "")
    if not isinstance(prompt, str):
        return "`prompt` must be a string."
    problem = _instance_problem(inst, prompt, vertex=vertex)
    if problem:
        return problem
    params = body.get("parameters") or {}
    if not isinstance(params, dict):
        return "`parameters` must be an object."
    samples = params.get("sampleCount", 1)
    if not isinstance(samples, int) or isinstance(samples, bool) or not 1 <= samples <= 4:
        return "`sampleCount` must be an integer between 1 and 4."
    return _parameters_problem(params, model, vertex=vertex) or (prompt, samples)


def _instance_problem(inst: dict, prompt: str, *, vertex: bool) -> str | None:
    """What is wrong with the one instance's prompt and images, or None."""
    if "image" in inst and not _valid_image(inst["image"], vertex):
        return "`image` must hold bytesBase64Encoded (valid base64) and mimeType."
    if not prompt.strip() and "image" not in inst:
        return "A prompt or an image is required."
    if "lastFrame" in inst:
        if "image" not in inst:
            return "`lastFrame` requires `image` (the first frame)."
        if not _valid_image(inst["lastFrame"], vertex):
            return "`lastFrame` must hold bytesBase64Encoded (valid base64) and mimeType."
    refs = inst.get("referenceImages")
    if refs is not None:
        if not isinstance(refs, list) or not 1 <= len(refs) <= 3:
            return "`referenceImages` must hold 1 to 3 images."
        for ref in refs:
            if (not isinstance(ref, dict) or ref.get("referenceType") not in REFERENCE_TYPES
                    or not _valid_image(ref.get("image"), vertex)):
                return "Each reference image needs `image` and `referenceType` asset|style."
    return None


def _parameters_problem(params: dict, model: str, *, vertex: bool) -> str | None:
    """What is wrong with `parameters` beyond sampleCount, or None."""
    if "durationSeconds" in params:
        allowed = {5, 6, 7, 8} if model.startswith("veo-2") else {4, 6, 8}
        if params["durationSeconds"] not in allowed:
            return f"`durationSeconds` must be one of {sorted(allowed)} for {model}."
    if "aspectRatio" in params and params["aspectRatio"] not in ASPECT_RATIOS:
        return "`aspectRatio` must be 16:9 or 9:16."
    if "resolution" in params and params["resolution"] not in RESOLUTIONS:
        return "`resolution` must be 720p, 1080p or 4k."
    if params.get("resolution") == "4k" and "lite" in model:
        return f"4k output isn't supported by {model}."
    if params.get("resolution") in ("1080p", "4k") and params.get("durationSeconds", 8) != 8:
        return f"`resolution` {params['resolution']} requires `durationSeconds` 8."
    if "personGeneration" in params and params["personGeneration"] not in PERSON_GENERATION:
        return "`personGeneration` must be allow_all, allow_adult or dont_allow."
    if "storageUri" in params:
        if not vertex:
            return "`storageUri` isn't supported by the Gemini API."
        if not isinstance(params["storageUri"], str) or not params["storageUri"].startswith("gs://"):
            return "`storageUri` must be a gs:// URI."
    return None


def op_error_object(op: Operation) -> dict:
    if op.rejected:
        return {"code": 3, "message": op.rejected, "status": "INVALID_ARGUMENT"}
    code, status = OP_ERRORS.get(op.directives.get("op_error") or "13", (13, "INTERNAL"))
    return {"code": code, "message": "Video generation failed (simulated op_error).",
            "status": status}


def rai_fields(op: Operation) -> dict:
    return {"raiMediaFilteredCount": len(op.outputs) or 1,
            "raiMediaFilteredReasons": [RAI_REASON]}


def operation_json(op: Operation, name: str, file_uri: Callable[[str], str]) -> dict:
    """The google.longrunning.Operation the Gemini API shows for `op`."""
    if not op.is_done():
        return {"name": name}
    doc: dict[str, Any] = {"name": name, "done": True}
    outcome = op.outcome
    if outcome == "error":
        doc["error"] = op_error_object(op)
        return doc
    if outcome == "rai_filtered":
        gvr: dict[str, Any] = rai_fields(op)
    elif outcome == "empty":
        gvr = {}
    else:
        gvr = {"generatedSamples": [{"video": {"uri": file_uri(o.file_id)}} for o in op.outputs]}
    doc["response"] = {"@type": RESPONSE_TYPE, "generateVideoResponse": gvr}
    return doc


def add_google_ai_routes(bp: Blueprint, dialect: str, prefix: str,
                         check_auth: Callable[[], Response | None],
                         file_uri: Callable[[str], str],
                         download_url: Callable[[str], str]) -> None:
    """predictLongRunning + operation GET under `prefix` (e.g. /v1beta)."""

    @bp.post(prefix + "/models/<model>:predictLongRunning")
    def predict(model: str):
        st = state()
        denied = check_auth()
        if denied is not None:
            st.record(dialect, "submit", None, denied.status_code)
            return denied
        gone = retired_model(model, vertex=False)
        if gone is not None:
            st.record(dialect, "submit", None, 404)
            return gone
        body = json_body()
        checked = validate_predict(body, model, vertex=False)
        if isinstance(checked, str):
            st.record(dialect, "submit", None, 400)
            return google_error(400, checked)
        prompt, samples = checked
        extends = extension.gemini_source(st, dialect, body["instances"][0])
        if isinstance(extends, str):
            st.record(dialect, "submit", None, 400)
            return google_error(400, extends)
        fault = submit_fault(st, dialect, Directives(prompt), prompt, google_error)
        if fault is not None:
            st.record(dialect, "submit", None, fault.status_code, prompt=prompt)
            return fault
        op = st.create_operation(dialect, prompt, model, samples,
                                 extra={"parameters": body.get("parameters") or {},
                                        **({"extends": extends} if extends else {})})
        for out in op.outputs:
            out.url = file_uri(out.file_id)
            out.download_url = download_url(out.file_id)
        st.record(dialect, "submit", op, 200)
        push.schedule(st, op, f"models/{model}/operations/{op.id}", body)
        return jsonify({"name": f"models/{model}/operations/{op.id}"})

    @bp.get(prefix + "/models/<model>/operations/<op_id>")
    def get_operation(model: str, op_id: str):
        st = state()
        denied = check_auth()
        op = st.get(op_id)
        if denied is not None:
            st.record(dialect, "poll", op, denied.status_code, op_id=op_id)
            return denied
        if op is None or op.dialect != dialect or op.model != model:
            st.record(dialect, "poll", None, 404, op_id=op_id)
            return google_error(404, f"Operation models/{model}/operations/{op_id} not found.")
        resp = poll_fault(st, op, google_error)
        if resp is None:
            resp = jsonify(operation_json(op, f"models/{model}/operations/{op_id}", file_uri))
        st.record(dialect, "poll", op, resp.status_code)
        return resp


# ---------------------------------------------------------------- Gemini direct

bp = Blueprint("gemini", __name__)


def _api_key() -> str | None:
    return request.headers.get("x-goog-api-key") or request.args.get("key")


def check_auth() -> Response | None:
    """What generativelanguage.googleapis.com really answers: 403 without a key,
    400 API_KEY_INVALID with a wrong one."""
    key = _api_key()
    if not key:
        return google_error(403, "Method doesn't allow unregistered callers (callers without "
                                 "established identity). Please use API Key or other form of "
                                 "API consumer identity to call this API.")
    if key != expected_key("gemini"):
        return google_error(400, "API key not valid. Please pass a valid API key.", details=[{
            "@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
            "metadata": {"service": "generativelanguage.googleapis.com"}}])
    return None


def _file_uri(file_id: str) -> str:
    # Google hands out https://generativelanguage.googleapis.com/...; we hand out
    # the same path on our own root so the client can actually fetch it.
    return f"{base_url()}/v1beta/files/{file_id}:download?alt=media"


add_google_ai_routes(bp, DIALECT, "/v1beta", check_auth, _file_uri, _file_uri)


@bp.get("/v1beta/files/<file_id>:download")
def download(file_id: str):
    denied = check_auth()
    if denied is not None:
        state().record(DIALECT, "download", None, denied.status_code)
        return denied
    return media.download(
        DIALECT, file_id,
        expired=lambda: google_error(403, f"You do not have permission to access the File "
                                          f"{file_id} or it may not exist."),
        not_found=lambda: google_error(404, f"File {file_id} not found."),
        always_redirect=True)
