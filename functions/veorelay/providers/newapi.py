"""`newapi`: a new-api gateway's Veo task API (seed document 001).

    POST {base}/v1/video/generations      {model, prompt, image?, metadata{...}} -> {task_id}
    GET  {base}/v1/video/generations/{id} {code, message, data{status, url, bytes_base64_encoded, error}}
    GET  data.url (= {base}/v1/videos/{id}/content)  the video, behind the same Bearer key

Quirks: the document lists queued/in_progress/completed/failed but its examples say processing
and succeeded (both accepted); a failed task carries its message in data.url (data.error is
null); with a Vertex upstream the video comes as data.bytes_base64_encoded, decoded while it
streams to the bucket (inline.py); one task makes one video; lastFrame only on Veo 3.1,
referenceImages (at most 3) only on veo-3.1-generate-preview — refused here before any call,
because the gateway accepts them and fails the task later.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from veorelay.core.catalog import ProviderCatalog
from veorelay.core.errors import ErrorCode, JobError, PermanentError
from veorelay.providers.base import Capabilities, Download, Handle, KeyedDialect, OutputRef, Progress, inline_image
from veorelay.providers.http import open_download, request_json
from veorelay.providers.inline import InlineAnswer, InlineVideoDownload, fetch_inline_json, open_json_stream

if TYPE_CHECKING:
    from veorelay.core.accepted import AcceptedRequest

INLINE_KEYS = ("bytes_base64_encoded",)
RUNNING = {"queued", "pending", "submitted", "in_progress", "processing", "running"}
SUCCEEDED = {"succeeded", "completed", "success"}
FAILED = {"failed", "failure", "error", "cancelled"}
_FILTER_WORDS = ("safety", "blocked", "raimediafiltered", "content policy", "usage guidelines")
_METADATA = {
    "aspect_ratio": "aspectRatio",
    "duration_seconds": "durationSeconds",
    "negative_prompt": "negativePrompt",
    "person_generation": "personGeneration",
    "resolution": "resolution",
}
# What the dialect can send; the models and their rules (one video a task, lastFrame on Veo 3.1,
# references on veo-3.1-generate-preview) are the catalog's (catalog/newapi.toml).
OPTIONS = frozenset({"model", "negative_prompt", "aspect_ratio", "duration_seconds", "resolution", "person_generation",
                     "image", "last_frame", "reference_images"})


class NewApi(KeyedDialect):
    name = "newapi"

    @classmethod
    def capabilities_for(cls, catalog: ProviderCatalog) -> Capabilities:
        return Capabilities.from_catalog(catalog, options=OPTIONS)

    def submit(self, job_id: str, req: AcceptedRequest) -> Handle:
        body = submit_body(req, self._b64, self.capabilities.default_model)
        answer = request_json(self._session, self.name, "POST", f"{self._base}/v1/video/generations", json=body, headers=self._headers)
        task_id = task_id_of(answer)
        if task_id is None:
            raise PermanentError(ErrorCode.PROVIDER_ERROR, "newapi accepted the request but returned no task_id", str(answer)[:500])
        return {"task_id": task_id, "model": body["model"]}

    def check(self, handle: Handle) -> Progress:
        answer = fetch_inline_json(self._session, self.name, "GET", self._task_url(handle["task_id"]), INLINE_KEYS, headers=self._headers)
        return parse_task(answer, handle["task_id"])

    def open_output(self, ref: OutputRef) -> Download:
        inline = ref.extra.get("inline")
        if isinstance(inline, dict):
            resp = open_json_stream(self._session, self.name, "GET", self._task_url(inline["task_id"]), headers=self._headers)
            return InlineVideoDownload(resp, INLINE_KEYS, int(inline["blob"]), inline.get("size"))
        if not ref.url:
            raise PermanentError(ErrorCode.DOWNLOAD_INVALID, f"output {ref.index} has no download URL")
        # The content route wants the key too; open_download sends it to the gateway's own origin only.
        return open_download(self._session, self.name, ref.url, headers=self._headers)

    def _task_url(self, task_id: str) -> str:
        return f"{self._base}/v1/video/generations/{quote(task_id, safe='')}"

    def _b64(self, image) -> str:
        return inline_image(self._inputs, image)[0]


def submit_body(req: AcceptedRequest, b64, default_model: str | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {wire: getattr(req, field) for field, wire in _METADATA.items() if getattr(req, field) is not None}
    body: dict[str, Any] = {"model": req.model or default_model, "prompt": req.prompt}
    if req.image is not None:
        body["image"] = b64(req.image)
    if req.last_frame is not None:
        metadata["lastFrame"] = b64(req.last_frame)
    if req.reference_images:
        metadata["referenceImages"] = [{"image": b64(ref.image), "referenceType": ref.type} for ref in req.reference_images]
    body["metadata"] = metadata
    return body


def task_id_of(answer: Any) -> str | None:
    """{"task_id"} as the document says; also {"data": {"task_id"}} and {"id"} (other new-api builds)."""
    if not isinstance(answer, dict):
        return None
    nested = answer.get("data")
    data = nested if isinstance(nested, dict) else {}
    for value in (answer.get("task_id"), data.get("task_id"), answer.get("id")):
        if isinstance(value, str) and value:
            return value
    return None


def parse_task(answer: InlineAnswer, task_id: str) -> Progress:
    doc = answer.doc if isinstance(answer.doc, dict) else {}
    data = doc.get("data")
    if not isinstance(data, dict):
        message = str(doc.get("message") or "the task answer has no data")[:300]
        return Progress("failed", error=JobError(ErrorCode.PROVIDER_ERROR, f"newapi: {message}", False, {"code": doc.get("code")}))
    status = str(data.get("status") or "").strip().lower()
    if status in FAILED:
        return Progress("failed", error=task_error(data))
    if status in SUCCEEDED:
        url = data.get("url")
        if isinstance(url, str) and url.lower().startswith(("https://", "http://")):
            return Progress("succeeded", percent=100, outputs=(OutputRef(0, url=url),))
        blob = answer.blob_index(data.get("bytes_base64_encoded"))
        if blob is not None and answer.blob_sizes[blob] > 0:
            inline = {"task_id": task_id, "blob": blob, "size": answer.blob_sizes[blob]}
            return Progress("succeeded", percent=100, outputs=(OutputRef(0, extra={"inline": inline}),))
        return Progress("failed", error=JobError(
            ErrorCode.PROVIDER_ERROR, "newapi reported success without a video (a gateway that missed a safety filter answers so)"))
    return Progress("running", percent=_percent(data.get("progress")), stage=status or None)


def task_error(data: dict[str, Any]) -> JobError:
    """The message of a failed task: in data.url (as the document shows), or data.error."""
    error = data.get("error")
    if isinstance(error, dict):
        message = error.get("message") or error.get("code")
    else:
        message = error
    if not message:
        url = data.get("url")
        message = url if isinstance(url, str) and url and not url.lower().startswith(("http://", "https://")) else None
    message = str(message or "newapi reported the task failed")[:500]
    code = ErrorCode.RAI_FILTERED if any(word in message.lower() for word in _FILTER_WORDS) else ErrorCode.PROVIDER_ERROR
    return JobError(code, message, False, {"status": data.get("status"), "message": message})


def _percent(value: Any) -> int | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return max(0, min(100, int(value)))
    if isinstance(value, str) and value.strip().rstrip("%").isdigit():
        return max(0, min(100, int(value.strip().rstrip("%"))))
    return None
