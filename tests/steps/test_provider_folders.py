"""Videos a provider wrote into the bucket itself (Vertex's storageUri): finalize adopts one only
if the provider declares that folder as this job's (BucketWriter.job_folder) and it is none of
veo-relay's own folders. The step knows nothing of any provider's layout."""
from __future__ import annotations

from typing import Any

import pytest

from veorelay.core.errors import ErrorCode, PermanentError
from veorelay.core.job import JobStatus
from veorelay.providers.base import BucketWriter, OutputRef
from veorelay.steps.finalize import _own_output, finalize_job

from .driver import run_named
from .fake_providers import FakeProvider, mp4, succeeded
from .fakes import make_runtime
from .helpers import running_job, video_name


class WritesInto(FakeProvider):
    """A provider writing each job's videos into `<folder>/<job id>/`."""

    def __init__(self, folder: str):
        super().__init__()
        self.folder = folder

    def job_folder(self, job_id: str) -> str:
        return f"{self.folder}/{job_id}/"


def finished_in_bucket(provider: FakeProvider, folder: str) -> tuple[Any, str, str]:
    rt = make_runtime(providers=[provider])
    job_id = running_job(rt)
    name = f"{folder.format(job=job_id)}/0.mp4"
    rt.bucket.put(name, mp4(5000))  # type: ignore[attr-defined]
    provider.checks.set(succeeded(f"gs://{rt.bucket.name}/{name}"))
    run_named(rt, f"{job_id}-poll-1")
    finalize_job(rt, job_id, 1)
    return rt, job_id, name


def test_the_folder_is_the_providers_to_declare():
    rt, job_id, _ = finished_in_bucket(WritesInto("generated"), "generated/{job}/run-1")
    job = rt.store.get(job_id)
    assert job is not None and job["status"] == JobStatus.SUCCEEDED
    assert rt.bucket.get_blob(video_name(rt, job_id, 0)) is not None


@pytest.mark.parametrize("provider,folder", [
    (WritesInto("generated"), "generated/someone-else"),  # outside the folder it declares for this job
    (WritesInto("videos"), "videos/{job}/raw"),  # a folder of veo-relay's own (the output prefix)
    (WritesInto("inputs"), "inputs/{job}"),
])
def test_a_video_outside_the_declared_folder_is_refused_and_left_alone(provider, folder):
    rt, job_id, name = finished_in_bucket(provider, folder)
    job = rt.store.get(job_id)
    assert job is not None and job["error"]["code"] == ErrorCode.DOWNLOAD_INVALID
    assert rt.bucket.get_blob(name) is not None


def test_vertex_declares_the_folder_its_storage_uri_names():
    from veorelay.config import ProviderSettings
    from veorelay.providers.base import ProviderEnv
    from veorelay.providers.vertex import Vertex

    adapter = Vertex(ProviderSettings("vertex", "https://v", None, {"ACCESS_TOKEN": "t"}), None, ProviderEnv(bucket="b"))  # type: ignore[arg-type]
    assert isinstance(adapter, BucketWriter) and adapter.job_folder("J1") == "vertex/J1/"


class DownloadsOnly:
    """A provider that never writes into the bucket: it declares no folder."""

    name = "downloads-only"


def test_a_provider_that_declares_no_folder_owns_no_object_in_the_bucket(rt):
    assert not isinstance(DownloadsOnly(), BucketWriter)
    job_id = "f" * 32
    ref = OutputRef(0, gcs_uri=f"gs://{rt.bucket.name}/vertex/{job_id}/0.mp4")
    with pytest.raises(PermanentError) as refused:
        _own_output(rt, DownloadsOnly(), job_id, ref)  # type: ignore[arg-type]
    assert refused.value.code == ErrorCode.DOWNLOAD_INVALID


@pytest.mark.parametrize("uri", ["gs://another-bucket/vertex/{job}/0.mp4", "https://x/vertex/{job}/0.mp4", "gs://{bucket}/vertex/{job}/"])
def test_only_an_object_of_our_bucket_inside_the_folder_is_adopted(rt, provider, uri):
    job_id = "f" * 32
    ref = OutputRef(0, gcs_uri=uri.format(job=job_id, bucket=rt.bucket.name))
    with pytest.raises(PermanentError):
        _own_output(rt, provider, job_id, ref)
    good = OutputRef(0, gcs_uri=f"gs://{rt.bucket.name}/vertex/{job_id}/1/sample_0.mp4")
    assert _own_output(rt, provider, job_id, good) == f"vertex/{job_id}/1/sample_0.mp4"


def test_a_provider_original_finalize_may_not_delete_is_left_and_the_job_succeeds():
    """A delete of the provider's original that is refused (403: a grant missing or revoked) is
    no failure: the video is in place all the same and the bucket's lifecycle rule removes the
    original (with the grant, finalize removes it itself: tests/steps/test_vertex_cleanup.py)."""
    from google.api_core import exceptions as gexc

    provider = WritesInto("generated")
    rt = make_runtime(providers=[provider])
    job_id = running_job(rt)
    name = f"generated/{job_id}/0.mp4"
    rt.bucket.put(name, mp4(5000))  # type: ignore[attr-defined]
    rt.bucket.faults.add("delete", gexc.Forbidden("finalize holds objectViewer on generated/"), name=name)  # type: ignore[attr-defined]
    provider.checks.set(succeeded(f"gs://{rt.bucket.name}/{name}"))
    run_named(rt, f"{job_id}-poll-1")
    finalize_job(rt, job_id, 1)
    job = rt.store.get(job_id)
    assert job is not None and job["status"] == JobStatus.SUCCEEDED
    assert rt.bucket.get_blob(video_name(rt, job_id, 0)) is not None
    assert rt.bucket.get_blob(name) is not None  # left for the lifecycle rule
