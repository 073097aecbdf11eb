"""The finalize step (steps/finalize.py, gcp/sink.py): every output streamed into the bucket
and verified, then `succeeded`. Consumers never find a partial video, nor any video of a job
that did not succeed."""
from __future__ import annotations

import json

import pytest
from google.api_core import exceptions as gexc

from veorelay.core.errors import ErrorCode, PermanentError, TransientError
from veorelay.core.job import JobStatus
from veorelay.steps.cancel import cancel_job
from veorelay.steps.finalize import finalize_job

from .driver import run_named
from .fake_providers import Video, mp4, succeeded
from .helpers import (
    PROMPT,
    WEBHOOK_URL,
    crc32c,
    downloading_job,
    job_json_name,
    md5,
    past,
    poster_name,
    recording_sha256,
    running_job,
    sha256,
    video_name,
)

CHUNK = 256 * 1024


def videos_of(bucket, rt, job_id) -> list[str]:
    return bucket.names(f"{rt.settings.output_prefix}/{job_id}/")


def test_a_finished_job_has_its_verified_videos_then_job_json_then_succeeded(rt, provider, store, tasks, bucket):
    first, second = mp4(5000, seed=1), mp4(7000, seed=2)
    job_id = downloading_job(rt, first, second, webhook_url=WEBHOOK_URL)

    run_named(rt, f"{job_id}-finalize")

    job = store.job(job_id)
    assert job["status"] == JobStatus.SUCCEEDED and job["progress"] == {"percent": 100, "stage": "succeeded"}
    names = [video_name(rt, job_id, 0), video_name(rt, job_id, 1)]
    posters = [poster_name(rt, job_id, 0), poster_name(rt, job_id, 1)]
    media = {"duration_seconds": 2.0, "width": 64, "height": 36, "video_codec": "h264", "audio_codec": "aac", "has_audio": True}
    assert job["outputs"] == [
        {"index": i, "uri": f"gs://{bucket.name}/{n}", "name": n, "size": len(v), "crc32c": crc32c(v), "md5": md5(v),
         "content_type": "video/mp4",
         "media": media, "poster": {"uri": f"gs://{bucket.name}/{p}", "name": p, "size": len(bucket.data(p)), "content_type": "image/jpeg"}}
        for i, (n, p, v) in enumerate(zip(names, posters, (first, second)))]
    assert job["warnings"] == []  # the request set nothing a video could differ from
    assert bucket.data(names[0]) == first and bucket.data(names[1]) == second
    stored = bucket.objects[names[1]]
    assert stored.content_type == "video/mp4" and stored.metadata == {
        "job_id": job_id, "provider": "fake", "model": "veo-fake-1", "output_index": "1",
        "prompt_sha256": sha256(PROMPT.encode())}  # no sha256 unless the deployment asks for one
    poster = bucket.objects[posters[1]]
    assert poster.content_type == "image/jpeg" and poster.metadata == {
        "job_id": job_id, "provider": "fake", "model": "veo-fake-1", "output_index": "1",
        "prompt_sha256": sha256(PROMPT.encode()), "video_crc32c": crc32c(second)}
    view = json.loads(bucket.data(job_json_name(rt, job_id)))
    assert view["status"] == "succeeded" and [o["crc32c"] for o in view["outputs"]] == [crc32c(first), crc32c(second)]
    assert [o["md5"] for o in view["outputs"]] == [md5(first), md5(second)] and "sha256" not in view["outputs"][0]
    assert view["outputs"][1]["media"] == media and view["outputs"][1]["poster"]["name"] == posters[1] and view["warnings"] == []
    assert bucket.objects[job_json_name(rt, job_id)].generation > max(stored.generation, poster.generation)  # job.json comes last
    assert all(d.closed for d in provider.downloads) and provider.count("open_output") == 2
    assert tasks.names()[-1] == f"{job_id}-wh-job_succeeded-1"


