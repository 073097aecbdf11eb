"""The backstop under completion events (core/poll_plan.py push_plan, gcp/poll_stats.py): sparse
checks at the tail of the spread while a provider+model's events arrive, dense again when they
stop, and a job whose event never comes still found."""
from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from veorelay.config import PollSettings
from veorelay.core import poll_plan as ps
from veorelay.gcp.poll_stats import DurationStats, shard_of

from .fake_stats_db import FakeDb

SPREAD = ps.Durations.from_prior(ps.Prior(75.0, 0.3, weight=1000.0))  # about Veo 3's
ARGS = (1.3, 10.0, 2.0, 30.0, 60.0, 1800.0)  # delay cost, max checks, min/max gap, first max, horizon


def plan(r: float) -> ps.Plan:
    return ps.push_plan(SPREAD, r, *ARGS)


def test_with_no_evidence_of_events_the_backstop_is_the_dense_plan():
    assert plan(0.0).times == ps.plan(SPREAD, *ARGS).times


def test_while_events_arrive_checks_wait_for_the_tail_of_the_spread():
    dense, sparse = plan(0.0), plan(ps.R_MAX)
    assert dense.times[0] < SPREAD.quantile(0.5)  # the body: where jobs usually end
    assert sparse.times[0] >= SPREAD.quantile(ps.TAIL_Q) - 0.5  # the tail: where a job whose event was lost is overdue
    assert sparse.expected_checks < 0.5 < dense.expected_checks


@pytest.mark.parametrize("r", [0.6, 0.7, 0.8, ps.R_MAX])
def test_the_sparser_the_checks_the_more_reliable_the_events(r):
    lower = plan(r - 0.1)
    assert plan(r).expected_checks <= lower.expected_checks + 1e-9


def test_a_job_whose_event_never_comes_is_still_found():
    """The plan, then max_gap checks to the deadline (next_delay): every duration gets a check."""
    times = plan(ps.R_MAX).times
    rng = random.Random(3)
    for _ in range(200):
        duration = rng.lognormvariate(4.3, 0.5)
        t, elapsed = 0.0, ps.next_delay(times, 0.0, 2.0, 30.0, first=True, first_max_s=1800.0)
        while elapsed < duration:
            t = elapsed
            elapsed = t + ps.next_delay(times, t, 2.0, 30.0)
        assert elapsed - duration <= max(30.0, times[0])  # seen within a gap of its end


def test_reliability_is_the_recent_share_of_jobs_whose_event_came():
    hour = 500_000
    assert ps.push_reliability({}, hour) == 0.0  # no evidence: dense
    assert ps.push_reliability({hour: (100, 100, 0)}, hour) == ps.R_MAX  # capped: the backstop never stops
    assert ps.push_reliability({hour: (100, 70, 0)}, hour) == pytest.approx(70 / 102)
    # An event that came after a check had found its job done came all the same.
    assert ps.push_reliability({hour: (100, 40, 30)}, hour) == pytest.approx(70 / 102)
    assert ps.push_reliability({hour: (10, 0, 50)}, hour) == pytest.approx(10 / 12)  # never more than the jobs
    # Events stopped an hour ago: the old good hours weigh less than the recent bad one.
    recent_bad = ps.push_reliability({hour - 6: (100, 100, 0), hour: (30, 0, 0)}, hour)
    assert recent_bad < ps.R_DENSE


