"""Provider completion events (steps/events_in.py) and the check they queue (steps/poll.py
pushed_check): an event becomes one named task, duplicates collapse, an event for nothing we
know is a no-op, the result is always the provider's answer, never the event's."""
from __future__ import annotations

import pytest
from google.api_core import exceptions as gexc

from veorelay.core.job import JobStatus
from veorelay.core.push_events import ProviderEvent
from veorelay.steps import events_in
from veorelay.steps.chain import PUSH_WINDOW_S

from .driver import run_named
from .fake_providers import FakeProvider, running, succeeded
from .fakes import make_runtime
from .helpers import accepted_job

NOW = 1_800_000_000.0  # a unix time at the start of a window


@pytest.fixture
def gemini() -> FakeProvider:
    p = FakeProvider("gemini")
    p.submits.set(lambda job_id, req: {"operation": f"models/veo/operations/{job_id}", "model": "veo", "push": "request"})
    return p


@pytest.fixture
def vertex() -> FakeProvider:
    p = FakeProvider("vertex")
    p.submits.set(lambda job_id, req: {"operation": f"projects/p/locations/l/publishers/google/models/veo/operations/{job_id}",
                                       "model": "veo", "push": "pubsub"})
    return p


@pytest.fixture
def rt(gemini, vertex):
    return make_runtime(providers=[gemini, vertex])


def running_on(rt, provider: str) -> str:
    job_id = accepted_job(rt, provider=provider)
    run_named(rt, f"{job_id}-submit")
    rt.providers[provider].calls.clear()
    return job_id


def event(job_id: str | None = None, operation: str | None = None, source: str = "gemini-request", completion: bool = True):
    return ProviderEvent(source=source, event_id="msg_1", completion=completion, job_id=job_id, operation=operation)


def push_tasks(rt) -> list:
    return [t for t in rt.scheduler.pending if "-push-" in t.name]


def test_an_event_queues_one_named_check_and_writes_nothing(rt, gemini):
    job_id = running_on(rt, "gemini")
    writes = len(rt.store.writes)

    assert events_in.receive(rt, event(job_id), now=NOW) == events_in.QUEUED

    (task,) = push_tasks(rt)
    assert task.name == f"{job_id}-push-{int(NOW // PUSH_WINDOW_S)}" and task.target == "poll_job" and task.delay_s == 0
    assert len(rt.store.writes) == writes and gemini.count("check") == 0  # the check is the task's


def test_duplicates_collapse_into_the_one_task(rt):
    job_id = running_on(rt, "gemini")
    outcomes = [events_in.receive(rt, event(job_id), now=NOW + dt) for dt in (0, 1, 2)]
    static = events_in.receive(rt, event(operation=f"models/veo/operations/{job_id}", source="gemini-static"), now=NOW + 3)

    assert outcomes == [events_in.QUEUED, events_in.DUPLICATE, events_in.DUPLICATE] and static == events_in.DUPLICATE
    assert len(push_tasks(rt)) == 1


def test_an_event_found_by_its_operation_reaches_its_job(rt):
    job_id = running_on(rt, "vertex")
    operation = rt.store.job(job_id)["handle"]["operation"]

    assert events_in.receive(rt, event(operation=operation, source="vertex-pubsub"), now=NOW) == events_in.QUEUED
    assert [t.job_id for t in push_tasks(rt)] == [job_id]


@pytest.mark.parametrize("make", [
    lambda job_id: event("0" * 32),  # no such job
    lambda job_id: event(operation="models/veo/operations/nobody", source="gemini-static"),
    lambda job_id: event(job_id, source="vertex-pubsub"),  # a Pub/Sub message cannot name a Gemini job
    lambda job_id: event(job_id, operation="models/veo/operations/someone-else"),
])
def test_an_event_for_no_job_of_ours_is_a_no_op(rt, make):
    job_id = running_on(rt, "gemini")
    assert events_in.receive(rt, make(job_id), now=NOW) == events_in.UNKNOWN
    assert push_tasks(rt) == []


