"""The stream step (steps/stream.py), for a provider whose submit is an event stream: the step
that POSTs holds the stream; a lost stream is followed by polling, never submitted again."""
from __future__ import annotations

from datetime import timedelta

import pytest

from veorelay.core.clock import utcnow
from veorelay.core.errors import ErrorCode, TransientError
from veorelay.core.job import JobStatus
from veorelay.providers.base import Generation
from veorelay.steps import stream as stream_step
from veorelay.steps.cancel import cancel_job
from veorelay.steps.stream import STREAM_CLAIM_LEASE_S, stream_job

from .driver import run_named
from .fake_providers import FakeStream, broken, complete, error_event, refused, running, status, unavailable
from .helpers import PROMPT, WEBHOOK_URL, past, streaming_job


def first_check(job) -> str:
    """The first check of the chain a stream step started for the job (named on it: poll_chain)."""
    return f"{job['id']}-c{job['poll_chain']}-poll-1"


def test_a_streamed_job_runs_reports_each_new_stage_and_hands_its_videos_to_finalize(rt, streamer, store, tasks):
    job_id = streaming_job(rt, sample_count=2)
    urls = ("https://files.fake/a.mp4", "https://files.fake/b.mp4")
    stages = []
    stream = FakeStream([status("starting", 5), status("processing", 20), status("processing", 20), complete(*urls)],
                        on_event=lambda e: stages.append(store.job(job_id)["progress"]["stage"]))
    streamer.streams.set(stream)

    run_named(rt, f"{job_id}-stream")

    job = store.job(job_id)
    assert job["status"] == JobStatus.DOWNLOADING and [o["url"] for o in job["pending_outputs"]] == list(urls)
    assert stages == ["starting", "starting", "processing", "processing"]  # as each event arrived
    assert job["handle"]["prompt"] == PROMPT and job["handle"]["count"] == 2 and job["submit_claim"] is None
    assert job["stream_submitted_at"] <= job["timestamps"]["running"]
    assert [c.method for c in streamer.calls] == ["open_stream"] and stream.closed
    assert tasks.pending_names() == [f"{job_id}-finalize"] and [r[2] for r in rt.durations.recorded] == [job_id]


def test_a_stage_is_written_once_however_often_the_provider_repeats_it(rt, streamer, store):
    job_id = streaming_job(rt)
    streamer.streams.set([status("processing", 20)] * 5 + [broken()])
    writes = len(store.writes)

    run_named(rt, f"{job_id}-stream")

    # claim, stream_submitted_at, running, one progress write, the takeover by polling
    assert [op for op, jid in store.writes[writes:]] == ["claim", "update", "transition", "update", "update"]


def test_stream_progress_goes_to_a_webhook_that_asked_for_it(rt, streamer, tasks):
    job_id = streaming_job(rt, webhook_url=WEBHOOK_URL, webhook_events=["job.progress"])
    streamer.streams.set([status("processing", 20), broken()])
    run_named(rt, f"{job_id}-stream")
    assert [t.payload["event"] for t in tasks.pending if t.target == "deliver_webhook"] == ["job.progress"]


def test_an_error_event_fails_the_job_with_its_code(rt, streamer, store, tasks):
    job_id = streaming_job(rt)
    streamer.streams.set([status("processing"), error_event(ErrorCode.RAI_FILTERED, "content filtered")])
    run_named(rt, f"{job_id}-stream")
    job = store.job(job_id)
    assert job["status"] == JobStatus.FAILED and job["error"] == {
        "code": "rai_filtered", "message": "content filtered", "retryable": False, "provider_detail": None}
    assert tasks.pending == []


def test_completion_without_a_video_fails_the_job(rt, streamer, store):
    job_id = streaming_job(rt)
    streamer.streams.set([complete()])
    run_named(rt, f"{job_id}-stream")
    assert store.job(job_id)["error"]["code"] == ErrorCode.PROVIDER_ERROR


@pytest.mark.parametrize("items", [
    [status("starting"), broken()],  # the connection breaks
    [status("starting")],  # the stream ends without its last event
    [],  # a 200 that was not a stream at all
])
def test_a_lost_stream_is_followed_by_polling_not_by_submitting_again(rt, streamer, store, tasks, items):
    job_id = streaming_job(rt)
    streamer.streams.set(items)

    run_named(rt, f"{job_id}-stream")

    job = store.job(job_id)
    assert job["status"] == JobStatus.RUNNING
    (poll,) = tasks.pending
    assert poll.name == first_check(job) and poll.delay_s <= rt.settings.poll.max_delay_s and "checked_s" in poll.payload
    assert poll.payload["chain"] == job["poll_chain"]  # the chain the stream step started, named on the job
    assert streamer.count("open_stream") == 1 and streamer.opened[0].closed


