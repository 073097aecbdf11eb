"""One error vocabulary across providers, and the two kinds of failure a step can have."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    INVALID_REQUEST = "invalid_request"
    UNSUPPORTED_OPTION = "unsupported_option"
    UNAUTHENTICATED = "unauthenticated"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    RAI_FILTERED = "rai_filtered"
    QUOTA_EXCEEDED = "quota_exceeded"
    BUDGET_EXCEEDED = "budget_exceeded"  # the client's own spend or in-flight cap (core/budget.py), 429
    PROVIDER_UNAVAILABLE = "provider_unavailable"
    PROVIDER_TIMEOUT = "provider_timeout"
    PROVIDER_ERROR = "provider_error"
    DOWNLOAD_EXPIRED = "download_expired"
    DOWNLOAD_INVALID = "download_invalid"
    ACCESS_DENIED = "access_denied"
    DEADLINE_EXCEEDED = "deadline_exceeded"
    CANCELLED = "cancelled"
    # veo-relay's own backend (Firestore, Cloud Tasks) did not answer in time: a 503 with
    # Retry-After; sending the same request again (same Idempotency-Key) is safe.
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"


@dataclass(frozen=True)
class JobError:
    """What a failed job records and shows: never a secret, never a stack trace."""

    code: str
    message: str
    retryable: bool = False
    provider_detail: Any = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class StepError(Exception):
    def __init__(self, code: ErrorCode | str, message: str, provider_detail: Any = None):
        super().__init__(message)
        self.code = str(code)
        self.message = message
        self.provider_detail = provider_detail

    def job_error(self) -> JobError:
        return JobError(self.code, self.message, isinstance(self, TransientError), self.provider_detail)


class TransientError(StepError):
    """Worth trying again later: the step answers 5xx and the queue retries it."""

    def __init__(self, code: ErrorCode | str, message: str, provider_detail: Any = None, retry_after_s: float | None = None):
        super().__init__(code, message, provider_detail)
        self.retry_after_s = retry_after_s


class PermanentError(StepError):
    """Trying again cannot help: the job is failed with this error and the caller notified."""


class ApiError(Exception):
    """A client error, answered as {"error": {"code", "message", "field"}} with a 4xx status."""

    def __init__(self, status: int, code: ErrorCode | str, message: str, field: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = str(code)
        self.message = message
        self.field = field

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "field": self.field}}
