"""HTTP to providers, and the one mapping of a call's failure into the shared error vocabulary
(core/errors.py). Every dialect calls through here and none maps requests' exceptions or
statuses itself:

    no answer in time (requests.Timeout)         transient  provider_timeout
    no answer (connection refused, reset, TLS)   transient  provider_unavailable
    an answer cut off, or not the JSON asked for transient  provider_unavailable
    429                                          transient  quota_exceeded, with its Retry-After
    5xx                                          transient  provider_unavailable, with its Retry-After
    401, 403                                     permanent  access_denied
    404, 410                                     permanent  provider_error (or the caller's `not_found`)
    other 4xx                                    permanent  invalid_request
    a download refused (401, 403, 404, 410)      permanent  download_expired: the poll just
                                                            authenticated, so the link expired

A dialect may refine a mapped error where its document says more (gemini: 400 API_KEY_INVALID
is access_denied; flow: a refused Google token needs a fresh VEO_FLOW_GOOGLE_TOKEN).
"""
from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from veorelay.core.errors import ErrorCode, PermanentError, StepError, TransientError
from veorelay.core.retry_after import retry_after_seconds

DEFAULT_TIMEOUT = (10.0, 60.0)  # connect, read
_DETAIL_LIMIT = 500


def request_failure(exc: requests.RequestException, provider: str, what: str = "") -> TransientError:
    """A call that got no answer (`what`: which call, e.g. "download"): worth trying again."""
    subject = f"{provider} {what}".rstrip()
    if isinstance(exc, requests.Timeout):
        return TransientError(ErrorCode.PROVIDER_TIMEOUT, f"{subject} did not answer in time")
    return TransientError(ErrorCode.PROVIDER_UNAVAILABLE, f"could not reach {subject}: {type(exc).__name__}")


def cut_off(exc: requests.RequestException, provider: str) -> TransientError:
    """An answer that broke off while its body was read."""
    return TransientError(ErrorCode.PROVIDER_UNAVAILABLE, f"{provider} answer was cut off: {type(exc).__name__}")


def status_failure(resp: requests.Response, provider: str, not_found: ErrorCode = ErrorCode.PROVIDER_ERROR) -> StepError | None:
    """What an error status means (None: the status is not an error)."""
    status = resp.status_code
    if status < 400:
        return None
    detail = resp.text[:_DETAIL_LIMIT]
    if status == 429:
        return TransientError(ErrorCode.QUOTA_EXCEEDED, f"{provider} is throttling (429)", detail, retry_after(resp))
    if status >= 500:
        return TransientError(ErrorCode.PROVIDER_UNAVAILABLE, f"{provider} answered {status}", detail, retry_after(resp))
    if status in (401, 403):
        return PermanentError(ErrorCode.ACCESS_DENIED, f"{provider} refused our credentials ({status})", detail)
    if status in (404, 410):
        return PermanentError(not_found, f"{provider} answered {status}", detail)
    return PermanentError(ErrorCode.INVALID_REQUEST, f"{provider} rejected the request ({status})", detail)


def retry_after(resp: requests.Response) -> float | None:
    """The answer's Retry-After in seconds (delay-seconds or an HTTP-date), if it has one."""
    return retry_after_seconds(resp.headers.get("Retry-After"), datetime.now(UTC))


def download_failure(resp: requests.Response, provider: str) -> StepError | None:
    """What an error status of a video download means. The poll that named the video just
    authenticated fine, so a refusal here is an expired or revoked link."""
    if resp.status_code in (401, 403, 404, 410):
        return PermanentError(ErrorCode.DOWNLOAD_EXPIRED, f"{provider} download answered {resp.status_code}", resp.text[:_DETAIL_LIMIT])
    return status_failure(resp, provider)


def raise_for_status(resp: requests.Response, provider: str, not_found: ErrorCode = ErrorCode.PROVIDER_ERROR) -> None:
    failure = status_failure(resp, provider, not_found)
    if failure is not None:
        raise failure


def send(session: requests.Session, provider: str, method: str, url: str, **kwargs: Any) -> requests.Response:
    """One call: the answer when its status is not an error (a streamed one is the caller's to
    close), otherwise the failure in the shared vocabulary, raised with the answer closed."""
    kwargs.setdefault("timeout", DEFAULT_TIMEOUT)
    try:
        resp = session.request(method, url, **kwargs)
    except requests.RequestException as exc:
        raise request_failure(exc, provider) from exc
    failure = status_failure(resp, provider)
    if failure is not None:
        resp.close()
        raise failure
    return resp


def request_json(session: requests.Session, provider: str, method: str, url: str, **kwargs: Any) -> Any:
    resp = send(session, provider, method, url, **kwargs)
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
        own_headers = headers if _origin(url) == origin else None
        try:
            resp = session.get(url, headers=own_headers, stream=True, timeout=timeout, allow_redirects=False)
        except requests.RequestException as exc:
            raise request_failure(exc, provider, "download") from exc
        if resp.is_redirect and resp.headers.get("Location"):
            url = requests.compat.urljoin(url, resp.headers["Location"])
            resp.close()
            continue
        failure = download_failure(resp, provider)
        if failure is not None:
            resp.close()
            raise failure
        return HttpDownload(resp)
    raise PermanentError(ErrorCode.DOWNLOAD_INVALID, f"{provider} download redirected more than {max_redirects} times")


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc
