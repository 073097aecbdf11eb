"""Google long-running video operations (Gemini API shape), shared by the dialects that
speak it: litellm-gemini (pass-through) and gemini (direct)."""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from veorelay.core.errors import ErrorCode, JobError, PermanentError
from veorelay.core.push_events import request_webhook_url
from veorelay.providers.base import KeyedDialect, OutputRef, Progress, ProviderEnv, inline_image

if TYPE_CHECKING:
    from veorelay.core.accepted import AcceptedImage, AcceptedRequest, AcceptedSourceVideo


def inline_part(inputs, image: AcceptedImage) -> dict[str, str]:
    """An image inside a Google predict request: its bytes as base64, and its type."""
    data, mime = inline_image(inputs, image)
    return {"bytesBase64Encoded": data, "mimeType": mime}


class GoogleKeyDialect(KeyedDialect):
    """A Gemini-API-shaped endpoint keyed with `x-goog-api-key` (direct, or passed through)."""

    @staticmethod
    def auth_headers(key: str) -> dict[str, str]:
        return {"x-goog-api-key": key}

    def _image(self, image: AcceptedImage) -> dict[str, str]:
        return inline_part(self._inputs, image)

    # Completion events: VEO_<PROVIDER>_PUSH (off | static | request); the direct API asks for
    # the per-request webhook by default, a gateway (litellm-gemini) only when told to (it must
    # pass `webhookConfig` through).
    default_push = "off"

    def __init__(self, settings: Any, session: Any, env: ProviderEnv = ProviderEnv()):
        super().__init__(settings, session, env)
        self._events_url = env.events_url
        self._push_mode = (settings.extras.get("PUSH") or self.default_push) if env.events_url else "off"

    def predict_request(self, job_id: str, req: AcceptedRequest) -> tuple[dict[str, Any], str | None]:
        """The predictLongRunning body of `req`, asking for push as configured, and the handle's
        "push" (None: not asked)."""
        body = predict_body(req, image_field=self._image)
        push_fields, push = webhook_push(self._push_mode, self._events_url, job_id)
        body.update(push_fields)
        return body, push


def operation_handle(answer: Any, model: str, push: str | None) -> dict[str, Any]:
    """The handle of a predictLongRunning answer: its operation's name (a PermanentError if it
    has none), the model, and how push was asked for (google_ops.webhook_push)."""
    name = answer.get("name") if isinstance(answer, dict) else None
    if not isinstance(name, str) or "/operations/" not in name:
        raise PermanentError(ErrorCode.PROVIDER_ERROR, "the provider accepted the request but returned no operation name",
                             str(answer)[:500])
    return {"operation": name, "model": model, **({"push": push} if push else {})}


def webhook_push(mode: str, events_url: str | None, job_id: str) -> tuple[dict[str, Any], str | None]:
    """The Gemini API's webhooks: `static` adds nothing to the request (the project's
    WebhookService registration fires for every video.generated); `request` names this job's
    URI in `webhookConfig` (its URIs replace the registered ones) with the job id as metadata."""
    if not events_url or mode not in ("static", "request"):
        return {}, None
    if mode == "static":
        return {}, "static"
    return {"webhookConfig": {"uris": [request_webhook_url(events_url, job_id)], "userMetadata": {"job_id": job_id}}}, "request"

# google.rpc.Code names and numbers seen in operation errors → our vocabulary.
# Keyed by the RPC status name or number; looked up with whatever an answer carries.
_RPC_CODES: dict[object, ErrorCode] = {
    "INVALID_ARGUMENT": ErrorCode.INVALID_REQUEST, 3: ErrorCode.INVALID_REQUEST,
    "FAILED_PRECONDITION": ErrorCode.INVALID_REQUEST, 9: ErrorCode.INVALID_REQUEST,
    "PERMISSION_DENIED": ErrorCode.ACCESS_DENIED, 7: ErrorCode.ACCESS_DENIED,
    "UNAUTHENTICATED": ErrorCode.ACCESS_DENIED, 16: ErrorCode.ACCESS_DENIED,
    "RESOURCE_EXHAUSTED": ErrorCode.QUOTA_EXCEEDED, 8: ErrorCode.QUOTA_EXCEEDED, 429: ErrorCode.QUOTA_EXCEEDED,
    "DEADLINE_EXCEEDED": ErrorCode.PROVIDER_TIMEOUT, 4: ErrorCode.PROVIDER_TIMEOUT,
    "UNAVAILABLE": ErrorCode.PROVIDER_UNAVAILABLE, 14: ErrorCode.PROVIDER_UNAVAILABLE,
}

