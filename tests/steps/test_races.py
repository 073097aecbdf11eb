"""Cancel against a finishing download, on threads (steps/cancel.py, steps/finalize.py): one
checked write decides, so a job ends either cancelled with no video, every cancel answered with
it, or succeeded with its video and job.json, every cancel a 409. Never both, never a video of a
job that did not succeed, never a job.succeeded for a cancelled job.

Each round races one finalize attempt against CANCELS concurrent cancels released at a point of
its own: before the copy, during it, at the commit of `succeeded` (the cancels and the commit
released together), and after it.
"""
from __future__ import annotations

import random
import threading
import time
from collections import Counter
from typing import Any

import pytest

from veorelay.core.errors import ApiError
from veorelay.core.job import JobStatus
from veorelay.steps.cancel import cancel_job
from veorelay.steps.finalize import finalize_job

from .driver import drain, errors
from .fake_providers import FakeDownload, FakeProvider, Video, mp4
from .fakes import make_runtime
from .helpers import WEBHOOK_URL, bucket_of, downloading_job, job_json_name, poster_name, store_of, tasks_of, video_name

pytestmark = pytest.mark.faults

ROUNDS = 30
CANCELS = 3
VIDEO = mp4(1024 * 1024 + 4321)  # four 256 KiB upload chunks and a bit: a copy with a middle
CHUNK_PAUSE_S = 0.002  # the download trickles: the copy takes a while, cancels land inside it


class SlowDownload(FakeDownload):
    def iter_bytes(self, chunk_size: int):
        for piece in super().iter_bytes(64 * 1024):
            time.sleep(CHUNK_PAUSE_S)
            yield piece


def race(point: str, delay_s: float) -> dict[str, Any]:
    """One round: a downloading job, its finalize attempt on one thread and CANCELS cancels on
    others, released at `point` ("start": with the attempt; "commit": together with finalize's
    move to succeeded; "after": once it returned) plus `delay_s`."""
    provider = FakeProvider()
    rt = make_runtime(providers=[provider])
    store, tasks, bucket = store_of(rt), tasks_of(rt), bucket_of(rt)
    job_id = downloading_job(rt, VIDEO, webhook_url=WEBHOOK_URL)
    tasks.take(f"{job_id}-finalize")  # run here, on its thread
    provider.open_output = lambda ref: SlowDownload(Video(VIDEO))  # type: ignore[method-assign]
    go = threading.Event()
    if point == "commit":
        transition = store.transition

        def at_commit(jid, to, updates=None, from_states=None):
            if to == JobStatus.SUCCEEDED:
                go.set()  # the cancels and this write race for the job
                if random.random() < 0.5:  # or straight on: either may land first
                    time.sleep(random.uniform(0, 0.0004))
            return transition(jid, to, updates, from_states)

        store.transition = at_commit  # type: ignore[method-assign]
    answers: list[Any] = []
    lock = threading.Lock()

    def cancel() -> None:
        go.wait(10)
        time.sleep(delay_s)
        try:
            answer: Any = cancel_job(rt, job_id)["status"]
        except ApiError as refused:
            answer = refused.status
        with lock:
            answers.append(answer)

    took: list[float] = []

    def finalize() -> None:
        if point == "start":
            go.set()
        started = time.monotonic()
        finalize_job(rt, job_id, 1)
        took.append(time.monotonic() - started)
        go.set()  # "after" (and a safety net for the others)

    threads = [threading.Thread(target=cancel) for _ in range(CANCELS)] + [threading.Thread(target=finalize)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)
    log = drain(rt)  # what the race queued: the discard task, the events
    assert errors(log) == []
    job = store.job(job_id)
    events = [t.payload["event"] for t in tasks.created if t.target == "deliver_webhook"]
    return {"status": job["status"], "answers": answers, "copy_s": took[0], "objects": bucket.names(f"videos/{job_id}/"), "job": job,
            "events": events, "tasks": tasks.names(), "expected": [poster_name(rt, job_id, 0), video_name(rt, job_id, 0), job_json_name(rt, job_id)]}


def test_concurrent_cancels_against_a_finishing_download_end_one_way_only():
    """Concurrent cancels racing a finishing download (30 rounds): cancelled with no video and every cancel 200, or succeeded with its video and every cancel 409."""
    copy_s = race("after", 0.0)["copy_s"]  # how long an undisturbed attempt takes here
    outcomes: Counter[str] = Counter()
    for n in range(ROUNDS):
        point = ("start", "commit", "after")[n % 3]
        delay_s = (n / ROUNDS) * 1.5 * copy_s if point == "start" else 0.0
        got = race(point, delay_s)
        job, answers = got["job"], got["answers"]
        assert len(answers) == CANCELS
        if got["status"] == JobStatus.CANCELLED:
            assert answers == [JobStatus.CANCELLED] * CANCELS, got  # 200, each with the cancelled job
            assert got["objects"] == [] and job["outputs"] == [] and job["error"]["code"] == "cancelled"
            assert "job.succeeded" not in got["events"] and got["events"].count("job.cancelled") == 1
            assert f"{job['id']}-discard" in got["tasks"]  # it ended while downloading
        else:
            assert got["status"] == JobStatus.SUCCEEDED, got
            assert answers == [409] * CANCELS, got
            assert got["objects"] == got["expected"] and len(job["outputs"]) == 1
            assert "job.cancelled" not in got["events"] and got["events"].count("job.succeeded") == 1
            assert not any(name.endswith("-discard") for name in got["tasks"])
        outcomes[f"{point}:{got['status']}"] += 1
    print("race outcomes:", dict(outcomes))
    # Both ends happened: the race was really run, not one side always first.
    assert sum(v for k, v in outcomes.items() if k.endswith("cancelled")) and sum(v for k, v in outcomes.items() if k.endswith("succeeded"))
    assert outcomes["after:succeeded"] == ROUNDS // 3  # a cancel after the end is a 409, always
