"""`flow`: Google Flow (labs.google) through the nanoai.pics proxy (seed document 003).

    proxy  POST {base}/api/fix/create-image-veo3 | create-video-veo3 {body_json, flow_auth_token, flow_url}
           GET  {base}/api/fix/task-status?taskId=      -> {taskId, status: processing|completed|failed, result}
    Google POST {google}/v1/video:batchCheckAsyncVideoGenerationStatus {"operations": <the array as returned>}
           -> operations[i].status PENDING / ACTIVE / SUCCESSFUL (operation.metadata.video.fifeUrl) / ERROR_*

The proxy solves the captcha and calls Google once; its task caches only that first answer, so
progress is read from Google with the whole operations array (not just the names). Images
(first/last frame, references) go through the image step first: each becomes a Flow mediaId.
One entry of body_json.requests = one video, so sample_count N sends N requests.
The Google token (VEO_FLOW_GOOGLE_TOKEN) lasts about an hour: a 401 fails the job with
access_denied at once instead of polling until the deadline.
"""
from __future__ import annotations

import random
import time
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import requests

from veorelay.config import ProviderSettings
from veorelay.core.catalog import ProviderCatalog
from veorelay.core.errors import ErrorCode, JobError, PermanentError, TransientError
from veorelay.providers import google_ops
from veorelay.providers.base import Capabilities, Download, Handle, OutputRef, Progress, ProviderEnv, inline_image
from veorelay.providers.http import open_download, request_json

if TYPE_CHECKING:
    from veorelay.core.accepted import AcceptedImage, AcceptedRequest

DEFAULT_GOOGLE_BASE = "https://aisandbox-pa.googleapis.com"
TEXT_ENDPOINT = "/v1/video:batchAsyncGenerateVideoText"
REFERENCE_ENDPOINT = "/v1/video:batchAsyncGenerateVideoReferenceImages"
CHECK_ENDPOINT = "/v1/video:batchCheckAsyncVideoGenerationStatus"
T2V, T2V_PORTRAIT = "veo_3_1_t2v_fast", "veo_3_1_t2v_fast_portrait"
R2V, FRAMES = "veo_3_0_r2v_fast_ultra", "veo_3_1_i2v_s_fast_fl"
ENDPOINTS = {T2V: TEXT_ENDPOINT, T2V_PORTRAIT: TEXT_ENDPOINT, R2V: REFERENCE_ENDPOINT, FRAMES: REFERENCE_ENDPOINT}
ASPECTS = {"16:9": "VIDEO_ASPECT_RATIO_LANDSCAPE", "9:16": "VIDEO_ASPECT_RATIO_PORTRAIT"}
SUCCESSFUL = "MEDIA_GENERATION_STATUS_SUCCESSFUL"
UNSAFE = "MEDIA_GENERATION_STATUS_ERROR_UNSAFE_GENERATION"
# How long the submit step waits for the proxy to turn an image into a mediaId (within the
# submission claim's lease; past it the step is retried).
IMAGE_WAIT_S = 60.0
TOKEN_HELP = "the Flow Google token was refused (it lasts about an hour): set a fresh VEO_FLOW_GOOGLE_TOKEN"  # noqa: S105 (help text)

# What the dialect can send (no duration, no resolution: Flow makes 8-second 720p videos); which
# model key takes images, last frames or references, and each key's aspect ratio, are the
# catalog's (catalog/flow.toml).
OPTIONS = frozenset({"model", "aspect_ratio", "sample_count", "seed", "image", "last_frame", "reference_images"})
NOTES = ("the model follows from the request when not given: text -> veo_3_1_t2v_fast(_portrait), "
         "image/last_frame -> veo_3_1_i2v_s_fast_fl, reference_images -> veo_3_0_r2v_fast_ultra",)


