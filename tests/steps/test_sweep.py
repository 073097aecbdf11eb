"""The sweep (steps/sweep.py): fails every job past its deadline, and restarts the task chain
of a job nothing wrote for a while under names of a new generation; old chains then end."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest

from veorelay.core.clock import utcnow
from veorelay.core.errors import ErrorCode, TransientError
from veorelay.core.events import pending_events
from veorelay.core.job import JobStatus
from veorelay.gcp.store import NOTIFY_AFTER
from veorelay.steps.cancel import cancel_job
from veorelay.steps.chain import PollCall
from veorelay.steps.poll import poll_job
from veorelay.steps.sweep import BATCH, DEADLINE_MESSAGES, stall_after_s, sweep

from .driver import run_named
from .fake_providers import failed, mp4, running, throttled
from .helpers import WEBHOOK_URL, accepted_job, downloading_job, past, running_job, streaming_job


def later(rt, status: JobStatus, extra_s: float = 1.0):
    """A sweep's `now` at which a job written just now in `status` counts as stalled."""
    return utcnow() + timedelta(seconds=stall_after_s(rt.settings, status) + extra_s)


@pytest.mark.parametrize("arrange, status", [
    (accepted_job, JobStatus.ACCEPTED),
    (running_job, JobStatus.RUNNING),
    (lambda rt, **f: downloading_job(rt, mp4(5000), **f), JobStatus.DOWNLOADING),
])
def test_a_job_past_its_deadline_is_failed_whatever_its_state(rt, store, tasks, arrange, status):
    job_id = arrange(rt, webhook_url=WEBHOOK_URL)
    untouched = accepted_job(rt)
    store.edit(job_id, deadline_at=past())
    tasks.pending.clear()

    report = sweep(rt)

    job = store.job(job_id)
    assert job["status"] == JobStatus.FAILED and job["error"]["code"] == ErrorCode.DEADLINE_EXCEEDED
    assert job["error"]["message"] == DEADLINE_MESSAGES[status]
    assert report.to_dict()["deadline_exceeded"] == 1 and report.deadline_exceeded == [job_id] and report.restarted == []
    # A job that ended while downloading also gets its discard task (what an attempt stored goes).
    discard = [f"{job_id}-discard"] if status == JobStatus.DOWNLOADING else []
    assert tasks.pending_names() == [*discard, f"{job_id}-wh-job_failed-1"]
    assert store.job(untouched)["status"] == JobStatus.ACCEPTED


def test_a_throttled_job_past_its_deadline_says_what_the_provider_last_answered(rt, provider, store):
    job_id = accepted_job(rt)
    provider.submits.set(throttled(60))
    run_named(rt, f"{job_id}-submit")
    store.edit(job_id, deadline_at=past())

    sweep(rt)

    assert "the provider's last answer: fake is throttling (429)" in store.job(job_id)["error"]["message"]


def test_ended_jobs_are_left_alone(rt, store, tasks):
    job_id = accepted_job(rt)
    store.edit(job_id, status="cancelled", deadline_at=past())
    writes = len(store.writes)
    report = sweep(rt, now=later(rt, JobStatus.DOWNLOADING))
    assert report.to_dict()["deadline_exceeded"] == report.to_dict()["restarted"] == 0 and len(store.writes) == writes


def test_a_stalled_running_job_gets_a_new_chain_of_checks_and_the_old_one_ends(rt, provider, store, tasks):
    job_id = running_job(rt)
    tasks.pending.clear()  # its poll chain is lost

    assert sweep(rt, now=utcnow() + timedelta(seconds=5)).restarted == []  # not stalled yet
    report = sweep(rt, now=later(rt, JobStatus.RUNNING))

    assert report.restarted == [job_id] and store.job(job_id)["sweep_gen"] == 1
    (restart,) = tasks.pending
    assert (restart.name, restart.payload) == (f"{job_id}-g1-poll-1", {"job_id": job_id, "poll": 1, "gen": 1})
    poll_job(rt, job_id, PollCall(5, 40.0, 0))  # the old chain was only slow: it ends here
    assert provider.calls == []
    provider.checks.set(running(30))
    run_named(rt, restart.name)
    assert provider.count("check") == 1 and tasks.pending_names() == [f"{job_id}-g1-poll-2"]