def test_an_event_that_reports_no_end_is_ignored(rt):
    job_id = running_on(rt, "vertex")
    assert events_in.receive(rt, event(job_id, source="vertex-pubsub", completion=False), now=NOW) == events_in.IGNORED
    assert push_tasks(rt) == []


def test_the_check_moves_the_job_on_only_when_the_provider_says_it_is_done(rt, gemini):
    job_id = running_on(rt, "gemini")
    events_in.receive(rt, event(job_id), now=NOW)
    gemini.checks.set(running(50))
    before = {t.name for t in rt.scheduler.pending}

    run_named(rt, f"{job_id}-push-{int(NOW // PUSH_WINDOW_S)}")  # a forged or early event

    assert rt.store.job(job_id)["status"] == JobStatus.RUNNING and gemini.count("check") == 1
    assert {t.name for t in rt.scheduler.pending} == before - {f"{job_id}-push-{int(NOW // PUSH_WINDOW_S)}"}  # nothing new

    events_in.receive(rt, event(job_id), now=NOW + PUSH_WINDOW_S)  # the real one, a window later
    gemini.checks.set(succeeded("https://videos.fake/x.mp4"))
    run_named(rt, f"{job_id}-push-{int(NOW // PUSH_WINDOW_S) + 1}")

    job = rt.store.job(job_id)
    assert job["status"] == JobStatus.DOWNLOADING and f"{job_id}-finalize" in rt.scheduler.pending_names()
    assert rt.durations.pushed == [(job_id, True)]  # the event came first: learned as such


def test_a_late_event_for_a_job_found_done_by_its_chain_checks_nothing_and_is_counted_once(rt, gemini):
    job_id = running_on(rt, "gemini")
    gemini.checks.set(succeeded("https://videos.fake/x.mp4"))
    run_named(rt, f"{job_id}-poll-1")
    assert rt.durations.pushed == [(job_id, False)]  # the poll found it first
    assert rt.store.job(job_id)["detected_by"] == "check"
    checks = gemini.count("check")

    writes = len(rt.store.writes)
    outcomes = [events_in.receive(rt, event(job_id), now=NOW + dt) for dt in (0, 1)]  # the event, then a duplicate

    # The function that took the event writes nothing: it queues the one named check task, whose
    # step (poll_job) finds the job moved on, asks the provider nothing and counts the event.
    assert outcomes == [events_in.LATE, events_in.LATE] and len(rt.store.writes) == writes
    (task,) = push_tasks(rt)
    run_named(rt, task.name)
    assert gemini.count("check") == checks and rt.durations.after_check == [job_id]  # the event did come: learned once
    assert rt.store.job(job_id)["event_after_check_at"] is not None

    assert events_in.receive(rt, event(job_id), now=NOW + PUSH_WINDOW_S) == events_in.LATE  # a replay, a window later
    assert push_tasks(rt) == []  # counted already: nothing queued


def test_a_duplicate_of_the_event_that_found_its_job_done_is_not_counted_again(rt, gemini):
    job_id = running_on(rt, "gemini")
    events_in.receive(rt, event(job_id), now=NOW)
    gemini.checks.set(succeeded("https://videos.fake/x.mp4"))
    run_named(rt, f"{job_id}-push-{int(NOW // PUSH_WINDOW_S)}")
    assert rt.store.job(job_id)["detected_by"] == "event"

    assert events_in.receive(rt, event(job_id), now=NOW + PUSH_WINDOW_S) == events_in.LATE
    assert push_tasks(rt) == []  # the event found the job: nothing to count
    assert rt.durations.pushed == [(job_id, True)] and rt.durations.after_check == []
    assert "event_after_check_at" not in rt.store.job(job_id)


