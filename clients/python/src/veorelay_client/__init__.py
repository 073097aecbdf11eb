"""The veo-relay Python client (`Client`) and the `veorelay` command (veorelay_client.cli).

Installed without any of the server's dependencies: httpx, typer and rich only."""
from veorelay_client.client import Client, Providers, SubmitOptions, __version__
from veorelay_client.errors import (
    ApiError,
    Conflict,
    DownloadError,
    InvalidRequest,
    NetworkError,
    NotFound,
    PayloadTooLarge,
    Unauthenticated,
    Unavailable,
    UnsupportedOption,
    VeorelayError,
    WaitTimeout,
    WebhookVerificationError,
)
from veorelay_client.images import Image, Reference
from veorelay_client.models import TERMINAL_STATUSES, Job, JobError, JobEvent, Media, Output, Page, Poster, Progress
from veorelay_client.webhooks import verify_webhook

__all__ = [
    "TERMINAL_STATUSES",
    "ApiError",
    "Client",
    "Conflict",
    "DownloadError",
    "Image",
    "InvalidRequest",
    "Job",
    "JobError",
    "JobEvent",
    "Media",
    "NetworkError",
    "NotFound",
    "Output",
    "Page",
    "PayloadTooLarge",
    "Poster",
    "Progress",
    "Providers",
    "Reference",
    "SubmitOptions",
    "Unauthenticated",
    "Unavailable",
    "UnsupportedOption",
    "VeorelayError",
    "WaitTimeout",
    "WebhookVerificationError",
    "__version__",
    "verify_webhook",
]