def test_a_stalled_accepted_job_is_submitted_again_under_a_new_name_and_paid_once(rt, provider, store, tasks):
    job_id = accepted_job(rt)
    tasks.pending.clear()

    sweep(rt, now=later(rt, JobStatus.ACCEPTED))

    assert tasks.pending_names() == [f"{job_id}-g1-submit"]
    run_named(rt, f"{job_id}-g1-submit")
    assert store.job(job_id)["status"] == JobStatus.RUNNING and provider.count("submit") == 1
    assert tasks.pending_names() == [f"{job_id}-g1-poll-1"]


def test_a_stalled_streaming_job_is_handed_to_a_new_stream_task(rt, store, tasks):
    job_id = streaming_job(rt)
    tasks.pending.clear()
    sweep(rt, now=later(rt, JobStatus.ACCEPTED))
    run_named(rt, f"{job_id}-g1-submit")
    assert tasks.pending_names() == [f"{job_id}-stream-g1"]


def test_a_downloading_job_is_given_three_times_longer_then_finalized_again(rt, store, tasks, bucket):
    job_id = downloading_job(rt, mp4(5000), deadline_seconds=3 * 3600)  # not past it when stalled
    tasks.pending.clear()

    assert sweep(rt, now=later(rt, JobStatus.RUNNING)).restarted == []
    sweep(rt, now=later(rt, JobStatus.DOWNLOADING))

    assert tasks.pending_names() == [f"{job_id}-g1-finalize"]
    run_named(rt, f"{job_id}-g1-finalize")
    assert store.job(job_id)["status"] == JobStatus.SUCCEEDED


def test_a_job_restarted_twice_gets_a_second_generation_of_names(rt, store, tasks):
    job_id = running_job(rt)
    tasks.pending.clear()
    sweep(rt, now=later(rt, JobStatus.RUNNING))
    tasks.pending.clear()  # lost again
    sweep(rt, now=later(rt, JobStatus.RUNNING, extra_s=5))
    assert store.job(job_id)["sweep_gen"] == 2 and tasks.pending_names() == [f"{job_id}-g2-poll-1"]


def test_a_job_past_its_deadline_is_failed_not_restarted(rt, store, tasks):
    job_id = running_job(rt)
    tasks.pending.clear()
    store.edit(job_id, deadline_at=past())
    report = sweep(rt, now=later(rt, JobStatus.RUNNING))
    assert report.deadline_exceeded == [job_id] and report.restarted == [] and "sweep_gen" not in store.job(job_id)


def test_one_jobs_trouble_does_not_stop_the_sweep(rt, store, tasks):
    first, second = running_job(rt), running_job(rt)
    tasks.pending.clear()
    tasks.faults.add("enqueue", TransientError("internal", "could not enqueue poll_job"), name=f"{first}-g1-poll-1")

    report = sweep(rt, now=later(rt, JobStatus.RUNNING))

    assert report.errors == 1 and report.restarted == [second] and tasks.pending_names() == [f"{second}-g1-poll-1"]


def test_more_jobs_than_one_batch_are_all_handled(rt, store, tasks):
    ids = [accepted_job(rt) for _ in range(BATCH + 3)]
    for job_id in ids:
        store.edit(job_id, deadline_at=past())
    report = sweep(rt)
    assert sorted(report.deadline_exceeded) == sorted(ids) and report.complete


# ------------------------------------------------------------------ terminal events never queued


def notify_time():
    """A sweep's `now` at which a job that ended just now has its terminal event looked after."""
    return utcnow() + NOTIFY_AFTER + timedelta(seconds=1)