@pytest.mark.parametrize("video", [
    Video(mp4(9 * 1024 * 1024 + 123)),  # Content-Length above 8 MiB: a resumable upload
    Video(mp4(3 * CHUNK + 17), unknown_length=True),  # chunked transfer: the size is learnt at the end
    Video(mp4(2 * CHUNK), unknown_length=True),  # ends exactly on a chunk: an empty last chunk
])
def test_a_big_or_unsized_video_is_streamed_one_chunk_at_a_time(rt, store, bucket, video):
    job_id = downloading_job(rt, video)

    run_named(rt, f"{job_id}-finalize")

    assert store.job(job_id)["status"] == JobStatus.SUCCEEDED
    assert bucket.data(video_name(rt, job_id, 0)) == video.data
    output = store.job(job_id)["outputs"][0]
    assert (output["size"], output["crc32c"], output["md5"]) == (len(video.data), crc32c(video.data), md5(video.data))
    assert len(bucket.upload_reads) > 1 and max(bucket.upload_reads) <= rt.settings.upload_chunk_bytes


@pytest.mark.parametrize("video, why", [
    (Video(b"<html><body>Access denied</body></html>" * 10, content_type="text/html"), "text/html"),
    (Video(b"<html><body>Access denied</body></html>" * 10, content_type="application/octet-stream"), "not an MP4"),
    (Video(b"\x00\x00\x00\x18ftyp", content_type=None), "too short"),
])
def test_a_download_that_is_not_a_video_fails_the_job_and_stores_nothing(rt, store, tasks, bucket, video, why):
    job_id = downloading_job(rt, video, webhook_url=WEBHOOK_URL)
    tasks.pending = [t for t in tasks.pending if t.target == "finalize_job"]

    run_named(rt, f"{job_id}-finalize")

    job = store.job(job_id)
    assert job["status"] == JobStatus.FAILED and job["error"]["code"] == ErrorCode.DOWNLOAD_INVALID and why in job["error"]["message"]
    # The job ended while downloading: a discard task removes anything an attempt stored.
    assert videos_of(bucket, rt, job_id) == [] and tasks.pending_names() == [f"{job_id}-discard", f"{job_id}-wh-job_failed-1"]


@pytest.mark.parametrize("broken", [
    Video(mp4(3 * CHUNK), cut_after=CHUNK + 100),  # the connection breaks
    Video(mp4(3 * CHUNK), declared_length=3 * CHUNK + 10),  # fewer bytes than Content-Length
    Video(mp4(9 * 1024 * 1024 + 1), cut_after=8 * 1024 * 1024 + 5),  # breaks during a resumable upload
])
def test_a_cut_off_download_is_retried_and_leaves_no_partial_video(rt, provider, store, bucket, broken):
    good = Video(broken.data)
    job_id = downloading_job(rt, broken)
    provider.serve(f"https://videos.fake/{job_id}/0.mp4", broken, good)

    with pytest.raises(TransientError) as raised:
        finalize_job(rt, job_id, 1)
    assert raised.value.code == ErrorCode.DOWNLOAD_INVALID
    assert store.job(job_id)["status"] == JobStatus.DOWNLOADING and videos_of(bucket, rt, job_id) == []

    finalize_job(rt, job_id, 2)
    assert store.job(job_id)["status"] == JobStatus.SUCCEEDED and bucket.data(video_name(rt, job_id, 0)) == good.data


@pytest.mark.parametrize("size", [5000, 9 * 1024 * 1024 + 5])  # sent in one request / as a resumable upload
def test_a_download_longer_than_it_announced_is_not_stored_cut_to_its_content_length(rt, store, bucket, size):
    job_id = downloading_job(rt, Video(mp4(size + 1000), declared_length=size))

    with pytest.raises(TransientError) as raised:
        finalize_job(rt, job_id, 1)

    assert raised.value.code == ErrorCode.DOWNLOAD_INVALID and "longer than" in raised.value.message
    assert videos_of(bucket, rt, job_id) == [] and store.job(job_id)["status"] == JobStatus.DOWNLOADING


def test_a_download_cut_off_on_every_attempt_fails_the_job_after_download_attempts(rt, provider, store, bucket):
    job_id = downloading_job(rt, Video(mp4(3 * CHUNK), cut_after=1000))
    last = rt.settings.download_attempts

    for attempt in range(1, last):
        with pytest.raises(TransientError):
            finalize_job(rt, job_id, attempt)
    finalize_job(rt, job_id, last)

    job = store.job(job_id)
    assert job["status"] == JobStatus.FAILED and job["error"]["code"] == ErrorCode.DOWNLOAD_INVALID
    assert f"(after {last} attempts)" in job["error"]["message"] and videos_of(bucket, rt, job_id) == []


