"""The one place where Google clients and providers are built (and where tests swap them).

Cold starts: a client is built, and its library imported, only when a function first uses it.
`build_runtime` fills every field with a deferred builder (imports inside); reading the field
builds it, once. `runtime(entry)` builds at once what that entry point uses (`CLIENTS`), so a
`poll_job` instance never imports Cloud Storage, nor `deliver_webhook` a provider. Tests that
hand `Runtime` real values or fakes see no difference.
"""
from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, cast

import requests

from veorelay.config import Settings
from veorelay.core import redaction
from veorelay.gcp import logs

if TYPE_CHECKING:
    from google.cloud import storage, tasks_v2

    from veorelay.gcp.budgets import BudgetLedger
    from veorelay.gcp.oidc import IdTokenVerifier
    from veorelay.gcp.poll_stats import DurationStats
    from veorelay.gcp.push_auth import JwksCache
    from veorelay.gcp.store import JobStore
    from veorelay.gcp.tasks import TaskScheduler
    from veorelay.providers import Provider

T = TypeVar("T")


class _Deferred:
    """A field's builder, run on first read (Runtime.__getattribute__), once, under a lock."""

    def __init__(self, build: Callable[[], Any]):
        self.build = build
        self.lock = threading.Lock()


def deferred(build: Callable[[], T]) -> T:
    """A Runtime field built when first read (typed as what it builds)."""
    return cast(T, _Deferred(build))


def _once(build: Callable[[], T]) -> Callable[[], T]:
    """`build`, run at most once (a client two fields share: Firestore for the store and the
    learned durations, Storage for the bucket and the input images)."""
    lock = threading.Lock()
    made: list[T] = []

    def get() -> T:
        with lock:
            if not made:
                made.append(build())
            return made[0]
    return get


def _guarded_session() -> requests.Session:
    from veorelay.net.guarded import guarded_session

    return guarded_session()


def _id_token_verifier() -> IdTokenVerifier:
    from veorelay.gcp.oidc import IdTokenVerifier

    return IdTokenVerifier()


def _jwks_cache() -> JwksCache:
    from veorelay.gcp.push_auth import JwksCache

    return JwksCache()


@dataclass
class Runtime:
    settings: Settings
    store: JobStore
    scheduler: TaskScheduler
    bucket: storage.Bucket
    providers: dict[str, Provider]
    http: requests.Session
    durations: DurationStats | None = None  # learned generation times (poll schedule)
    budgets: BudgetLedger | None = None  # spend caps and usage per client (gcp/budgets.py); None: neither kept
    # For URLs called on a user's behalf (webhooks, image URLs): the SSRF guard at connect time.
    user_http: requests.Session = field(default_factory=lambda: deferred(_guarded_session))
    # The OIDC token check of internal functions (edges/invoker.py), with its cached certificates.
    invoker_tokens: IdTokenVerifier = field(default_factory=lambda: deferred(_id_token_verifier))
    # The Gemini API's per-request webhook keys (JWKS), cached (edges/provider_events.py).
    push_keys: JwksCache = field(default_factory=lambda: deferred(_jwks_cache))

    def __getattribute__(self, name: str) -> Any:
        value = object.__getattribute__(self, name)
        if type(value) is _Deferred:
            with value.lock:
                value = object.__getattribute__(self, name)  # another thread may have built it
                if type(value) is _Deferred:
                    value = value.build()
                    object.__setattr__(self, name, value)
        return value

    def build(self, *names: str) -> Runtime:
        """Build these fields now (an entry point's clients, at its first request)."""
        for name in names:
            getattr(self, name)
        return self

    def built(self) -> set[str]:
        """The fields built so far (the cold-start test and the bench read this)."""
        return {name for name in self.__dataclass_fields__ if type(object.__getattribute__(self, name)) is not _Deferred}


