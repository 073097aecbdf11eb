"""Typed errors. An API refusal carries the API's own error `code` (veo-relay's one vocabulary:
invalid_request, unsupported_option, unauthenticated, not_found, conflict, payload_too_large,
unavailable, ...), the HTTP status, the message and the request `field` at fault."""
from __future__ import annotations

import json
from typing import Any

import httpx


class VeorelayError(Exception):
    """Every error this package raises."""


class ApiError(VeorelayError):
    """The API answered with an error: {"error": {"code", "message", "field"}} (the native API)
    or OpenAI's {"error": {"message", "type", "param", "code"}} (the /v1/videos routes)."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None, *,
                 retry_after: float | None = None, body: Any = None) -> None:
        super().__init__(f"{code}: {message}" + (f" (field: {field})" if field else ""))
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.retry_after = retry_after
        self.body = body

    @classmethod
    def from_response(cls, response: httpx.Response) -> ApiError:
        """The typed error of an error answer (its body must have been read)."""
        body: Any = None
        try:
            body = json.loads(response.content)
        except ValueError:
            pass
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            code = str(error.get("code") or error.get("type") or _fallback_code(response.status_code))
            message = str(error.get("message") or response.reason_phrase)
            field = error.get("field", error.get("param"))
        else:  # not veo-relay answering (a proxy, a load balancer): say what came
            code = _fallback_code(response.status_code)
            text = response.text.strip().splitlines()[0][:200] if response.text.strip() else ""
            message = f"HTTP {response.status_code} {response.reason_phrase}" + (f": {text}" if text else "")
            field = None
        kind = _BY_CODE.get(code, ApiError)
        return kind(response.status_code, code, message, str(field) if field is not None else None,
                    retry_after=_retry_after(response), body=body)


class InvalidRequest(ApiError):
    """400 invalid_request (also 405, 408, 415): the request itself is wrong."""


class UnsupportedOption(ApiError):
    """400 unsupported_option: the provider cannot honour `field`."""


class Unauthenticated(ApiError):
    """401: no API key, or one the deployment does not know."""


class NotFound(ApiError):
    """404: no such job (another client's job looks the same), or no such endpoint."""


class Conflict(ApiError):
    """409: an Idempotency-Key reused with another body; cancelling a job that ended otherwise."""


class PayloadTooLarge(ApiError):
    """413: the body or an image is over its limit."""


class Unavailable(ApiError):
    """503: the backend did not answer in time; `retry_after` says when to try again."""


_BY_CODE: dict[str, type[ApiError]] = {
    "invalid_request": InvalidRequest,
    "invalid_request_error": InvalidRequest,  # OpenAI's type on /v1/videos
    "unsupported_option": UnsupportedOption,
    "unauthenticated": Unauthenticated,
    "not_found": NotFound,
    "conflict": Conflict,
    "payload_too_large": PayloadTooLarge,
    "unavailable": Unavailable,
}


class NetworkError(VeorelayError):
    """The API could not be reached, did not answer in time, or a stream broke off."""


class WaitTimeout(VeorelayError):
    """wait() gave up before the job ended; `job` is the job as last seen."""

    def __init__(self, message: str, job: Any = None) -> None:
        super().__init__(message)
        self.job = job


class DownloadError(VeorelayError):
    """The video cannot be downloaded (the job has none at that index), or it arrived damaged
    (`damaged`: its size or the checksum it was checked against differs from what the job
    recorded)."""

    def __init__(self, message: str, *, damaged: bool = False) -> None:
        super().__init__(message)
        self.damaged = damaged


class WebhookVerificationError(VeorelayError):
    """A webhook's signature, timestamp or headers do not verify."""


def _fallback_code(status: int) -> str:
    return {400: "invalid_request", 401: "unauthenticated", 404: "not_found", 409: "conflict",
            413: "payload_too_large", 503: "unavailable"}.get(status, f"http_{status}")


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP-date: the caller's own backoff applies
