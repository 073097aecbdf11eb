"""HTTP to providers, with every failure mapped into the shared error vocabulary.

Transient (retry later): timeouts, connection errors, 429, 5xx, answers that are not JSON.
Permanent (fail the job): auth refused, not found, other 4xx.
"""
from __future__ import annotations

from typing import Any, Iterator
from urllib.parse import urlsplit

import requests

from veorelay.core.errors import ErrorCode, PermanentError, TransientError

DEFAULT_TIMEOUT = (10.0, 60.0)  # connect, read
_DETAIL_LIMIT = 500


def retry_after_seconds(resp: requests.Response) -> float | None:
    value = resp.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP-date; the queue's own backoff applies


def raise_for_status(resp: requests.Response, provider: str, not_found: ErrorCode = ErrorCode.PROVIDER_ERROR) -> None:
    status = resp.status_code
    if status < 400:
        return
    detail = resp.text[:_DETAIL_LIMIT]
    if status == 429:
        raise TransientError(ErrorCode.QUOTA_EXCEEDED, f"{provider} is throttling (429)", detail, retry_after_seconds(resp))
    if status >= 500:
        raise TransientError(ErrorCode.PROVIDER_UNAVAILABLE, f"{provider} answered {status}", detail, retry_after_seconds(resp))
    if status in (401, 403):
        raise PermanentError(ErrorCode.ACCESS_DENIED, f"{provider} refused our credentials ({status})", detail)
    if status in (404, 410):
        raise PermanentError(not_found, f"{provider} answered {status}", detail)
    raise PermanentError(ErrorCode.INVALID_REQUEST, f"{provider} rejected the request ({status})", detail)


def request_json(session: requests.Session, provider: str, method: str, url: str, **kwargs: Any) -> Any:
    kwargs.setdefault("timeout", DEFAULT_TIMEOUT)
    try:
        resp = session.request(method, url, **kwargs)
    except requests.Timeout as exc:
        raise TransientError(ErrorCode.PROVIDER_TIMEOUT, f"{provider} did not answer in time") from exc
    except requests.RequestException as exc:
        raise TransientError(ErrorCode.PROVIDER_UNAVAILABLE, f"could not reach {provider}: {type(exc).__name__}") from exc
    raise_for_status(resp, provider)
    try:
        return resp.json()
    except ValueError as exc:
        content_type = resp.headers.get("Content-Type", "")
        raise TransientError(
            ErrorCode.PROVIDER_UNAVAILABLE,
            f"{provider} answered {resp.status_code} with a body that is not JSON ({content_type or 'no content type'})",
            resp.text[:_DETAIL_LIMIT],
        ) from exc


class HttpDownload:
    """A streaming response body; the caller must close() it."""

    def __init__(self, resp: requests.Response):
        self._resp = resp
        length = resp.headers.get("Content-Length")
        self.content_length = int(length) if length and length.isdigit() else None
        self.content_type = resp.headers.get("Content-Type")

    def iter_bytes(self, chunk_size: int) -> Iterator[bytes]:
        return self._resp.iter_content(chunk_size)

    def close(self) -> None:
        self._resp.close()


def open_download(
    session: requests.Session,
    provider: str,
    url: str,
    headers: dict[str, str] | None = None,
    max_redirects: int = 5,
    timeout: tuple[float, float] = DEFAULT_TIMEOUT,
) -> HttpDownload:
    """GET a video, following redirects by hand so credentials never leave their origin.

    requests drops only `Authorization` on a cross-host redirect; an `x-goog-api-key` would be
    sent on to wherever the provider redirects (Gemini answers downloads with a redirect).
    """
    origin = _origin(url)
    for _ in range(max_redirects + 1):
        send = headers if _origin(url) == origin else None
        try:
            resp = session.get(url, headers=send, stream=True, timeout=timeout, allow_redirects=False)
        except requests.Timeout as exc:
            raise TransientError(ErrorCode.PROVIDER_TIMEOUT, f"{provider} download did not answer in time") from exc
        except requests.RequestException as exc:
            raise TransientError(ErrorCode.PROVIDER_UNAVAILABLE, f"could not reach {provider} download: {type(exc).__name__}") from exc
        if resp.is_redirect and resp.headers.get("Location"):
            url = requests.compat.urljoin(url, resp.headers["Location"])
            resp.close()
            continue
        if resp.status_code in (401, 403, 404, 410):
            # The poll just authenticated fine, so a refusal here is an expired or revoked link.
            detail = resp.text[:_DETAIL_LIMIT]
            resp.close()
            raise PermanentError(ErrorCode.DOWNLOAD_EXPIRED, f"{provider} download answered {resp.status_code}", detail)
        if resp.status_code >= 400:
            try:
                raise_for_status(resp, provider)
            finally:
                resp.close()
        return HttpDownload(resp)
    raise PermanentError(ErrorCode.DOWNLOAD_INVALID, f"{provider} download redirected more than {max_redirects} times")


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc
