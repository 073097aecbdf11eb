"""What Vertex wrote under vertex/<job id>/ (storageUri) is removed by finalize once its copy is in
the output prefix: the functions' identity may delete there (infra: bucket_grants.finalize-vertex,
objectUser on vertex/). The lifecycle rule on vertex/ stays the net for a delete that is refused
(tests/steps/test_provider_folders.py) and for outputs of jobs that never finished."""
from __future__ import annotations

from veorelay.core.job import JobStatus
from veorelay.steps.finalize import finalize_job

from .driver import run_named
from .fake_providers import mp4, succeeded
from .fakes import make_runtime
from .helpers import bucket_of, crc32c, md5, running_job, video_name
from .test_provider_folders import WritesInto


def test_what_vertex_wrote_is_removed_once_copied_and_only_that():
    provider = WritesInto("vertex")
    rt = make_runtime(providers=[provider])
    job_id = running_job(rt)
    written = f"vertex/{job_id}/123456789/sample_0.mp4"
    video = mp4(7000)
    bucket = bucket_of(rt)
    bucket.put(written, video)
    bucket.put("vertex/another-job/1/sample_0.mp4", mp4(3000))  # another job's: not finalize's to touch now
    provider.checks.set(succeeded(f"gs://{rt.bucket.name}/{written}"))
    run_named(rt, f"{job_id}-poll-1")
    finalize_job(rt, job_id, 1)

    job = rt.store.get(job_id)
    assert job is not None and job["status"] == JobStatus.SUCCEEDED
    final = video_name(rt, job_id, 0)
    assert bucket.data(final) == video
    assert (job["outputs"][0]["crc32c"], job["outputs"][0]["md5"]) == (crc32c(video), md5(video))
    assert bucket.names(f"vertex/{job_id}/") == [], "the original under vertex/<job id>/ must be removed"
    assert bucket.names("vertex/another-job/") == ["vertex/another-job/1/sample_0.mp4"]


def test_a_retry_after_the_removal_keeps_the_job_succeeded():
    """The original is gone once copied: a duplicate finalize task finds the job succeeded and
    neither needs nor misses the original."""
    provider = WritesInto("vertex")
    rt = make_runtime(providers=[provider])
    job_id = running_job(rt)
    written = f"vertex/{job_id}/0.mp4"
    bucket_of(rt).put(written, mp4(4000))
    provider.checks.set(succeeded(f"gs://{rt.bucket.name}/{written}"))
    run_named(rt, f"{job_id}-poll-1")
    finalize_job(rt, job_id, 1)
    finalize_job(rt, job_id, 2)
    job = rt.store.get(job_id)
    assert job is not None and job["status"] == JobStatus.SUCCEEDED
    assert bucket_of(rt).get_blob(written) is None
    assert bucket_of(rt).get_blob(video_name(rt, job_id, 0)) is not None
