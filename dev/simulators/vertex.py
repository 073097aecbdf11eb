"""Vertex AI Veo dialect, Google directly.

    POST /v1/projects/{p}/locations/{l}/publishers/google/models/{m}:predictLongRunning
    POST /v1/projects/{p}/locations/{l}/publishers/google/models/{m}:fetchPredictOperation
         {"operationName": "projects/.../operations/{uuid}"}
    Authorization: Bearer <token>

Done operations carry the videos inline (`bytesBase64Encoded`) or, when the
request set parameters.storageUri, as `gcsUri`s -- the simulator then really
writes the objects into the GCS emulator named by STORAGE_EMULATOR_HOST (JSON
API media upload, streamed), before it reports the operation done, as Vertex
writes them before the operation completes.
"""

from __future__ import annotations

import base64
import random
import re
import uuid
from urllib.parse import quote

import requests
from flask import Blueprint, Response, jsonify

from . import extension, media, push
from .common import (
    Directives,
    Operation,
    bearer,
    expected_key,
    google_error,
    json_body,
    poll_fault,
    state,
    storage_emulator_url,
    submit_fault,
)
from .gemini import op_error_object, rai_fields, retired_model, validate_predict

DIALECT = "vertex"
RESPONSE_TYPE = "type.googleapis.com/cloud.ai.large_models.vision.GenerateVideoResponse"
MODEL_PATH = "/v1/projects/<project>/locations/<location>/publishers/google/models/<model>"
_OP_NAME = re.compile(r"^projects/([^/]+)/locations/([^/]+)/publishers/google/models/([^/]+)"
                      r"/operations/([^/]+)$")

bp = Blueprint("vertex", __name__)


def check_auth() -> Response | None:
    token = bearer()
    if not token:
        return google_error(401, "Request is missing required authentication credential. "
                                 "Expected OAuth 2 access token, login cookie or other valid "
                                 "authentication credential.")
    if token != expected_key(DIALECT):
        return google_error(401, "Request had invalid authentication credentials. Expected "
                                 "OAuth 2 access token, login cookie or other valid "
                                 "authentication credential.")
    return None


@bp.post(MODEL_PATH + ":predictLongRunning")
def predict(project: str, location: str, model: str):
    st = state()
    denied = check_auth()
    if denied is not None:
        st.record(DIALECT, "submit", None, denied.status_code)
        return denied
    gone = retired_model(model, vertex=True)
    if gone is not None:
        st.record(DIALECT, "submit", None, 404)
        return gone
    body = json_body()
    checked = validate_predict(body, model, vertex=True)
    if isinstance(checked, str):
        st.record(DIALECT, "submit", None, 400)
        return google_error(400, checked)
    prompt, samples = checked
    extends = extension.vertex_source(body["instances"][0])
    if isinstance(extends, str):
        st.record(DIALECT, "submit", None, 400)
        return google_error(400, extends)
    fault = submit_fault(st, DIALECT, Directives(prompt), prompt, google_error)
    if fault is not None:
        st.record(DIALECT, "submit", None, fault.status_code, prompt=prompt)
        return fault
    params = body.get("parameters") or {}
    op_id = str(uuid.uuid4())
    name = (f"projects/{project}/locations/{location}/publishers/google/models/{model}"
            f"/operations/{op_id}")
    op = st.create_operation(DIALECT, prompt, model, samples, op_id=op_id,
                             extra={"name": name, "storage_uri": params.get("storageUri"), "parameters": params,
                                    **({"extends": extends} if extends else {})})
    for out in op.outputs:
        out.url = _gcs_uri(op, out.index) if op.extra["storage_uri"] else "inline:bytesBase64Encoded"
    st.record(DIALECT, "submit", op, 200)
    push.schedule(st, op, name, body)
    return jsonify({"name": name})


@bp.post(MODEL_PATH + ":fetchPredictOperation")
def fetch(project: str, location: str, model: str):
    st = state()
    denied = check_auth()
    if denied is not None:
        st.record(DIALECT, "poll", None, denied.status_code)
        return denied
    body = json_body() or {}
    name = body.get("operationName")
    m = _OP_NAME.match(name) if isinstance(name, str) else None
    if not m:
        st.record(DIALECT, "poll", None, 400)
        return google_error(400, "`operationName` must be the full operation name "
                                 "projects/.../operations/{id} returned by predictLongRunning.")
    op = st.get(m.group(4))
    if (op is None or op.dialect != DIALECT or op.extra.get("name") != name
            or (project, location, model) != m.groups()[:3]):
        st.record(DIALECT, "poll", None, 404, op_id=m.group(4))
        return google_error(404, f"Operation {name} not found.")
    resp = poll_fault(st, op, google_error)
    if resp is None:
        resp = jsonify(operation_json(op))
    st.record(DIALECT, "poll", op, resp.status_code)
    return resp


def operation_json(op: Operation) -> dict:
    name = op.extra["name"]
    if not op.is_done():
        return {"name": name}
    doc: dict = {"name": name, "done": True}
    outcome = op.outcome
    if outcome == "success" and op.extra["storage_uri"]:
        upload_error = _upload_once(op)
        if upload_error:
            doc["error"] = {"code": 13, "message": upload_error, "status": "INTERNAL"}
            return doc
    if outcome == "error":
        doc["error"] = op_error_object(op)
        return doc
    response: dict = {"@type": RESPONSE_TYPE}
    if outcome == "rai_filtered":
        response.update(rai_fields(op))
    elif outcome == "success":
        if op.extra["storage_uri"]:
            response["videos"] = [{"gcsUri": uri, "mimeType": "video/mp4"}
                                  for uri in op.extra["gcs_uris"]]
        else:
            response["videos"] = [
                {"bytesBase64Encoded": base64.b64encode(media.video_for(op, o).read_all()).decode(),
                 "mimeType": "video/mp4"} for o in op.outputs]
    doc["response"] = response
    return doc


def _gcs_uri(op: Operation, index: int) -> str:
    # Vertex writes <storageUri>/<numeric id>/sample_<n>.mp4.
    number = op.extra.setdefault("gcs_number", str(random.randrange(10**18, 10**19)))
    return f"{op.extra['storage_uri'].rstrip('/')}/{number}/sample_{index}.mp4"


def _upload_once(op: Operation) -> str | None:
    """Write every output to the GCS emulator, once; return an error text or None."""
    with op.lock:
        if "gcs_uris" in op.extra:
            return op.extra.get("upload_error")
        host = storage_emulator_url()
        uris = [_gcs_uri(op, o.index) for o in op.outputs]
        error = None
        if not host:
            error = "storageUri given but STORAGE_EMULATOR_HOST is not set in the simulator."
        else:
            for out, uri in zip(op.outputs, uris):
                bucket, _, obj = uri[len("gs://"):].partition("/")
                try:
                    r = requests.post(
                        f"{host}/upload/storage/v1/b/{quote(bucket, safe='')}/o",
                        params={"uploadType": "media", "name": obj},
                        data=media.ReaderStream(media.video_for(op, out)),
                        headers={"Content-Type": "video/mp4"}, timeout=120)
                except requests.RequestException as exc:
                    error = f"Failed to write {uri}: {exc}"
                    break
                if r.status_code >= 300:
                    error = f"Failed to write {uri}: HTTP {r.status_code} {r.text[:200]}"
                    break
        op.extra["gcs_uris"] = uris
        op.extra["upload_error"] = error
        return error