def test_a_stream_held_as_long_as_the_task_may_run_is_handed_to_polling(rt, streamer, store, tasks, monkeypatch):
    monkeypatch.setattr(stream_step, "STREAM_MARGIN_S", stream_step.STREAM_DEADLINE_S + 1)  # the time is up at once
    job_id = streaming_job(rt)
    streamer.streams.set(FakeStream([status("starting"), status("processing"), complete("https://files.fake/a.mp4")]))

    run_named(rt, f"{job_id}-stream")

    assert streamer.opened[0].read == 1 and store.job(job_id)["status"] == JobStatus.RUNNING
    assert tasks.pending_names() == [first_check(store.job(job_id))]


def test_a_redelivered_stream_task_of_a_running_job_follows_it_by_polling(rt, streamer, store, tasks):
    job_id = streaming_job(rt)
    streamer.streams.set([broken()])
    task = tasks.take(f"{job_id}-stream")
    stream_job(rt, job_id)
    tasks.take(first_check(store.job(job_id)))
    tasks.forget_names()  # e.g. the first check ran over an hour ago

    stream_job(rt, task.job_id)  # the task delivered again

    assert streamer.count("open_stream") == 1 and tasks.pending_names() == [first_check(store.job(job_id))]


@pytest.mark.faults
def test_a_stream_task_redelivered_while_its_polling_chain_runs_takes_the_job_over_and_the_old_chain_ends(
        rt, streamer, store, tasks):
    """A stream task delivered again after its stream broke and its chain of checks began: the
    second delivery takes the job over (a new poll_chain), and the first chain's next check asks nothing."""
    job_id = streaming_job(rt)
    streamer.streams.set([broken()])
    run_named(rt, f"{job_id}-stream")
    first = store.job(job_id)["poll_chain"]

    stream_job(rt, job_id)  # delivered again: its first delivery's answer was lost

    second = store.job(job_id)["poll_chain"]
    assert second != first and streamer.count("open_stream") == 1
    assert tasks.pending_names() == [f"{job_id}-c{first}-poll-1", f"{job_id}-c{second}-poll-1"]
    streamer.checks.set(running(10))
    run_named(rt, f"{job_id}-c{first}-poll-1")  # the chain it replaced: ends without asking
    assert streamer.count("check") == 0 and tasks.pending_names() == [f"{job_id}-c{second}-poll-1"]
    run_named(rt, f"{job_id}-c{second}-poll-1")
    assert streamer.count("check") == 1 and tasks.pending_names() == [f"{job_id}-c{second}-poll-2"]


@pytest.mark.faults
def test_a_stream_step_resumed_after_its_job_was_taken_over_lets_the_stream_go(rt, streamer, store, tasks):
    """A first stream delivery still holding its stream while a second delivery took the job over:
    its next progress write is refused, it lets the stream go and starts no chain of its own."""
    job_id = streaming_job(rt)
    taken_over = []

    def second_delivery(event):
        if not taken_over:
            stream_job(rt, job_id)  # the queue gave up on the first attempt and delivered it again
            taken_over.append(store.job(job_id)["poll_chain"])

    stream = FakeStream([status("starting", 5), status("processing", 40), complete("https://files.fake/a.mp4")],
                        on_event=second_delivery)
    streamer.streams.set(stream)

    run_named(rt, f"{job_id}-stream")

    job = store.job(job_id)
    assert job["status"] == JobStatus.RUNNING and job["poll_chain"] == taken_over[0]
    assert job["progress"]["stage"] != "processing" and stream.closed  # let go before writing it
    assert tasks.pending_names() == [first_check(job)]  # one chain: the second delivery's


@pytest.mark.faults
def test_a_stream_step_whose_job_the_sweep_restarted_starts_no_chain_beside_the_sweeps(rt, streamer, store, tasks):
    """The sweep restarted a streaming job's chain while its stream was held: when the stream breaks,
    the stream step starts no chain of checks beside the sweep's."""
    job_id = streaming_job(rt)
    task = tasks.take(f"{job_id}-stream")
    streamer.streams.set(FakeStream([status("starting", 5), broken()],
                                    on_event=lambda e: store.edit(job_id, sweep_gen=1)))  # the sweep, meanwhile

    stream_job(rt, task.job_id)

    assert "poll_chain" not in store.job(job_id) and tasks.pending == []  # the sweep's own task follows the job


