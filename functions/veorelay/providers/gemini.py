"""`gemini`: the Gemini API (Google AI Studio) directly.

    POST {base}/v1beta/models/{model}:predictLongRunning    x-goog-api-key
    GET  {base}/v1beta/{operation name}
    GET  the video URI from the operation                  answers 302 to a signed URL

Quirks: a wrong key is a 400 with reason API_KEY_INVALID (not a 401), mapped to access_denied;
the key is only ever sent to the API's own origin, never to where a download redirects.
Generated files are kept for 2 days.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from veorelay.core.catalog import ProviderCatalog
from veorelay.core.errors import ErrorCode, PermanentError
from veorelay.providers import google_ops
from veorelay.providers.base import Capabilities, Download, Handle, OutputRef, Progress
from veorelay.providers.http import open_download, request_json

if TYPE_CHECKING:
    from veorelay.core.accepted import AcceptedRequest

T = TypeVar("T")

# What the dialect can send; the models and their rules are the catalog's (catalog/gemini.toml).
OPTIONS = frozenset({"model", "negative_prompt", "aspect_ratio", "duration_seconds", "resolution", "sample_count", "seed",
                     "person_generation"}) | google_ops.IMAGE_OPTIONS | {"extend"}
NOTES = ("a wrong API key answers 400 API_KEY_INVALID (shown as access_denied)",)


class Gemini(google_ops.GoogleKeyDialect):
    name = "gemini"
    default_push = "request"

    @classmethod
    def capabilities_for(cls, catalog: ProviderCatalog) -> Capabilities:
        return Capabilities.from_catalog(catalog, options=OPTIONS, notes=NOTES)

    def submit(self, job_id: str, req: AcceptedRequest) -> Handle:
        model = req.model or self.capabilities.default_model
        body, push = self.predict_request(job_id, req)
        url = f"{self._base}/v1beta/models/{model}:predictLongRunning"
        answer = _keyed(lambda: request_json(self._session, self.name, "POST", url, json=body, headers=self._headers))
        return google_ops.operation_handle(answer, model, push)

    def check(self, handle: Handle) -> Progress:
        url = f"{self._base}/v1beta/{handle['operation']}"
        op = _keyed(lambda: request_json(self._session, self.name, "GET", url, headers=self._headers))
        return google_ops.parse_operation(op, lambda uri: uri)

    def open_output(self, ref: OutputRef) -> Download:
        url = ref.url
        if not url:
            raise PermanentError(ErrorCode.DOWNLOAD_INVALID, f"output {ref.index} has no download URL")
        return _keyed(lambda: open_download(self._session, self.name, url, headers=self._headers))


def _keyed(call: Callable[[], T]) -> T:
    """The Gemini API refuses a wrong key with 400 API_KEY_INVALID: that is access_denied."""
    try:
        return call()
    except PermanentError as exc:
        if exc.code == ErrorCode.INVALID_REQUEST and "API_KEY_INVALID" in str(exc.provider_detail or ""):
            raise PermanentError(ErrorCode.ACCESS_DENIED, "gemini refused the API key (API_KEY_INVALID): check VEO_GEMINI_API_KEY",
                                 exc.provider_detail) from exc
        raise
