"""Jobs arranged in a given state through the steps themselves (never by writing a job by hand),
so every test starts from a record the code really writes."""
from __future__ import annotations

import base64
import dataclasses
import hashlib
from datetime import datetime, timedelta
from typing import Any, cast

import google_crc32c

from veorelay.core.clock import utcnow
from veorelay.runtime import Runtime
from veorelay.steps.accept import create_job

from .driver import run_named
from .fake_providers import FakeProvider, Video, succeeded
from .fakes import FakeBucket, FakeHttp, FakeScheduler, FakeStore

PROMPT = "a red fox running through fresh snow, golden hour"
# A literal public address: the webhook URL check has nothing to resolve.
WEBHOOK_URL = "https://93.184.215.14/hooks/veo"


def crc32c(data: bytes) -> str:
    """What Cloud Storage reports as an object's crc32c: base64 of the big-endian CRC32C."""
    return base64.b64encode(google_crc32c.Checksum(data).digest()).decode()


def md5(data: bytes) -> str:
    """What Cloud Storage reports as an object's md5Hash: base64 of the MD5."""
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def recording_sha256(rt: Runtime) -> Runtime:
    """The deployment that asks for a sha256 of every video (VEO_OUTPUT_SHA256=true)."""
    rt.settings = dataclasses.replace(rt.settings, output_sha256=True)
    return rt


def store_of(rt: Runtime) -> FakeStore:
    return cast(FakeStore, rt.store)


def tasks_of(rt: Runtime) -> FakeScheduler:
    return cast(FakeScheduler, rt.scheduler)


def bucket_of(rt: Runtime) -> FakeBucket:
    return cast(FakeBucket, rt.bucket)


def receiver_of(rt: Runtime) -> FakeHttp:
    return cast(FakeHttp, rt.user_http)


def provider_of(rt: Runtime, name: str = "fake") -> FakeProvider:
    return cast(FakeProvider, rt.providers[name])


def body(provider: str = "fake", **fields: Any) -> dict[str, Any]:
    return {"prompt": PROMPT, "provider": provider, **fields}


def accepted_job(rt: Runtime, provider: str = "fake", **fields: Any) -> str:
    """POST /jobs: the job accepted, its submit task pending."""
    job, created = create_job(rt, body(provider, **fields))
    assert created
    return job["id"]


def running_job(rt: Runtime, **fields: Any) -> str:
    """Accepted and submitted: running, its first check (`<id>-poll-1`) pending. The provider's
    call log is emptied, so a test sees only the calls its own step makes."""
    job_id = accepted_job(rt, **fields)
    run_named(rt, f"{job_id}-submit")
    provider_of(rt).calls.clear()
    return job_id


def downloading_job(rt: Runtime, *videos: bytes | Video, **fields: Any) -> str:
    """Running, then checked and found finished with these videos (served at
    https://videos.fake/<job>/<n>.mp4): downloading, `<id>-finalize` pending."""
    job_id = running_job(rt, **fields)
    provider = provider_of(rt)
    urls = [f"https://videos.fake/{job_id}/{i}.mp4" for i in range(len(videos))]
    for url, video in zip(urls, videos):
        provider.serve(url, video)
    provider.checks.set(succeeded(*urls))
    run_named(rt, f"{job_id}-poll-1")
    provider.calls.clear()
    return job_id


def streaming_job(rt: Runtime, **fields: Any) -> str:
    """Accepted on the streaming provider, its submit task run: `<id>-stream` pending."""
    job_id = accepted_job(rt, provider="fakestream", **fields)
    run_named(rt, f"{job_id}-submit")
    return job_id


def past(seconds: float = 1.0) -> datetime:
    return utcnow() - timedelta(seconds=seconds)


def video_name(rt: Runtime, job_id: str, index: int) -> str:
    return f"{rt.settings.output_prefix}/{job_id}/{index}.mp4"


def poster_name(rt: Runtime, job_id: str, index: int) -> str:
    return f"{rt.settings.output_prefix}/{job_id}/{index}.jpg"


def job_json_name(rt: Runtime, job_id: str) -> str:
    return f"{rt.settings.output_prefix}/{job_id}/job.json"