# The models and what each honours are the catalog's (functions/veorelay/catalog/*.toml); this
# module keeps only the wire shape the dialects share.
IMAGE_OPTIONS = frozenset({"image", "last_frame", "reference_images"})

_PARAMETERS = {
    "negative_prompt": "negativePrompt",
    "aspect_ratio": "aspectRatio",
    "duration_seconds": "durationSeconds",
    "resolution": "resolution",
    "sample_count": "sampleCount",
    "seed": "seed",
    "person_generation": "personGeneration",
    "generate_audio": "generateAudio",
}


ImageField = Callable[["AcceptedImage"], dict[str, Any]]
VideoField = Callable[["AcceptedSourceVideo"], dict[str, Any]]


def file_video(video: AcceptedSourceVideo) -> dict[str, Any]:
    """The video an extension continues, as the Gemini API takes it: the file URI the API gave
    for it (`instances[0].video.uri`, google-genai's _Video_to_mldev)."""
    if not video.provider_uri:
        raise ValueError("an extension reached the Gemini API without the source's file URI")
    return {"uri": video.provider_uri}


def predict_body(req: AcceptedRequest, extra_parameters: dict[str, Any] | None = None,
                 image_field: ImageField | None = None, video_field: VideoField = file_video) -> dict[str, Any]:
    """`image_field` turns a stored input image into the API's image object, inline
    ({bytesBase64Encoded, mimeType}) or by reference ({gcsUri, mimeType}, Vertex);
    `video_field` an extension's source video into the API's video object."""
    instance: dict[str, Any] = {"prompt": req.prompt}
    if req.extend is not None:
        if req.extend.video is None:
            raise ValueError("an extension reached the provider without its source video (steps/accept.py sets it)")
        instance["video"] = video_field(req.extend.video)
    if req.images():
        if image_field is None:
            raise ValueError("this dialect was given images but cannot send them")
        if req.image is not None:
            instance["image"] = image_field(req.image)
        if req.last_frame is not None:
            instance["lastFrame"] = image_field(req.last_frame)
        if req.reference_images:
            instance["referenceImages"] = [{"image": image_field(ref.image), "referenceType": ref.type} for ref in req.reference_images]
    parameters = {wire: getattr(req, field) for field, wire in _PARAMETERS.items() if getattr(req, field) is not None}
    parameters.update(extra_parameters or {})
    body: dict[str, Any] = {"instances": [instance]}
    if parameters:
        body["parameters"] = parameters
    return body


def parse_operation(op: Any, download_url: Callable[[str], str]) -> Progress:
    if not isinstance(op, dict):
        return Progress("failed", error=JobError(ErrorCode.PROVIDER_ERROR, "operation is not a JSON object"))
    if op.get("error"):
        return Progress("failed", error=operation_error(op["error"]))
    if not op.get("done"):
        metadata = op.get("metadata") or {}
        percent = metadata.get("progressPercent") if isinstance(metadata, dict) else None
        return Progress("running", percent=percent if isinstance(percent, int) else None)
    response = op.get("response") or {}
    videos = response.get("generateVideoResponse") or response
    samples = videos.get("generatedSamples") or []
    uris = [s["video"]["uri"] for s in samples if isinstance(s, dict) and (s.get("video") or {}).get("uri")]
    if uris:
        # The API's own file URI is kept (`provider_uri`): an extension names the video by it.
        return Progress("succeeded", percent=100, outputs=tuple(OutputRef(i, url=download_url(u), extra={"provider_uri": u})
                                                                 for i, u in enumerate(uris)))
    return Progress("failed", error=empty_result_error(videos))


def operation_error(error: Any) -> JobError:
    if not isinstance(error, dict):
        return JobError(ErrorCode.PROVIDER_ERROR, str(error)[:500])
    code = _RPC_CODES.get(error.get("status")) or _RPC_CODES.get(error.get("code")) or ErrorCode.PROVIDER_ERROR
    message = str(error.get("message") or "the provider reported an error")[:500]
    return JobError(code, message, False, {k: error.get(k) for k in ("code", "status", "message") if k in error})


def empty_result_error(videos: dict[str, Any]) -> JobError:
    """A finished operation without a video: safety filtering, or something we cannot use."""
    filtered = videos.get("raiMediaFilteredCount")
    reasons = videos.get("raiMediaFilteredReasons") or []
    if filtered or reasons:
        message = "the provider's safety filters removed every video"
        if reasons:
            message += ": " + "; ".join(str(r) for r in reasons)[:400]
        return JobError(ErrorCode.RAI_FILTERED, message, False, {"raiMediaFilteredCount": filtered, "raiMediaFilteredReasons": reasons})
    return JobError(ErrorCode.PROVIDER_ERROR, "the operation finished without a video", False, None)
