"""Deep output checks in finalize (gcp/media_probe.py, core/media.py): every stored video is read
back from the bucket; what it is (`media`) and its first frame (`poster`, a JPEG beside it) are
on the output; a file that is no video fails the job `download_invalid` and leaves nothing; a
video unlike the request is kept, with warnings the client sees."""
from __future__ import annotations

import io
import json
import struct

import pytest
from google.api_core import exceptions as gexc
from PIL import Image
from standardwebhooks import Webhook

from dev.simulators import clips
from veorelay.core.errors import ErrorCode, TransientError
from veorelay.core.job import JobStatus
from veorelay.core.views import job_view
from veorelay.steps.finalize import finalize_job

from .driver import run_named
from .fake_providers import Video, mp4
from .fakes import WEBHOOK_SECRET
from .helpers import WEBHOOK_URL, downloading_job, job_json_name, poster_name, video_name

CHUNK = 256 * 1024
MIB = 1024 * 1024


def objects(bucket, job_id: str) -> list[str]:
    return bucket.names(f"videos/{job_id}/")


def test_each_output_carries_what_the_stored_file_is_and_a_poster_of_its_first_frame(rt, store, bucket):
    portrait = mp4(40_000, clip=clips.clip(360, 640, 6.0, audio=False))
    job_id = downloading_job(rt, portrait, aspect_ratio="9:16", duration_seconds=6)

    run_named(rt, f"{job_id}-finalize")

    job = store.job(job_id)
    assert job["status"] == JobStatus.SUCCEEDED and job["warnings"] == []
    (output,) = job["outputs"]
    assert output["media"] == {"duration_seconds": 6.0, "width": 360, "height": 640, "video_codec": "h264",
                               "audio_codec": None, "has_audio": False}
    name = poster_name(rt, job_id, 0)
    assert output["poster"] == {"uri": f"gs://{bucket.name}/{name}", "name": name, "size": len(bucket.data(name)),
                                "content_type": "image/jpeg"}
    poster = Image.open(io.BytesIO(bucket.data(name)))
    assert poster.format == "JPEG" and poster.size == (360, 640)
    # The clip's first frame is blue above, amber below (clips.py): the poster shows that frame.
    top, bottom = poster.convert("RGB").getpixel((180, 100)), poster.convert("RGB").getpixel((180, 540))
    assert top[2] > 150 > top[0] and bottom[0] > 150 > bottom[2]
    assert job_view(job)["outputs"][0]["poster"]["name"] == name


def test_a_video_unlike_the_request_succeeds_with_warnings_in_the_view_job_json_and_the_webhook(rt, store, bucket, receiver):
    landscape = mp4(20_000, clip=clips.clip(128, 72, 2.0))  # 2 s, 16:9
    job_id = downloading_job(rt, landscape, aspect_ratio="9:16", duration_seconds=8, webhook_url=WEBHOOK_URL)

    run_named(rt, f"{job_id}-finalize")
    run_named(rt, f"{job_id}-wh-job_succeeded-1")

    job = store.job(job_id)
    assert job["status"] == JobStatus.SUCCEEDED and bucket.data(video_name(rt, job_id, 0)) == landscape
    expected = [
        {"code": "duration_mismatch", "output": 0, "message": "output 0 lasts 2 s; 8 s were asked for"},
        {"code": "aspect_ratio_mismatch", "output": 0, "message": "output 0 is 128x72, not 9:16"},
    ]
    assert job_view(job)["warnings"] == expected
    assert json.loads(bucket.data(job_json_name(rt, job_id)))["warnings"] == expected
    (sent,) = receiver.sent
    event = Webhook(WEBHOOK_SECRET).verify(sent.body, sent.headers)
    assert event["data"]["warnings"] == expected
    (output,) = event["data"]["outputs"]
    # The poster has its own signed URL, like the video.
    assert output["poster"]["signed_url"].startswith(f"https://storage.fake/{bucket.name}/videos/{job_id}/0.jpg")
    assert output["poster"]["signed_url_expires_at"] == output["signed_url_expires_at"] is not None