# What each entry point (functions/main.py) uses, built together at its first request. Anything
# else a step reads is still built when read: this list makes cold starts cheap, not correct.
_TASK = ("settings", "store", "scheduler", "invoker_tokens")
CLIENTS: dict[str, tuple[str, ...]] = {
    "api": ("settings", "store", "scheduler", "bucket", "providers", "http", "durations", "user_http", "budgets"),
    "submit_job": (*_TASK, "providers"),
    "poll_job": (*_TASK, "providers", "durations"),
    "stream_job": (*_TASK, "providers", "durations"),
    "finalize_job": (*_TASK, "bucket", "providers"),
    "deliver_webhook": (*_TASK, "bucket", "user_http"),
    "on_request_object": (*_TASK, "bucket", "providers", "http", "durations", "user_http"),
    "sweep_jobs": (*_TASK, "bucket", "providers"),
    "provider_events": (*_TASK, "push_keys"),
}


def tasks_client(settings: Settings) -> tasks_v2.CloudTasksClient:
    from google.cloud import tasks_v2

    if settings.tasks_emulator_host:
        import grpc
        from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

        channel = grpc.insecure_channel(settings.tasks_emulator_host)
        return tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=channel))
    return tasks_v2.CloudTasksClient()


def build_runtime(settings: Settings) -> Runtime:
    """Every field deferred: each client (and its library) is built when first read."""
    # FIRESTORE_EMULATOR_HOST and STORAGE_EMULATOR_HOST are honoured by the client libraries.
    @_once
    def db() -> Any:
        from google.cloud import firestore

        return firestore.Client(project=settings.project)

    @_once
    def bucket() -> storage.Bucket:
        from google.cloud import storage

        made: storage.Bucket = storage.Client(project=settings.project).bucket(settings.bucket)
        return made

    @_once
    def session() -> requests.Session:
        made = TimeoutCeilingSession(settings.http_timeout_s) if settings.http_timeout_s else requests.Session()
        made.headers["User-Agent"] = "veo-relay/1"
        return made

    def store() -> JobStore:
        from veorelay.gcp.store import JobStore

        return JobStore(db())

    def scheduler() -> TaskScheduler:
        from veorelay.gcp.tasks import TaskScheduler

        return TaskScheduler(tasks_client(settings), settings)

    def providers() -> dict[str, Provider]:
        from veorelay.providers import build_providers

        return build_providers(settings, session(), _InputsOnDemand(bucket))

    def durations() -> DurationStats:
        from veorelay.gcp.poll_stats import DurationStats

        return DurationStats(db(), settings.poll, settings.job_deadline_s)

    def budgets() -> BudgetLedger:
        from veorelay.gcp.budgets import BudgetLedger

        return BudgetLedger(db())

    def user_http() -> requests.Session:
        from veorelay.net.guarded import guarded_session

        return guarded_session(settings.allow_loopback_urls)

    return Runtime(
        settings=settings,
        store=deferred(store),
        scheduler=deferred(scheduler),
        bucket=deferred(bucket),
        providers=deferred(providers),
        http=deferred(session),
        durations=deferred(durations),
        budgets=deferred(budgets),
        user_http=deferred(user_http),
    )


class _InputsOnDemand:
    """The input images (gcp/inputs.BucketInputs), with Storage built at the first image read:
    providers are built without it, so a poll or a stream never imports it."""

    def __init__(self, bucket: Callable[[], storage.Bucket]):
        self._bucket = bucket

    def read(self, gcs_uri: str) -> bytes:
        from veorelay.gcp.inputs import BucketInputs

        return BucketInputs(self._bucket()).read(gcs_uri)


@functools.cache
def runtime() -> Runtime:
    """Built once per function instance, on first use (not at import: cold starts stay cheap);
    its clients are built as they are first read."""
    settings = Settings.from_env()
    redaction.register(settings.secret_values())
    logs.configure(settings.log_level)
    return build_runtime(settings)


def runtime_for(entry: str) -> Runtime:
    """The instance's runtime with what entry point `entry` uses (CLIENTS) built."""
    return runtime().build(*CLIENTS[entry])


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