def test_a_job_that_failed_while_cloud_tasks_was_down_gets_its_webhook_from_the_sweep(rt, provider, store, tasks, receiver):
    job_id = running_job(rt, webhook_url=WEBHOOK_URL)
    tasks.pending.clear()
    provider.checks.set(failed())
    tasks.faults.add("enqueue", TransientError(ErrorCode.UNAVAILABLE, "could not enqueue deliver_webhook"),
                     name=f"{job_id}-wh-job_failed-1", times=1)
    with pytest.raises(TransientError):
        poll_job(rt, job_id, PollCall(1, None, 0))
    poll_job(rt, job_id, PollCall(1, None, 1))  # the queue's retry finds the job failed: nothing more to do
    assert store.job(job_id)["status"] == JobStatus.FAILED and tasks.pending_names() == []

    assert sweep(rt).notified == []  # not due yet: the step that ended the job may still queue it
    report = sweep(rt, now=notify_time())

    assert report.notified == [job_id] and report.to_dict()["notified"] == 1
    assert tasks.pending_names() == [f"{job_id}-wh-job_failed-1"]
    run_named(rt, f"{job_id}-wh-job_failed-1")
    [sent] = receiver.sent
    assert json.loads(sent.body)["type"] == "job.failed" and store.job(job_id)["notify_due_at"] is None
    writes = len(store.writes)
    assert sweep(rt, now=notify_time()).notified == [] and len(store.writes) == writes


def test_delivered_events_leave_the_sweep_nothing_to_do_and_cost_no_write(rt, store, tasks, receiver):
    job_id = downloading_job(rt, mp4(5000), webhook_url=WEBHOOK_URL)
    run_named(rt, f"{job_id}-finalize")
    assert pending_events(store.job(job_id)) == ("job.running", "job.succeeded")  # job.running's task not run yet
    writes = len(store.writes)

    run_named(rt, f"{job_id}-wh-job_running-1")
    run_named(rt, f"{job_id}-wh-job_succeeded-1")

    assert len(store.writes) == writes + 2  # the attempts' records, which take their events off the watch
    assert store.job(job_id)["notify_due_at"] is None and len(receiver.sent) == 2
    assert sweep(rt, now=notify_time()).notified == [] and len(store.writes) == writes + 2


def test_a_queued_event_not_yet_run_is_not_queued_twice(rt, store, tasks):
    job_id = running_job(rt, webhook_url=WEBHOOK_URL)
    tasks.pending.clear()
    cancel_job(rt, job_id)

    report = sweep(rt, now=notify_time())

    assert report.notified == [] and tasks.pending_names() == [f"{job_id}-wh-job_cancelled-1"]
    assert store.job(job_id)["notify_due_at"] is None  # the event's own chain has it from here


@pytest.mark.parametrize(("webhook", "watched"), [
    ({}, ()),
    ({"webhook_url": WEBHOOK_URL, "webhook_events": ["job.running"]}, ("job.running",)),  # its task queued, not yet run
])
def test_a_job_whose_webhook_does_not_want_its_end_is_not_watched_for_it(rt, store, webhook, watched):
    job_id = running_job(rt, **webhook)
    cancel_job(rt, job_id)
    assert pending_events(store.job(job_id)) == watched


def test_a_job_that_started_running_while_cloud_tasks_was_down_gets_job_running_from_the_sweep(rt, store, tasks, receiver):
    job_id = accepted_job(rt, webhook_url=WEBHOOK_URL)
    tasks.faults.add("enqueue", TransientError(ErrorCode.UNAVAILABLE, "could not enqueue deliver_webhook"),
                     name=f"{job_id}-wh-job_running-1", times=1)
    with pytest.raises(TransientError):
        run_named(rt, f"{job_id}-submit")
    assert store.job(job_id)["status"] == JobStatus.RUNNING and f"{job_id}-wh-job_running-1" not in tasks.pending_names()

    assert sweep(rt).notified == []  # not due yet
    assert sweep(rt, now=notify_time()).notified == [job_id]

    run_named(rt, f"{job_id}-wh-job_running-1")
    [sent] = receiver.sent
    assert json.loads(sent.body)["type"] == "job.running" and pending_events(store.job(job_id)) == ()
    assert sweep(rt, now=notify_time()).notified == []