def test_a_post_whose_answer_was_lost_is_looked_for_before_posting_again(rt, streamer, store, tasks):
    job_id = streaming_job(rt)
    streamer.streams.set(unavailable())
    with pytest.raises(TransientError):
        run_named(rt, f"{job_id}-stream")
    tried_at = store.job(job_id)["stream_submitted_at"]
    assert store.job(job_id)["submit_claim"] is None

    streamer.generations.set([Generation(("h-1",), tried_at.timestamp())])  # it did reach the provider
    stream_job(rt, job_id)  # the queue's retry

    job = store.job(job_id)
    assert job["status"] == JobStatus.RUNNING and job["handle"]["submitted_at"] == tried_at.timestamp()
    assert job["handle"]["history_ids"] == ["h-1"] and store.claims() == {"fakestream:h-1": job_id}  # claimed: its own
    assert [c.method for c in streamer.calls] == ["open_stream", "candidates"]
    # the handle the provider built, passed back as is
    assert streamer.calls[1].args == ({k: v for k, v in job["handle"].items() if k != "history_ids"},)
    assert tasks.pending_names() == [first_check(job)]


def test_a_post_that_never_reached_the_provider_is_sent_again(rt, streamer, store):
    job_id = streaming_job(rt)
    streamer.streams.set(unavailable(), [complete("https://files.fake/a.mp4")])
    with pytest.raises(TransientError):
        run_named(rt, f"{job_id}-stream")

    stream_job(rt, job_id)  # nothing in the histories: the first POST was never received

    assert [c.method for c in streamer.calls] == ["open_stream", "candidates", "open_stream"]
    assert store.job(job_id)["status"] == JobStatus.DOWNLOADING


def test_a_refused_post_fails_the_job(rt, streamer, store):
    job_id = streaming_job(rt)
    streamer.streams.set(refused(ErrorCode.ACCESS_DENIED, "genaipro refused our credentials (401)"))
    run_named(rt, f"{job_id}-stream")
    assert store.job(job_id)["error"]["code"] == ErrorCode.ACCESS_DENIED


def test_the_streams_read_timeout_is_bounded_by_the_deadline_and_the_task(rt, streamer, store):
    job_id = streaming_job(rt)
    streamer.streams.set([broken()])
    store.edit(job_id, deadline_at=utcnow() + timedelta(seconds=100))
    run_named(rt, f"{job_id}-stream")
    (req, read_timeout_s) = streamer.calls[0].args
    assert 90 <= read_timeout_s <= 100 and req.prompt == PROMPT


def test_a_stream_task_past_the_deadline_fails_the_job_without_posting(rt, streamer, store):
    job_id = streaming_job(rt)
    store.edit(job_id, deadline_at=past())
    run_named(rt, f"{job_id}-stream")
    assert store.job(job_id)["error"]["code"] == ErrorCode.DEADLINE_EXCEEDED and streamer.calls == []


def test_a_duplicate_stream_task_while_one_holds_the_claim_posts_nothing(rt, streamer, store):
    job_id = streaming_job(rt)
    store.edit(job_id, submit_claim={"at": utcnow() - timedelta(seconds=STREAM_CLAIM_LEASE_S - 10)})
    run_named(rt, f"{job_id}-stream")
    assert streamer.calls == [] and store.job(job_id)["status"] == JobStatus.ACCEPTED


@pytest.mark.parametrize("status_", ["downloading", "succeeded", "failed", "cancelled"])
def test_a_late_stream_task_does_nothing(rt, streamer, store, tasks, status_):
    job_id = streaming_job(rt)
    store.edit(job_id, status=status_)
    tasks.pending.clear()
    stream_job(rt, job_id)
    assert streamer.calls == [] and tasks.pending == []


def test_a_job_cancelled_while_streaming_lets_go_of_the_stream(rt, streamer, store, tasks):
    job_id = streaming_job(rt)
    stream = FakeStream([status("starting"), status("processing"), complete("https://files.fake/a.mp4")],
                        on_event=lambda e: e.stage == "processing" and cancel_job(rt, job_id))
    streamer.streams.set(stream)
    tasks.take(f"{job_id}-stream")

    stream_job(rt, job_id)

    assert store.job(job_id)["status"] == JobStatus.CANCELLED and stream.closed
    assert stream.read == 2  # the "processing" event found the job cancelled: the rest is never read
    assert [t.target for t in tasks.pending] == []


def test_a_job_cancelled_just_before_completion_records_the_late_result(rt, streamer, store, tasks):
    job_id = streaming_job(rt)
    stream = FakeStream([status("starting"), complete("https://files.fake/late.mp4")],
                        on_event=lambda e: e.kind == "complete" and cancel_job(rt, job_id))
    streamer.streams.set(stream)
    tasks.take(f"{job_id}-stream")

    stream_job(rt, job_id)

    job = store.job(job_id)
    assert job["status"] == JobStatus.CANCELLED and job["late_result"]["outputs"][0]["url"] == "https://files.fake/late.mp4"
    assert [t.target for t in tasks.pending] == []
