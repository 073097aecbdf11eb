"""`vertex`: Veo on Vertex AI directly.

    POST {base}/v1/projects/{p}/locations/{l}/publishers/google/models/{m}:predictLongRunning
    POST {base}/v1/projects/{p}/locations/{l}/publishers/google/models/{m}:fetchPredictOperation
         {"operationName": <the name predictLongRunning returned>}
    Authorization: Bearer <access token>  (application default credentials; a fixed token for tests)

Two ways the videos come back. With VEO_VERTEX_WRITE_TO_BUCKET on (the default) the request
carries `storageUri` = gs://BUCKET/vertex/<job id>/ and Vertex writes the MP4s itself; the
operation names them (`videos[].gcsUri`) and finalize verifies those objects and moves them to
the final names (no bytes through the function). Input images are passed the same way, by
their gs:// URI. Otherwise videos come inline as `bytesBase64Encoded`, decoded while streaming
(inline.py), and images are sent inline.
"""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import google.auth
import google.auth.exceptions
import google.auth.transport.requests
import requests

from veorelay.config import ProviderSettings
from veorelay.core.catalog import ProviderCatalog
from veorelay.core.errors import ErrorCode, JobError, PermanentError, TransientError
from veorelay.providers import google_ops
from veorelay.providers.base import Capabilities, Download, Handle, OutputRef, Progress, ProviderEnv
from veorelay.providers.http import request_json
from veorelay.providers.inline import InlineAnswer, InlineVideoDownload, fetch_inline_json, open_json_stream

if TYPE_CHECKING:
    from veorelay.core.accepted import AcceptedImage, AcceptedRequest, AcceptedSourceVideo

INLINE_KEYS = ("bytesBase64Encoded",)
SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
OUTPUT_PREFIX = "vertex"

# What the dialect can send; the models and their rules are the catalog's (catalog/vertex.toml).
OPTIONS = frozenset({"model", "negative_prompt", "aspect_ratio", "duration_seconds", "resolution", "sample_count", "seed",
                     "person_generation", "generate_audio"}) | google_ops.IMAGE_OPTIONS | {"extend"}
NOTES = ("with VEO_VERTEX_WRITE_TO_BUCKET (default on) Vertex writes the videos into the bucket under vertex/<job id>/; "
         "its service agent needs object create/read on the bucket",)


def _flag(value: str | None, default: bool) -> bool:
    if value is None or not value.strip():
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