def fail_while_tasks_is_down(rt, provider, tasks, job_id: str) -> None:
    """The job's next check finds it failed, and job.failed cannot be queued."""
    provider.checks.set(failed())
    tasks.faults.add("enqueue", TransientError(ErrorCode.UNAVAILABLE, "could not enqueue deliver_webhook"),
                     name=f"{job_id}-wh-job_failed-1", times=1)
    with pytest.raises(TransientError):
        run_named(rt, f"{job_id}-poll-1")


def test_job_running_recorded_after_the_job_ended_leaves_the_watch_for_its_end(rt, provider, store, tasks, receiver):
    """A job that ended before its job.running was attempted is watched for both; job.running's
    first attempt takes only itself off, so an end that was not queued still comes from the sweep."""
    job_id = running_job(rt, webhook_url=WEBHOOK_URL)
    fail_while_tasks_is_down(rt, provider, tasks, job_id)
    assert pending_events(store.job(job_id)) == ("job.running", "job.failed")

    run_named(rt, f"{job_id}-wh-job_running-1")
    assert [json.loads(s.body)["type"] for s in receiver.sent] == ["job.running"]
    assert pending_events(store.job(job_id)) == ("job.failed",)

    assert sweep(rt, now=notify_time()).notified == [job_id]
    run_named(rt, f"{job_id}-wh-job_failed-1")
    assert [json.loads(s.body)["type"] for s in receiver.sent] == ["job.running", "job.failed"]
    assert pending_events(store.job(job_id)) == () and store.job(job_id)["notify_due_at"] is None


def test_a_job_running_never_queued_comes_from_the_sweep_after_the_job_ended(rt, provider, store, tasks, receiver):
    """Cloud Tasks down as the job started running; the job then ends (a minute or two, before
    the watch is due) and its end is delivered: job.running still comes, late."""
    job_id = accepted_job(rt, webhook_url=WEBHOOK_URL)
    tasks.faults.add("enqueue", TransientError(ErrorCode.UNAVAILABLE, "could not enqueue deliver_webhook"),
                     name=f"{job_id}-wh-job_running-1", times=1)
    with pytest.raises(TransientError):
        run_named(rt, f"{job_id}-submit")
    running_at = store.job(job_id)["notify_due_at"]
    cancel_job(rt, job_id)
    run_named(rt, f"{job_id}-wh-job_cancelled-1")
    job = store.job(job_id)
    assert pending_events(job) == ("job.running",) and job["notify_due_at"] == running_at  # due as job.running was

    assert sweep(rt, now=notify_time()).notified == [job_id]
    run_named(rt, f"{job_id}-wh-job_running-1")
    assert [json.loads(s.body)["type"] for s in receiver.sent] == ["job.cancelled", "job.running"]
    assert pending_events(store.job(job_id)) == () and sweep(rt, now=notify_time()).notified == []


def test_a_watch_written_before_it_named_its_event_is_for_the_job_end(rt, provider, store, tasks, receiver):
    """Jobs that ended under the release before this one carry notify_due_at alone."""
    job_id = running_job(rt, webhook_url=WEBHOOK_URL, webhook_events=["job.failed"])
    fail_while_tasks_is_down(rt, provider, tasks, job_id)
    store.edit(job_id, notify_events=None)

    assert sweep(rt, now=notify_time()).notified == [job_id]
    run_named(rt, f"{job_id}-wh-job_failed-1")
    assert [json.loads(s.body)["type"] for s in receiver.sent] == ["job.failed"]
    assert store.job(job_id)["notify_due_at"] is None