def test_a_job_that_fails_after_download_attempts_keeps_none_of_the_videos_it_had_stored(rt, provider, store, bucket):
    good, cut = mp4(5000, seed=1), Video(mp4(3 * CHUNK, seed=2), cut_after=1000)
    job_id = downloading_job(rt, good, cut)

    for attempt in range(1, rt.settings.download_attempts):
        with pytest.raises(TransientError):
            finalize_job(rt, job_id, attempt)
    assert videos_of(bucket, rt, job_id) == [poster_name(rt, job_id, 0), video_name(rt, job_id, 0)]  # kept between attempts, as it should be
    finalize_job(rt, job_id, rt.settings.download_attempts)

    assert store.job(job_id)["status"] == JobStatus.FAILED
    assert videos_of(bucket, rt, job_id) == []  # only a succeeded job has videos
    assert provider.count("open_output") == rt.settings.download_attempts + 1  # video 0 was downloaded once


def test_a_permanent_error_on_a_later_output_removes_the_earlier_ones(rt, provider, store, bucket):
    job_id = downloading_job(rt, mp4(5000), mp4(5000, seed=3))
    provider.serve(f"https://videos.fake/{job_id}/1.mp4",
                   PermanentError(ErrorCode.DOWNLOAD_EXPIRED, "fake download answered 403"))

    finalize_job(rt, job_id, 1)

    assert store.job(job_id)["error"]["code"] == ErrorCode.DOWNLOAD_EXPIRED and videos_of(bucket, rt, job_id) == []


def test_a_retry_keeps_the_outputs_an_earlier_attempt_stored_and_downloads_only_the_rest(rt, provider, store, bucket):
    first, second = mp4(5000, seed=1), mp4(6000, seed=2)
    job_id = downloading_job(rt, first, second)
    provider.serve(f"https://videos.fake/{job_id}/1.mp4", Video(second, cut_after=10), second)

    with pytest.raises(TransientError):
        finalize_job(rt, job_id, 1)
    generation = bucket.objects[video_name(rt, job_id, 0)].generation
    finalize_job(rt, job_id, 2)

    assert store.job(job_id)["status"] == JobStatus.SUCCEEDED
    assert bucket.objects[video_name(rt, job_id, 0)].generation == generation
    assert [c.args[0].index for c in provider.calls if c.method == "open_output"] == [0, 1, 1]


def test_a_deployment_that_records_sha256s_has_one_on_every_output_and_its_object(rt, store, bucket):
    first, second = mp4(5000, seed=1), mp4(9 * 1024 * 1024 + 123, seed=2)  # one request; a resumable upload
    recording_sha256(rt)
    job_id = downloading_job(rt, first, second)

    run_named(rt, f"{job_id}-finalize")

    outputs = store.job(job_id)["outputs"]
    assert [(o["sha256"], o["crc32c"], o["md5"]) for o in outputs] == [(sha256(v), crc32c(v), md5(v)) for v in (first, second)]
    assert [bucket.objects[video_name(rt, job_id, i)].metadata["sha256"] for i in (0, 1)] == [sha256(first), sha256(second)]
    view = json.loads(bucket.data(job_json_name(rt, job_id)))
    assert [o["sha256"] for o in view["outputs"]] == [sha256(first), sha256(second)]
    assert bucket.objects[poster_name(rt, job_id, 1)].metadata["video_crc32c"] == crc32c(second)


def test_by_default_a_video_gets_no_sha256_and_its_object_is_never_patched(rt, store, bucket):
    video = mp4(5000)
    job_id = downloading_job(rt, video)
    bucket.faults.add("patch", gexc.ServiceUnavailable("a patch would fail"))  # none is made

    finalize_job(rt, job_id, 1)

    job = store.job(job_id)
    assert job["status"] == JobStatus.SUCCEEDED and "sha256" not in job["outputs"][0]
    assert (job["outputs"][0]["crc32c"], job["outputs"][0]["md5"]) == (crc32c(video), md5(video))
    assert "sha256" not in bucket.objects[video_name(rt, job_id, 0)].metadata
    assert "sha256" not in json.loads(bucket.data(job_json_name(rt, job_id)))["outputs"][0]


