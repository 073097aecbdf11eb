"""The one place where Google clients and providers are built (and where tests swap them)."""
from __future__ import annotations

import functools
from dataclasses import dataclass

import requests
from google.cloud import firestore, storage, tasks_v2

from .config import Settings
from .providers import Provider, build_providers
from .schedule import TaskScheduler
from .store import JobStore
from . import logs


@dataclass
class Runtime:
    settings: Settings
    store: JobStore
    scheduler: TaskScheduler
    bucket: storage.Bucket
    providers: dict[str, Provider]
    http: requests.Session


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
    session = requests.Session()
    session.headers["User-Agent"] = "veo-relay/1"
    return Runtime(
        settings=settings,
        store=JobStore(db),
        scheduler=TaskScheduler(tasks_client(settings), settings),
        bucket=gcs.bucket(settings.bucket),
        providers=build_providers(settings, session),
        http=session,
    )


@functools.cache
def runtime() -> Runtime:
    """Built once per function instance, on first use (not at import: cold starts stay cheap)."""
    settings = Settings.from_env()
    logs.configure(settings.log_level)
    return build_runtime(settings)