class Flow:
    name = "flow"
    capabilities: Capabilities

    @classmethod
    def capabilities_for(cls, catalog: ProviderCatalog) -> Capabilities:
        return Capabilities.from_catalog(catalog, options=OPTIONS, notes=NOTES, reference_types=("asset",))

    def __init__(self, settings: ProviderSettings, session: requests.Session, env: ProviderEnv = ProviderEnv()):
        self.capabilities = self.capabilities_for(env.provider_catalog(self.name))
        self._proxy = settings.base_url
        self._proxy_headers = {"Authorization": f"Bearer {settings.api_key or ''}"}
        self._google = (settings.extras.get("GOOGLE_BASE_URL") or DEFAULT_GOOGLE_BASE).rstrip("/")
        self._token = settings.extras.get("GOOGLE_TOKEN") or ""
        self._project = settings.extras.get("PROJECT_ID") or ""
        self._session = session
        self._inputs = env.inputs

    # ------------------------------------------------------------------ the interface
    def submit(self, job_id: str, req: AcceptedRequest) -> Handle:
        model = req.model or self.capabilities.default_model
        frames = {field: self._media_id(req, image) for field, image in (("image", req.image), ("last_frame", req.last_frame)) if image}
        references = [self._media_id(req, ref.image) for ref in req.reference_images or []]
        body_json = video_body(req, model, self._project, frames, references)
        task_id = self._create("create-video-veo3", body_json, f"{self._google}{ENDPOINTS[model]}")
        return {"task_id": task_id, "model": model, "count": len(body_json["requests"])}

    def check(self, handle: Handle) -> Progress:
        task = self._task(handle["task_id"])
        if task.get("status") == "failed":
            return Progress("failed", error=refusal_error(task.get("result")))
        operations = (task.get("result") or {}).get("operations") if task.get("status") == "completed" else None
        if not operations:
            if task.get("status") == "completed":
                error = JobError(ErrorCode.PROVIDER_ERROR, "the Flow proxy finished without operations", False, str(task)[:300])
                return Progress("failed", error=error)
            return Progress("running", percent=0, stage="proxy")
        try:
            answer = request_json(self._session, self.name, "POST", f"{self._google}{CHECK_ENDPOINT}",
                                  json={"operations": operations}, headers={"Authorization": f"Bearer {self._token}"})
        except PermanentError as exc:
            if exc.code == ErrorCode.ACCESS_DENIED:
                raise PermanentError(ErrorCode.ACCESS_DENIED, TOKEN_HELP, exc.provider_detail) from exc
            raise
        return parse_check(answer)

    def open_output(self, ref: OutputRef) -> Download:
        if not ref.url:
            raise PermanentError(ErrorCode.DOWNLOAD_INVALID, f"output {ref.index} has no fifeUrl")
        return open_download(self._session, self.name, ref.url)  # a signed URL: no credentials

    # ------------------------------------------------------------------ the proxy
    def _create(self, route: str, body_json: dict[str, Any], flow_url: str) -> str:
        answer = request_json(self._session, self.name, "POST", f"{self._proxy}/api/fix/{route}", headers=self._proxy_headers,
                              json={"body_json": body_json, "flow_auth_token": self._token, "flow_url": flow_url})
        task_id = answer.get("taskId") if isinstance(answer, dict) else None
        if not isinstance(task_id, str) or not task_id:
            raise PermanentError(ErrorCode.PROVIDER_ERROR, "the Flow proxy returned no taskId", str(answer)[:500])
        return task_id

    def _task(self, task_id: str) -> dict[str, Any]:
        answer = request_json(self._session, self.name, "GET", f"{self._proxy}/api/fix/task-status?taskId={quote(task_id, safe='')}",
                              headers=self._proxy_headers)
        if not isinstance(answer, dict):
            raise TransientError(ErrorCode.PROVIDER_UNAVAILABLE, "the Flow proxy's task status is not a JSON object")
        return answer

    def _media_id(self, req: AcceptedRequest, image: AcceptedImage) -> str:
        """Flow refers to images by mediaId: the image step turns the job's image into one."""
        data, mime = inline_image(self._inputs, image)
        body_json = image_body(req, self._project, data, mime)
        task_id = self._create("create-image-veo3", body_json, f"{self._google}/v1/projects/{self._project}/flowMedia:batchGenerateImages")
        waited, pause = 0.0, 0.5
        while True:
            task = self._task(task_id)
            if task.get("status") == "completed":
                media = (task.get("result") or {}).get("media") or []
                name = media[0].get("name") if media and isinstance(media[0], dict) else None
                if not isinstance(name, str) or not name:
                    raise PermanentError(ErrorCode.PROVIDER_ERROR, "Flow's image step returned no mediaId", str(task)[:300])
                return name
            if task.get("status") == "failed":
                error = refusal_error(task.get("result"))
                raise PermanentError(error.code, f"Flow's image step failed: {error.message}", error.provider_detail)
            if waited >= IMAGE_WAIT_S:
                raise TransientError(ErrorCode.PROVIDER_TIMEOUT, f"Flow's image step was not done after {IMAGE_WAIT_S:.0f} s")
            time.sleep(pause)
            waited += pause
            pause = min(pause * 2, 3.0)


def _client_context(project: str, video: bool) -> dict[str, Any]:
    context: dict[str, Any] = {"sessionId": f";{int(time.time() * 1000)}", "projectId": project, "tool": "PINHOLE"}
    if video:  # as document 003 sends it
        context.update(recaptchaToken="", userPaygateTier="PAYGATE_TIER_TWO")
    return context