def test_a_video_stored_by_an_attempt_that_died_before_its_sha256_is_finished_without_downloading_again(rt, provider, store, bucket):
    video = mp4(5000)
    recording_sha256(rt)
    job_id = downloading_job(rt, video)
    bucket.faults.add("patch", gexc.ServiceUnavailable("patch failed"))

    with pytest.raises(TransientError):
        finalize_job(rt, job_id, 1)
    assert "sha256" not in bucket.objects[video_name(rt, job_id, 0)].metadata
    # The provider's link has expired since: the verified video in the bucket is all there is.
    provider.serve(f"https://videos.fake/{job_id}/0.mp4", PermanentError(ErrorCode.DOWNLOAD_EXPIRED, "fake download answered 403"))
    finalize_job(rt, job_id, 2)

    job = store.job(job_id)
    assert job["status"] == JobStatus.SUCCEEDED and job["outputs"][0]["sha256"] == sha256(video)
    assert job["outputs"][0]["crc32c"] == crc32c(video)
    assert bucket.objects[video_name(rt, job_id, 0)].metadata["sha256"] == sha256(video)
    assert provider.count("open_output") == 1


def test_a_video_stored_before_sha256s_were_asked_for_gets_one_from_the_bucket_not_the_provider(rt, provider, store, bucket):
    video, later = mp4(5000, seed=4), mp4(3 * CHUNK, seed=5)
    job_id = downloading_job(rt, video, later)
    provider.serve(f"https://videos.fake/{job_id}/1.mp4", Video(later, cut_after=10), later)
    with pytest.raises(TransientError):
        finalize_job(rt, job_id, 1)  # video 0 stored without a sha256, video 1 cut off
    assert "sha256" not in bucket.objects[video_name(rt, job_id, 0)].metadata
    recording_sha256(rt)  # the deployment turns VEO_OUTPUT_SHA256 on before the retry

    finalize_job(rt, job_id, 2)

    job = store.job(job_id)
    assert job["status"] == JobStatus.SUCCEEDED and job["outputs"][0]["sha256"] == sha256(video)
    assert bucket.objects[video_name(rt, job_id, 0)].metadata["sha256"] == sha256(video)
    assert [c.args[0].index for c in provider.calls if c.method == "open_output"] == [0, 1, 1]


def test_an_upload_the_bucket_stored_damaged_is_removed_and_downloaded_again(rt, provider, store, bucket):
    video = mp4(3 * CHUNK + 17)
    job_id = downloading_job(rt, video)
    bucket.damage_uploads = True  # an endpoint that does not check the CRC32C sent with the last chunk

    with pytest.raises(TransientError) as raised:
        finalize_job(rt, job_id, 1)
    assert "CRC32C" in raised.value.message and videos_of(bucket, rt, job_id) == []

    bucket.damage_uploads = False
    finalize_job(rt, job_id, 2)
    job = store.job(job_id)
    assert job["status"] == JobStatus.SUCCEEDED and bucket.data(video_name(rt, job_id, 0)) == video
    assert job["outputs"][0]["crc32c"] == crc32c(video) and provider.count("open_output") == 2


def test_a_bucket_outage_is_retried_by_the_queue_whatever_the_attempt(rt, store, bucket):
    job_id = downloading_job(rt, mp4(5000))
    bucket.faults.add("upload", gexc.ServiceUnavailable("GCS is down"))

    with pytest.raises(TransientError) as raised:
        finalize_job(rt, job_id, rt.settings.download_attempts + 5)

    assert raised.value.code == ErrorCode.INTERNAL and store.job(job_id)["status"] == JobStatus.DOWNLOADING
    finalize_job(rt, job_id, rt.settings.download_attempts + 6)
    assert store.job(job_id)["status"] == JobStatus.SUCCEEDED


def test_a_success_without_outputs_fails_the_job(rt, provider, store):
    job_id = running_job(rt)
    provider.checks.set(succeeded())
    run_named(rt, f"{job_id}-poll-1")
    run_named(rt, f"{job_id}-finalize")
    job = store.job(job_id)
    assert job["status"] == JobStatus.FAILED and job["error"]["code"] == ErrorCode.PROVIDER_ERROR


def test_a_second_finalize_after_success_downloads_nothing_and_rewrites_nothing(rt, provider, store, bucket):
    job_id = downloading_job(rt, mp4(5000))
    finalize_job(rt, job_id, 1)
    before, objects = store.job(job_id), {n: o.generation for n, o in bucket.objects.items()}

    finalize_job(rt, job_id, 1)

    assert provider.count("open_output") == 1 and store.job(job_id) == before
    assert {n: o.generation for n, o in bucket.objects.items()} == objects


