"""`litellm-gemini`: a LiteLLM proxy passing Gemini API calls through (seed document 000).

predictLongRunning and the operations poll under /gemini/v1beta with `x-goog-api-key`; the
video URI Google returns is rewritten to the proxy's /gemini/download/... path.
"""
from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from veorelay.core.catalog import ProviderCatalog
from veorelay.core.errors import ErrorCode, PermanentError
from veorelay.providers import google_ops
from veorelay.providers.base import Capabilities, Download, Handle, OutputRef, Progress
from veorelay.providers.http import open_download, request_json

if TYPE_CHECKING:
    from veorelay.core.accepted import AcceptedRequest

GOOGLE_FILES_ROOT = "https://generativelanguage.googleapis.com/"

# What the dialect can send; the models are the catalog's (catalog/litellm-gemini.toml): the
# Gemini API's names, passed through.
OPTIONS = frozenset({"model", "negative_prompt", "aspect_ratio", "duration_seconds", "resolution", "sample_count", "seed",
                     "person_generation"}) | google_ops.IMAGE_OPTIONS | {"extend"}


class LiteLLMGemini(google_ops.GoogleKeyDialect):
    name = "litellm-gemini"

    @classmethod
    def capabilities_for(cls, catalog: ProviderCatalog) -> Capabilities:
        return Capabilities.from_catalog(catalog, options=OPTIONS)

    def submit(self, job_id: str, req: AcceptedRequest) -> Handle:
        model = req.model or self.capabilities.default_model
        url = f"{self._base}/gemini/v1beta/models/{model}:predictLongRunning"
        body, push = self.predict_request(job_id, req)  # VEO_LITELLM_GEMINI_PUSH: off unless the gateway passes it on
        answer = request_json(self._session, self.name, "POST", url, json=body, headers=self._headers)
        return google_ops.operation_handle(answer, model, push)

    def check(self, handle: Handle) -> Progress:
        url = f"{self._base}/gemini/v1beta/{handle['operation']}"
        op = request_json(self._session, self.name, "GET", url, headers=self._headers)
        return google_ops.parse_operation(op, self.download_url)

    def download_url(self, video_uri: str) -> str:
        """https://generativelanguage.googleapis.com/v1beta/files/ID:download?alt=media
        → {base}/gemini/download/v1beta/files/ID:download?alt=media"""
        if video_uri.startswith(GOOGLE_FILES_ROOT):
            return f"{self._base}/gemini/download/{video_uri[len(GOOGLE_FILES_ROOT):]}"
        parts = urlsplit(video_uri)
        if not parts.scheme:  # a relative path such as v1beta/files/ID:download?alt=media
            return f"{self._base}/gemini/download/{video_uri.lstrip('/')}"
        return video_uri

    def open_output(self, ref: OutputRef) -> Download:
        if not ref.url:
            raise PermanentError(ErrorCode.DOWNLOAD_INVALID, f"output {ref.index} has no download URL")
        return open_download(self._session, self.name, ref.url, headers=self._headers)
