"""Recovery never guesses (steps/recover.py): a streaming provider's generation found again by
prompt and time is claimed for its job in Firestore, two jobs of one prompt never take the same
one, and a match that cannot be told apart ends the job with provider_error saying why."""
from __future__ import annotations

import time

import pytest

from veorelay.core.errors import ErrorCode
from veorelay.core.job import JobStatus
from veorelay.providers.base import Generation
from veorelay.steps.recover import LOST_AFTER_S
from veorelay.steps.stream import stream_job

from .driver import drain, run_named
from .fake_providers import broken, complete, mp4, running, status, succeeded, unavailable
from .helpers import PROMPT, streaming_job

pytestmark = pytest.mark.faults


def broken_stream_job(rt, streamer) -> str:
    """A streaming job whose stream broke after its POST reached the provider: followed by polling."""
    job_id = streaming_job(rt)
    streamer.streams.set([status("processing"), broken()])
    run_named(rt, f"{job_id}-stream")
    assert rt.store.get(job_id)["status"] == JobStatus.RUNNING
    return job_id


def first_check(rt, job_id: str) -> None:
    [task] = [t for t in rt.scheduler.pending if t.target == "poll_job" and t.job_id == job_id]
    run_named(rt, task.name)


def test_two_jobs_of_one_prompt_whose_streams_broke_never_take_each_others_generation(rt, streamer, store, bucket):
    """Two jobs, one prompt, both streams broken: two unclaimed look-alikes, so each ends provider_error (ambiguous), no claim, no video."""
    first, second = broken_stream_job(rt, streamer), broken_stream_job(rt, streamer)
    streamer.checks.set(AssertionError("a generation nobody could attribute was followed"))

    first_check(rt, first)
    first_check(rt, second)

    for job_id in (first, second):
        job = store.job(job_id)
        assert job["status"] == JobStatus.FAILED and job["error"]["code"] == ErrorCode.PROVIDER_ERROR
        assert "cannot tell which one is this job's" in job["error"]["message"] and "history_ids" not in job["handle"]
    assert store.claims() == {} and streamer.count("open_stream") == 2 and streamer.count("open_output") == 0
    assert bucket.names("videos/") == []


def test_a_generation_claimed_by_one_job_is_never_another_jobs(rt, streamer, store, bucket):
    """Job A's stream completes and claims its generation; job B (same prompt) loses its stream and takes the other one: one generation each."""
    a = streaming_job(rt)
    streamer.streams.set([status("processing"), complete("https://files.fake/a.mp4", ids=("a-1",))])
    run_named(rt, f"{a}-stream")
    assert store.claims() == {"fakestream:a-1": a} and store.job(a)["handle"]["history_ids"] == ["a-1"]
    b = broken_stream_job(rt, streamer)
    now = time.time()
    streamer.generations.set([Generation(("b-1",), now), Generation(("a-1",), now - 1)])
    streamer.checks.set(lambda handle: succeeded(f"https://files.fake/{handle['history_ids'][0]}.mp4"))
    streamer.serve("https://files.fake/a.mp4", mp4(5000, seed=1))
    streamer.serve("https://files.fake/b-1.mp4", mp4(5000, seed=2))

    drain(rt)

    assert store.claims() == {"fakestream:a-1": a, "fakestream:b-1": b}
    assert [o["url"] for o in store.job(b)["pending_outputs"]] == ["https://files.fake/b-1.mp4"]
    assert store.job(a)["status"] == store.job(b)["status"] == JobStatus.SUCCEEDED
    assert bucket.data(f"videos/{a}/0.mp4") != bucket.data(f"videos/{b}/0.mp4")