def test_job_json_that_failed_to_write_is_written_by_the_retry_before_the_webhook_is_queued(rt, provider, store, tasks, bucket):
    job_id = downloading_job(rt, mp4(5000), webhook_url=WEBHOOK_URL)
    tasks.pending.clear()
    bucket.faults.add("upload", gexc.ServiceUnavailable("GCS is down"), name=job_json_name(rt, job_id))

    with pytest.raises(TransientError):
        finalize_job(rt, job_id, 1)
    assert store.job(job_id)["status"] == JobStatus.SUCCEEDED and job_json_name(rt, job_id) not in bucket.objects
    assert tasks.pending_names() == []  # a receiver told of success would look for job.json in vain

    finalize_job(rt, job_id, 2)
    assert json.loads(bucket.data(job_json_name(rt, job_id)))["status"] == "succeeded" and provider.count("open_output") == 1
    assert tasks.pending_names() == [f"{job_id}-wh-job_succeeded-1"]


@pytest.mark.parametrize("status", ["accepted", "running", "failed", "cancelled"])
def test_a_finalize_task_for_a_job_not_downloading_downloads_nothing(rt, provider, store, bucket, status):
    job_id = downloading_job(rt, mp4(5000))
    store.edit(job_id, status=status)

    finalize_job(rt, job_id, 1)
    finalize_job(rt, "f" * 32, 1)

    assert provider.calls == [] and bucket.names() == [] and store.job(job_id)["status"] == status


def test_a_job_cancelled_while_its_video_was_copied_keeps_no_video_and_records_the_late_result(rt, provider, store, tasks, bucket):
    video = mp4(5000)
    job_id = downloading_job(rt, video, webhook_url=WEBHOOK_URL)
    url = f"https://videos.fake/{job_id}/0.mp4"
    provider.serve(url, lambda ref: cancel_job(rt, job_id) and video)
    tasks.pending.clear()

    finalize_job(rt, job_id, 1)

    job = store.job(job_id)
    assert job["status"] == JobStatus.CANCELLED and job["late_result"]["outputs"][0]["url"] == url
    assert videos_of(bucket, rt, job_id) == [] and tasks.pending_names() == [f"{job_id}-discard", f"{job_id}-wh-job_cancelled-1"]


@pytest.mark.parametrize("end", ["cancel", "deadline"])
def test_a_retry_that_finds_the_job_ended_removes_the_videos_earlier_attempts_stored(rt, provider, store, bucket, end):
    job_id = downloading_job(rt, mp4(5000), Video(mp4(3 * CHUNK), cut_after=10))
    with pytest.raises(TransientError):
        finalize_job(rt, job_id, 1)
    assert videos_of(bucket, rt, job_id) == [poster_name(rt, job_id, 0), video_name(rt, job_id, 0)]
    if end == "cancel":
        cancel_job(rt, job_id)
    else:  # what the sweep does to a job past its deadline
        from veorelay.steps.sweep import sweep

        store.edit(job_id, deadline_at=past())
        sweep(rt)
    provider.calls.clear()

    finalize_job(rt, job_id, 2)  # the queue's retry of the attempt that was cut off

    assert store.job(job_id)["status"] in (JobStatus.CANCELLED, JobStatus.FAILED)
    assert videos_of(bucket, rt, job_id) == [] and provider.calls == []


# ---------------------------------------------------------------------------- videos the provider wrote


def vertex_job(rt, provider, bucket, *objects: bytes, prefix: str | None = None) -> str:
    job_id = running_job(rt)
    folder = prefix or f"vertex/{job_id}"
    uris = []
    for i, data in enumerate(objects):
        bucket.put(f"{folder}/sample_{i}.mp4", data, content_type="video/mp4")
        uris.append(f"gs://{bucket.name}/{folder}/sample_{i}.mp4")
    provider.checks.set(succeeded(*uris))
    run_named(rt, f"{job_id}-poll-1")
    provider.calls.clear()
    return job_id