def test_a_job_that_never_asked_for_push_takes_no_event(rt, gemini):
    gemini.submits.set(lambda job_id, req: {"operation": f"models/veo/operations/{job_id}", "model": "veo"})
    job_id = running_on(rt, "gemini")
    assert events_in.receive(rt, event(job_id), now=NOW) == events_in.UNKNOWN


def test_a_pushing_job_waits_for_its_backstops_first_check_a_polled_one_does_not(rt, gemini):
    """While events arrive the backstop's first check is where its plan puts it (the tail of the
    spread), past the poll-only bound on the first check (VEO_POLL_INITIAL_DELAY_SECONDS)."""
    from veorelay.core.poll_plan import Plan

    from .fakes import RecordingDurations

    class Sparse(RecordingDurations):
        def plan(self, provider, model, push=False):
            return Plan((150.0, 180.0), 0.1, 1.0) if push else Plan((20.0, 40.0), 3.0, 2.0)

    rt.durations = Sparse(rt.settings)
    pushing = running_on(rt, "gemini")
    gemini.submits.set(lambda job_id, req: {"operation": f"models/veo/operations/{job_id}", "model": "veo"})
    polled = running_on(rt, "gemini")

    first = {t.job_id: t.delay_s for t in rt.scheduler.pending if t.name.endswith("-poll-1")}
    assert first[pushing] == pytest.approx(150.0, abs=1.0) and first[pushing] > rt.settings.poll.initial_delay_s
    assert first[polled] == pytest.approx(20.0, abs=1.0)


def test_a_late_event_the_store_cannot_mark_is_a_lost_count_not_a_failed_check(rt, gemini):
    job_id = running_on(rt, "gemini")
    gemini.checks.set(succeeded("https://videos.fake/x.mp4"))
    run_named(rt, f"{job_id}-poll-1")
    rt.store.faults.add("update", gexc.ServiceUnavailable("firestore down"), times=1)

    assert events_in.receive(rt, event(job_id), now=NOW) == events_in.LATE
    run_named(rt, f"{job_id}-push-{int(NOW // PUSH_WINDOW_S)}")  # no retry: a lost count, not a failed task
    assert rt.durations.after_check == [] and "event_after_check_at" not in rt.store.job(job_id)


def test_an_event_whose_check_finds_its_job_moved_on_by_a_poll_is_counted_once(rt, gemini):
    """The race dense checks win: the event came while a poll was finding the job done."""
    job_id = running_on(rt, "gemini")
    assert events_in.receive(rt, event(job_id), now=NOW) == events_in.QUEUED
    gemini.checks.set(succeeded("https://videos.fake/x.mp4"))
    run_named(rt, f"{job_id}-poll-1")  # the poll got there first
    checks = gemini.count("check")

    run_named(rt, f"{job_id}-push-{int(NOW // PUSH_WINDOW_S)}")
    events_in.receive(rt, event(job_id), now=NOW + PUSH_WINDOW_S)  # and a redelivery

    assert gemini.count("check") == checks and rt.durations.after_check == [job_id]
    assert rt.durations.pushed == [(job_id, False)]


def test_an_event_check_that_loses_the_race_to_a_poll_counts_the_event_once(rt, gemini):
    """The event's check asks the provider while a poll of the chain moves the job on."""
    job_id = running_on(rt, "gemini")
    events_in.receive(rt, event(job_id), now=NOW)
    done = succeeded("https://videos.fake/x.mp4")
    polled: list[bool] = []

    def poll_gets_there_first(handle):
        if not polled:
            polled.append(True)
            run_named(rt, f"{job_id}-poll-1")
        return done

    gemini.checks.set(poll_gets_there_first)
    run_named(rt, f"{job_id}-push-{int(NOW // PUSH_WINDOW_S)}")

    job = rt.store.job(job_id)
    assert job["status"] == JobStatus.DOWNLOADING and job["detected_by"] == "check"
    assert rt.durations.pushed == [(job_id, False)] and rt.durations.after_check == [job_id]
    assert rt.scheduler.pending_names().count(f"{job_id}-finalize") == 1
