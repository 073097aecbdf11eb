"""The one place where Google clients and providers are built (and where tests swap them)."""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

import requests
from google.cloud import firestore, storage, tasks_v2

from veorelay.config import Settings
from veorelay.core import redaction
from veorelay.gcp import logs
from veorelay.gcp.inputs import BucketInputs
from veorelay.gcp.oidc import IdTokenVerifier
from veorelay.gcp.poll_stats import DurationStats
from veorelay.gcp.store import JobStore
from veorelay.gcp.tasks import TaskScheduler
from veorelay.net.guarded import guarded_session
from veorelay.providers import Provider, build_providers


@dataclass
class Runtime:
    settings: Settings
    store: JobStore
    scheduler: TaskScheduler
    bucket: storage.Bucket
    providers: dict[str, Provider]
    http: requests.Session
    durations: DurationStats | None = None  # learned generation times (poll schedule)
    # For URLs called on a user's behalf (webhooks, image URLs): the SSRF guard at connect time.
    user_http: requests.Session = field(default_factory=guarded_session)
    # The OIDC token check of internal functions (edges/invoker.py), with its cached certificates.
    invoker_tokens: IdTokenVerifier = field(default_factory=IdTokenVerifier)


def tasks_client(settings: Settings) -> tasks_v2.CloudTasksClient:
    if settings.tasks_emulator_host:
        import grpc
        from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

        channel = grpc.insecure_channel(settings.tasks_emulator_host)
        return tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=channel))
    return tasks_v2.CloudTasksClient()


def build_runtime(settings: Settings) -> Runtime:
    # FIRESTORE_EMULATOR_HOST and STORAGE_EMULATOR_HOST are honoured by the client libraries.
    db = firestore.Client(project=settings.project)
    gcs = storage.Client(project=settings.project)
    session = TimeoutCeilingSession(settings.http_timeout_s) if settings.http_timeout_s else requests.Session()
    session.headers["User-Agent"] = "veo-relay/1"
    bucket = gcs.bucket(settings.bucket)
    return Runtime(
        settings=settings,
        store=JobStore(db),
        scheduler=TaskScheduler(tasks_client(settings), settings),
        bucket=bucket,
        providers=build_providers(settings, session, BucketInputs(bucket)),
        http=session,
        durations=DurationStats(db, settings.poll, settings.job_deadline_s),
        user_http=guarded_session(settings.allow_loopback_urls),
    )


@functools.cache
def runtime() -> Runtime:
    """Built once per function instance, on first use (not at import: cold starts stay cheap)."""
    settings = Settings.from_env()
    redaction.register(settings.secret_values())
    logs.configure(settings.log_level)
    return build_runtime(settings)


class TimeoutCeilingSession(requests.Session):
    """Holds every call's (connect, read) timeouts under a ceiling (VEO_HTTP_TIMEOUT_SECONDS),
    whatever the caller asked for: the local stack sees a slow provider time out in seconds."""

    def __init__(self, ceiling_s: float):
        super().__init__()
        self.ceiling_s = ceiling_s

    def request(self, method, url, *args, **kwargs):
        timeout = kwargs.get("timeout")
        if isinstance(timeout, tuple):
            kwargs["timeout"] = tuple(self.ceiling_s if t is None else min(t, self.ceiling_s) for t in timeout)
        else:
            kwargs["timeout"] = self.ceiling_s if timeout is None else min(timeout, self.ceiling_s)
        return super().request(method, url, *args, **kwargs)