def test_the_store_learns_how_reliably_events_come_and_the_plan_follows():
    db, now = FakeDb(), [0.0]
    stats = DurationStats(db, PollSettings(stats_ttl_s=60), 1800, clock=lambda: now[0])
    dense = stats.plan("gemini", "veo-3.0-generate-001", push=True)
    for n in range(60):  # events came first for all of them
        stats.record("gemini", "veo-3.0-generate-001", f"{n:032x}", 70, 72, pushed=True)
    stats.record("litellm-gemini", "veo-3.0-generate-001", "f" * 32, 70, 72)  # no push asked: not counted
    now[0] = 61  # the cache expires
    sparse = stats.plan("gemini", "veo-3.0-generate-001", push=True)
    assert stats.reliability("gemini", "veo-3.0-generate-001") == ps.R_MAX  # 60/62, capped
    assert sparse.times[0] > dense.times[0] and sparse.expected_checks < dense.expected_checks
    assert stats.plan("gemini", "veo-3.0-generate-001") == stats.current("gemini", "veo-3.0-generate-001")[1]  # poll-only jobs: unchanged

    for n in range(200):  # then the events stop coming
        stats.record("gemini", "veo-3.0-generate-001", f"{n + 100:032x}", 70, 72, pushed=False)
    now[0] = 122
    assert stats.plan("gemini", "veo-3.0-generate-001", push=True).times[0] < sparse.times[0]  # dense again


@pytest.mark.parametrize("r", [0.0, 0.3, 0.6, ps.R_MAX])
def test_the_backstop_never_spends_more_than_the_reference_cadence(r):
    """The check budget (core/poll_plan.py) holds under events too, at the production exchange rate."""
    backstop = ps.push_plan(SPREAD, r, PollSettings().delay_cost_checks, *ARGS[1:])
    assert backstop.expected_checks <= ps.reference_cadence(30.0).expected_checks(SPREAD.smoothed(), 1800)


def test_events_that_lose_the_race_to_dense_checks_still_make_the_checks_sparse():
    """Dense checks find many jobs done before their event's own check runs; if only events that
    came first counted, the checks would stay dense because they are dense."""
    db, now, detected_at = FakeDb(), [0.0], datetime(2026, 12, 3, 8, 30, tzinfo=UTC)
    stats = DurationStats(db, PollSettings(stats_ttl_s=60), 1800, clock=lambda: now[0], now=lambda: detected_at)
    model = "veo-3.0-generate-001"
    dense = stats.plan("gemini", model, push=True)
    for n in range(60):
        job_id = f"{n:032x}"
        stats.record("gemini", model, job_id, 70, 72, pushed=n % 2 == 0)  # half found by a check first
        if n % 2:
            stats.event_came_after_check("gemini", model, job_id, detected_at)  # ... whose event came then
    now[0] = 61
    sparse = stats.plan("gemini", model, push=True)  # the counts read again
    assert stats.reliability("gemini", model) == ps.R_MAX  # 60 of 60 came (capped)
    assert sparse.expected_checks < dense.expected_checks and sparse.times[0] > dense.times[0]

    untold_db = FakeDb()  # the same jobs, the late events not counted
    writer = DurationStats(untold_db, PollSettings(), 1800, now=lambda: detected_at)
    for n in range(60):
        writer.record("gemini", model, f"{n:032x}", 70, 72, pushed=n % 2 == 0)
    reader = DurationStats(untold_db, PollSettings(), 1800, now=lambda: detected_at)
    reader.current("gemini", model)
    assert reader.reliability("gemini", model) == pytest.approx(30 / 62)  # below R_DENSE: dense


def test_a_late_event_is_counted_in_its_jobs_document_and_hour():
    db = FakeDb()
    stats = DurationStats(db, PollSettings(), 1800, now=lambda: datetime(2026, 12, 3, 9, 5, tzinfo=UTC))
    detected_at = datetime(2026, 12, 3, 8, 59, tzinfo=UTC)
    stats.event_came_after_check("gemini", "veo-3.0-generate-001", "a" * 32, detected_at)
    ((path, data),) = db.writes
    assert path == f"poll_stats/gemini|veo-3.0-generate-001|2026w49|{shard_of('a' * 32)}"
    assert list(data["push"]) == [f"h{int(detected_at.timestamp() // 3600)}"] and "jobs" not in data["push"][f"h{int(detected_at.timestamp() // 3600)}"]