def test_a_lone_candidate_another_running_job_may_own_is_waited_for_then_ends_the_job(rt, streamer, store):
    """One unclaimed look-alike while another job of the prompt, still running, has claimed nothing: the job waits (stage lost), and past LOST_AFTER_S ends provider_error."""
    other = broken_stream_job(rt, streamer)
    job_id = broken_stream_job(rt, streamer)
    streamer.generations.set([Generation(("x-1",), time.time())])
    streamer.checks.set(AssertionError("a generation that may be another job's was followed"))

    first_check(rt, job_id)

    job = store.job(job_id)
    assert job["status"] == JobStatus.RUNNING and job["progress"]["stage"] in ("lost", "processing") and store.claims() == {}
    assert store.job(other)["status"] == JobStatus.RUNNING
    store.edit(job_id, **{"handle.submitted_at": time.time() - LOST_AFTER_S - 1})
    drain(rt, skip=lambda t: t.job_id == other)
    job = store.job(job_id)
    assert job["status"] == JobStatus.FAILED and "may own the one generation found" in job["error"]["message"]
    assert store.claims() == {}


def test_a_job_alone_with_its_prompt_takes_and_claims_its_generation(rt, streamer, store):
    """The usual recovery: one job, one look-alike: claimed, pinned, followed to its end."""
    job_id = broken_stream_job(rt, streamer)
    streamer.checks.set(running(), succeeded("https://files.fake/v.mp4"))
    streamer.serve("https://files.fake/v.mp4", mp4(5000))

    drain(rt)

    job = store.job(job_id)
    assert job["status"] == JobStatus.SUCCEEDED and store.claims() == {"fakestream:fakestream-gen-0": job_id}
    assert job["handle"]["history_ids"] == ["fakestream-gen-0"]
    assert [c.method for c in streamer.calls].count("candidates") == 1  # then followed by its pinned handle


def test_a_generation_only_another_job_holds_is_not_this_jobs(rt, streamer, store):
    """The only look-alike is claimed by another job: this job finds nothing of its own, and past LOST_AFTER_S ends provider_error."""
    job_id = broken_stream_job(rt, streamer)
    store.claim_generation("fakestream", ["taken-1"], "f" * 32)
    streamer.generations.set([Generation(("taken-1",), time.time())])
    store.edit(job_id, **{"handle.submitted_at": time.time() - LOST_AFTER_S - 1})

    first_check(rt, job_id)

    job = store.job(job_id)
    assert job["status"] == JobStatus.FAILED and "hold no generation of this job" in job["error"]["message"]
    assert store.claims() == {"fakestream:taken-1": "f" * 32}


def test_a_lost_post_answer_with_several_look_alikes_ends_the_job_without_posting_again(rt, streamer, store):
    """The POST's answer was lost and two unclaimed generations of the prompt are found: the job ends provider_error; nothing is POSTed again."""
    job_id = streaming_job(rt)
    streamer.streams.set(unavailable())
    with pytest.raises(Exception):  # noqa: B017 (the TransientError the queue retries)
        run_named(rt, f"{job_id}-stream")
    now = time.time()
    streamer.generations.set([Generation(("g-2",), now), Generation(("g-1",), now)])

    stream_job(rt, job_id)  # the queue's retry

    job = store.job(job_id)
    assert job["status"] == JobStatus.FAILED and job["error"]["code"] == ErrorCode.PROVIDER_ERROR
    assert streamer.count("open_stream") == 1 and store.claims() == {}


def test_a_generation_the_stream_named_but_another_job_holds_is_not_delivered_twice(rt, streamer, store, tasks):
    """The stream completes naming a generation another job already holds: this job ends provider_error and downloads nothing."""
    job_id = streaming_job(rt)
    store.claim_generation("fakestream", ["c-1"], "e" * 32)
    streamer.streams.set([complete("https://files.fake/c.mp4", ids=("c-1",))])

    run_named(rt, f"{job_id}-stream")

    job = store.job(job_id)
    assert job["status"] == JobStatus.FAILED and "already claimed by another job" in job["error"]["message"]
    assert not [t for t in tasks.pending if t.target == "finalize_job"] and job["request"]["prompt"] == PROMPT