class Vertex:
    name = "vertex"
    capabilities: Capabilities

    @classmethod
    def capabilities_for(cls, catalog: ProviderCatalog) -> Capabilities:
        return Capabilities.from_catalog(catalog, options=OPTIONS, notes=NOTES)

    def __init__(self, settings: ProviderSettings, session: requests.Session, env: ProviderEnv = ProviderEnv()):
        self.capabilities = self.capabilities_for(env.provider_catalog(self.name))
        self._base = settings.base_url
        self._session = session
        self._inputs = env.inputs
        self._project = settings.extras.get("PROJECT") or env.project or ""
        self._location = settings.extras.get("LOCATION") or env.location or "us-central1"
        self._bucket = env.bucket
        self._write_to_bucket = bool(env.bucket) and _flag(settings.extras.get("WRITE_TO_BUCKET"), True)
        # VEO_VERTEX_PUBSUB_TOPIC: Vertex publishes the operation's progress there; its push
        # subscription (infra/push.tf) delivers it to provider_events.
        self._pubsub_topic = settings.extras.get("PUBSUB_TOPIC")
        # A fixed token (tests, or a token minted elsewhere); otherwise application default credentials.
        self._static_token = settings.extras.get("ACCESS_TOKEN") or settings.api_key
        self._credentials: Any = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ the interface
    def submit(self, job_id: str, req: AcceptedRequest) -> Handle:
        model = req.model or self.capabilities.default_model
        extra: dict[str, Any] = {}
        prefix = None
        if self._write_to_bucket:
            prefix = f"gs://{self._bucket}/{self.job_folder(job_id)}"
            extra["storageUri"] = prefix
        if self._pubsub_topic:
            extra["pubsubTopic"] = self._pubsub_topic
        body = google_ops.predict_body(req, extra, image_field=self._image, video_field=_gcs_video)
        url = self._model_url(model, "predictLongRunning")
        answer = request_json(self._session, self.name, "POST", url, json=body, headers=self._headers())
        name = answer.get("name") if isinstance(answer, dict) else None
        if not isinstance(name, str) or "/operations/" not in name:
            raise PermanentError(ErrorCode.PROVIDER_ERROR, "Vertex accepted the request but returned no operation name", str(answer)[:500])
        return {"operation": name, "model": model, "storage_prefix": prefix, **({"push": "pubsub"} if self._pubsub_topic else {})}

    def check(self, handle: Handle) -> Progress:
        answer = fetch_inline_json(self._session, self.name, "POST", self._model_url(handle["model"], "fetchPredictOperation"),
                                   INLINE_KEYS, json={"operationName": handle["operation"]}, headers=self._headers())
        return parse_operation(answer, handle.get("storage_prefix"))

    def job_folder(self, job_id: str) -> str:
        """Where Vertex writes this job's videos in our bucket (the request's storageUri)."""
        return f"{OUTPUT_PREFIX}/{job_id}/"

    def open_output(self, ref: OutputRef) -> Download:
        inline = ref.extra.get("inline")
        if not isinstance(inline, dict):
            raise PermanentError(ErrorCode.INTERNAL, f"output {ref.index} is in the bucket already; finalize adopts it")
        resp = open_json_stream(self._session, self.name, "POST", self._model_url(inline["model"], "fetchPredictOperation"),
                                json={"operationName": inline["operation"]}, headers=self._headers())
        return InlineVideoDownload(resp, INLINE_KEYS, int(inline["blob"]), inline.get("size"))

    # ------------------------------------------------------------------ helpers
    def _model_url(self, model: str, method: str) -> str:
        return f"{self._base}/v1/projects/{self._project}/locations/{self._location}/publishers/google/models/{model}:{method}"

    def _image(self, image: AcceptedImage) -> dict[str, str]:
        if self._write_to_bucket and image.gcs_uri and image.mime_type:
            return {"gcsUri": image.gcs_uri, "mimeType": image.mime_type}
        return google_ops.inline_part(self._inputs, image)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token()}"}

    def _token(self) -> str:
        if self._static_token:
            return self._static_token
        with self._lock:
            try:
                if self._credentials is None:
                    self._credentials, _ = google.auth.default(scopes=SCOPES)
                if not self._credentials.valid:
                    self._credentials.refresh(google.auth.transport.requests.Request())
                token: str = self._credentials.token
                return token
            except google.auth.exceptions.DefaultCredentialsError as exc:
                raise PermanentError(ErrorCode.ACCESS_DENIED,
                                     "no Google credentials for Vertex AI (application default credentials)") from exc
            except google.auth.exceptions.GoogleAuthError as exc:
                raise TransientError(ErrorCode.PROVIDER_UNAVAILABLE,
                                     f"could not get a Vertex AI access token: {type(exc).__name__}") from exc


def _gcs_video(video: AcceptedSourceVideo) -> dict[str, str]:
    """An extension's source as Vertex takes it: the stored output in Cloud Storage
    (`instances[0].video: {gcsUri, mimeType}`); Vertex's service agent reads it from our bucket."""
    if not video.gcs_uri:
        raise ValueError("an extension reached Vertex without the source's gs:// URI")
    return {"gcsUri": video.gcs_uri, "mimeType": video.mime_type}


def parse_operation(answer: InlineAnswer, storage_prefix: str | None) -> Progress:
    op = answer.doc
    if not isinstance(op, dict):
        return Progress("failed", error=JobError(ErrorCode.PROVIDER_ERROR, "the operation is not a JSON object"))
    if op.get("error"):
        return Progress("failed", error=google_ops.operation_error(op["error"]))
    if not op.get("done"):
        return Progress("running")
    response = op.get("response") or {}
    outputs: list[OutputRef] = []
    for video in response.get("videos") or []:
        if not isinstance(video, dict):
            continue
        index = len(outputs)
        if isinstance(video.get("gcsUri"), str):
            if not storage_prefix or not video["gcsUri"].startswith(storage_prefix):
                error = JobError(ErrorCode.PROVIDER_ERROR, "Vertex named a video outside this job's folder", False, video["gcsUri"][:300])
                return Progress("failed", error=error)
            outputs.append(OutputRef(index, gcs_uri=video["gcsUri"]))
            continue
        blob = answer.blob_index(video.get("bytesBase64Encoded"))
        if blob is not None and answer.blob_sizes[blob] > 0:
            inline = {"operation": op.get("name"), "model": _model_of(op.get("name")), "blob": blob, "size": answer.blob_sizes[blob]}
            outputs.append(OutputRef(index, extra={"inline": inline}))
    if outputs:
        return Progress("succeeded", percent=100, outputs=tuple(outputs))
    return Progress("failed", error=google_ops.empty_result_error(response))


def _model_of(operation: Any) -> str:
    """projects/p/locations/l/publishers/google/models/<model>/operations/<id> -> <model>."""
    parts = str(operation or "").split("/")
    return parts[parts.index("models") + 1] if "models" in parts[:-1] else ""