@pytest.mark.parametrize("data, why", [
    (clips.audio_only(2.0), "no video track"),
    (clips.zero_duration(clips.clip(64, 36, 2.0)), "zero seconds"),
    (b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + bytes(range(256)) * 40, "not a readable MP4"),
], ids=["no-video-track", "zero-duration", "ftyp-then-garbage"])
def test_a_file_that_is_no_video_fails_the_job_download_invalid_and_leaves_no_object(rt, store, tasks, bucket, data, why):
    first = mp4(5000, seed=1)
    job_id = downloading_job(rt, first, Video(data), webhook_url=WEBHOOK_URL)
    tasks.pending = [t for t in tasks.pending if t.target == "finalize_job"]

    run_named(rt, f"{job_id}-finalize")

    job = store.job(job_id)
    assert job["status"] == JobStatus.FAILED and job["error"]["code"] == ErrorCode.DOWNLOAD_INVALID and why in job["error"]["message"]
    # The good first output's video and poster went too: only a succeeded job has objects.
    assert objects(bucket, job_id) == [] and tasks.pending_names() == [f"{job_id}-discard", f"{job_id}-wh-job_failed-1"]


def test_a_moov_at_the_end_of_a_big_file_is_found_by_seeking_and_little_is_read(rt, store, bucket):
    head, moov = clips.split_moov(clips.clip(64, 36, 2.0, faststart=False))
    gap = 20 * MIB  # ftyp, mdat, 20 MiB of `free`, then moov
    data = head + struct.pack(">I4s", gap, b"free") + bytes(gap - 8) + moov
    job_id = downloading_job(rt, data)

    run_named(rt, f"{job_id}-finalize")

    job = store.job(job_id)
    assert job["status"] == JobStatus.SUCCEEDED and job["outputs"][0]["media"]["duration_seconds"] == 2.0
    name = video_name(rt, job_id, 0)
    assert bucket.bytes_read[name] < 2 * MIB, bucket.bytes_read  # the index and the first frame, not the file


def test_a_retry_makes_no_second_poster(rt, provider, store, bucket):
    second = mp4(3 * CHUNK, seed=2)
    job_id = downloading_job(rt, mp4(5000, seed=1), Video(second, cut_after=10))
    provider.serve(f"https://videos.fake/{job_id}/1.mp4", Video(second, cut_after=10), second)
    with pytest.raises(TransientError):
        finalize_job(rt, job_id, 1)  # output 0 stored with its poster; output 1 cut off
    first = bucket.objects[poster_name(rt, job_id, 0)]
    assert objects(bucket, job_id) == [poster_name(rt, job_id, 0), video_name(rt, job_id, 0)]

    run_named(rt, f"{job_id}-finalize")

    job = store.job(job_id)
    assert job["status"] == JobStatus.SUCCEEDED
    assert bucket.objects[poster_name(rt, job_id, 0)].generation == first.generation  # the same object, not a new one
    assert objects(bucket, job_id) == [poster_name(rt, job_id, 0), video_name(rt, job_id, 0),
                                       poster_name(rt, job_id, 1), video_name(rt, job_id, 1), job_json_name(rt, job_id)]
    assert [o["poster"]["name"] for o in job["outputs"]] == [poster_name(rt, job_id, 0), poster_name(rt, job_id, 1)]


def test_a_poster_stored_by_a_concurrent_attempt_is_kept(rt, store, bucket):
    job_id = downloading_job(rt, mp4(5000))
    bucket.put(poster_name(rt, job_id, 0), b"\xff\xd8 an earlier attempt's poster", content_type="image/jpeg")

    run_named(rt, f"{job_id}-finalize")

    (output,) = store.job(job_id)["outputs"]
    assert output["poster"]["size"] == len(b"\xff\xd8 an earlier attempt's poster")
    assert bucket.data(poster_name(rt, job_id, 0)).startswith(b"\xff\xd8 an earlier")


@pytest.mark.parametrize("op", ["read", "get_blob"])
def test_the_bucket_failing_under_the_read_back_is_retried_not_a_failed_job(rt, store, bucket, op):
    job_id = downloading_job(rt, mp4(5000))
    bucket.faults.add(op, gexc.ServiceUnavailable("GCS is down"), name=video_name(rt, job_id, 0))

    with pytest.raises(TransientError) as raised:
        finalize_job(rt, job_id, 1)
    assert raised.value.code == ErrorCode.INTERNAL and store.job(job_id)["status"] == JobStatus.DOWNLOADING

    finalize_job(rt, job_id, 2)
    assert store.job(job_id)["status"] == JobStatus.SUCCEEDED and store.job(job_id)["outputs"][0]["media"]["width"] == 64