@pytest.mark.parametrize("rewrite_steps", [1, 3])
def test_a_video_the_provider_wrote_into_the_bucket_is_verified_and_moved_not_downloaded(rt, provider, store, bucket, rewrite_steps):
    video = mp4(6000)
    bucket.rewrite_steps = rewrite_steps
    job_id = vertex_job(rt, provider, bucket, video)

    finalize_job(rt, job_id, 1)

    job = store.job(job_id)
    output = job["outputs"][0]
    assert job["status"] == JobStatus.SUCCEEDED and (output["crc32c"], output["md5"]) == (crc32c(video), md5(video))
    assert bucket.data(video_name(rt, job_id, 0)) == video and bucket.names(f"vertex/{job_id}/") == []
    assert "sha256" not in output and "sha256" not in bucket.objects[video_name(rt, job_id, 0)].metadata and provider.calls == []


def test_a_video_the_provider_wrote_is_read_through_for_its_sha256_only_where_asked(rt, provider, store, bucket):
    video = mp4(6000)
    job_id = vertex_job(rt, provider, bucket, video)
    recording_sha256(rt)

    finalize_job(rt, job_id, 1)

    output = store.job(job_id)["outputs"][0]
    assert (output["sha256"], output["crc32c"]) == (sha256(video), crc32c(video))
    assert bucket.objects[video_name(rt, job_id, 0)].metadata["sha256"] == sha256(video) and provider.calls == []


@pytest.mark.parametrize("where", ["videos/{other}", "inputs/{job}", "vertex/{other}"])
def test_a_video_named_outside_the_jobs_folder_fails_the_job(rt, provider, store, bucket, where):
    other = "e" * 32
    job_id = running_job(rt)
    folder = where.format(other=other, job=job_id)
    bucket.put(f"{folder}/0.mp4", mp4(5000))
    provider.checks.set(succeeded(f"gs://{bucket.name}/{folder}/0.mp4"))
    run_named(rt, f"{job_id}-poll-1")

    finalize_job(rt, job_id, 1)

    assert store.job(job_id)["error"]["code"] == ErrorCode.DOWNLOAD_INVALID
    assert bucket.names(f"{folder}/") == [f"{folder}/0.mp4"]  # someone else's object is left alone


def test_a_video_the_provider_wrote_that_is_missing_or_not_an_mp4_fails_the_job(rt, provider, store, bucket):
    job_id = vertex_job(rt, provider, bucket, b"<html>quota</html>" * 20)
    finalize_job(rt, job_id, 1)
    assert store.job(job_id)["error"]["code"] == ErrorCode.DOWNLOAD_INVALID and videos_of(bucket, rt, job_id) == []

    job_id = vertex_job(rt, provider, bucket, mp4(5000))
    bucket.objects.clear()
    finalize_job(rt, job_id, 1)
    assert "does not exist" in store.job(job_id)["error"]["message"]


def test_a_fresh_copy_does_not_look_for_a_poster_an_earlier_attempt_made(rt, store, bucket):
    """No attempt stored the video, so none made its poster: one GCS read less before the webhook."""
    job_id = downloading_job(rt, mp4(5000))
    bucket.faults.add("get_blob", gexc.ServiceUnavailable("looked for the poster"), name=poster_name(rt, job_id, 0))

    finalize_job(rt, job_id, 1)

    assert store.job(job_id)["outputs"][0]["poster"]["name"] == poster_name(rt, job_id, 0)
    assert bucket.faults.raised == []


def test_a_retry_queues_the_success_webhook_the_attempt_that_moved_the_job_could_not(rt, store, tasks):
    """The job moved to succeeded, then Cloud Tasks refused its webhook task: the queue retries
    finalize, which finds the job succeeded and queues the webhook (once: the task is named)."""
    job_id = downloading_job(rt, mp4(5000), webhook_url=WEBHOOK_URL)
    event = f"{job_id}-wh-job_succeeded-1"
    tasks.faults.add("enqueue", TransientError(ErrorCode.UNAVAILABLE, "could not enqueue deliver_webhook"), name=event)

    with pytest.raises(TransientError):
        finalize_job(rt, job_id, 1)
    assert store.job(job_id)["status"] == JobStatus.SUCCEEDED and event not in tasks.names()

    finalize_job(rt, job_id, 2)
    finalize_job(rt, job_id, 3)  # a duplicate delivery of the task: the same named webhook task
    assert tasks.pending_names().count(event) == 1