def image_body(req: AcceptedRequest, project: str, data: str, mime: str) -> dict[str, Any]:
    context = _client_context(project, video=False)
    aspect = "IMAGE_ASPECT_RATIO_PORTRAIT" if req.aspect_ratio == "9:16" else "IMAGE_ASPECT_RATIO_LANDSCAPE"
    return {"clientContext": context, "requests": [{
        # A generation seed, not a secret: any PRNG will do.
        "clientContext": context, "seed": req.seed if req.seed is not None else random.randint(1, 999_999),  # noqa: S311
        "imageModelName": "GEM_PIX_2", "imageAspectRatio": aspect, "prompt": req.prompt,
        "imageInputs": [{"imageInputType": "IMAGE_INPUT_TYPE_REFERENCE", "rawImageBytes": data, "mimeType": mime}],
    }]}


def video_body(req: AcceptedRequest, model: str, project: str, frames: dict[str, str], references: list[str]) -> dict[str, Any]:
    default_aspect = "VIDEO_ASPECT_RATIO_PORTRAIT" if model == T2V_PORTRAIT else "VIDEO_ASPECT_RATIO_LANDSCAPE"
    aspect = ASPECTS[req.aspect_ratio] if req.aspect_ratio else default_aspect
    images = [{"imageUsageType": "IMAGE_USAGE_TYPE_ASSET", "mediaId": m} for m in references]
    if "image" in frames:
        images.append({"imageUsageType": "IMAGE_USAGE_TYPE_START_FRAME", "mediaId": frames["image"]})
    if "last_frame" in frames:
        images.append({"imageUsageType": "IMAGE_USAGE_TYPE_END_FRAME", "mediaId": frames["last_frame"]})
    base_seed = req.seed if req.seed is not None else random.randint(1, 99_999)  # noqa: S311 (a generation seed)
    requests_ = []
    for i in range(req.sample_count or 1):
        entry: dict[str, Any] = {
            "aspectRatio": aspect, "metadata": {"sceneId": str(uuid.uuid4())}, "seed": base_seed + i,
            "textInput": {"prompt": req.prompt}, "videoModelKey": model,
        }
        if images:
            entry["referenceImages"] = images
        requests_.append(entry)
    return {"clientContext": _client_context(project, video=True), "requests": requests_}


def parse_check(answer: Any) -> Progress:
    entries = answer.get("operations") if isinstance(answer, dict) else None
    if not isinstance(entries, list) or not entries:
        raise TransientError(ErrorCode.PROVIDER_UNAVAILABLE, "Flow's status check answered without operations", str(answer)[:300])
    outputs: list[OutputRef] = []
    errors: list[JobError] = []
    pending = 0
    for entry in entries:
        status = str((entry or {}).get("status") or "")
        operation = (entry or {}).get("operation") or {}
        if status == SUCCESSFUL:
            url = ((operation.get("metadata") or {}).get("video") or {}).get("fifeUrl")
            if isinstance(url, str) and url:
                outputs.append(OutputRef(len(outputs), url=url))
            else:
                errors.append(JobError(ErrorCode.PROVIDER_ERROR, "Flow reported success without a video (fifeUrl)"))
        elif "ERROR" in status or "FAILED" in status:
            errors.append(operation_failure(status, operation.get("error")))
        else:
            pending += 1
    if pending:
        return Progress("running", percent=int(100 * (len(entries) - pending) / len(entries)), stage="generating")
    if outputs:  # some videos of a batch may be filtered; the others are still the client's
        return Progress("succeeded", percent=100, outputs=tuple(outputs))
    return Progress("failed", error=errors[0])


def operation_failure(status: str, error: Any) -> JobError:
    message = str((error or {}).get("message") if isinstance(error, dict) else error or status)[:500]
    if status == UNSAFE or "UNSAFE" in message:
        return JobError(ErrorCode.RAI_FILTERED, f"Flow's safety filters removed the video: {message}", False,
                        {"status": status, "error": error})
    return JobError(ErrorCode.PROVIDER_ERROR, f"Flow could not make the video: {message}", False, {"status": status, "error": error})


def refusal_error(result: Any) -> JobError:
    """The proxy's task failed because Google refused the call it made for us."""
    error = (result or {}).get("error") if isinstance(result, dict) else None
    if not isinstance(error, dict):
        return JobError(ErrorCode.PROVIDER_ERROR, "the Flow proxy's task failed", False, str(result)[:300])
    mapped = google_ops.operation_error(error)
    if mapped.code == ErrorCode.ACCESS_DENIED:
        return JobError(ErrorCode.ACCESS_DENIED, TOKEN_HELP, False, mapped.provider_detail)
    return mapped
