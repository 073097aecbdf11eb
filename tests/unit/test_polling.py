"""The adaptive poll schedule (pure math) and its learning store (with a fake Firestore)."""
import itertools
import math
import random

import pytest

from veorelay.config import PollSettings, Settings
from veorelay.core import poll_plan as ps
from veorelay.gcp.poll_stats import SHARDS, DurationStats, bin_field, doc_id, shard_of

from .fake_stats_db import FakeDb


def lognormal(median, sigma, weight=1000.0):
    return ps.Durations.from_prior(ps.Prior(median, sigma, weight))


def replay(times, duration, max_gap=30.0):
    """(checks, delay) of one job of this duration under a plan (then max_gap checks)."""
    for n, t in enumerate(times, 1):
        if t >= duration:
            return n, t - duration
    n, t = len(times), times[-1]
    while t < duration:
        n, t = n + 1, t + max_gap
    return n, t - duration


def reference(duration):
    t, n, gap = 0.0, 1, 10.0
    while t < duration:
        t, n, gap = t + gap, n + 1, min(30.0, gap * 1.2)
    return n, t - duration


def test_prior_is_the_documented_lognormal():
    d = ps.Durations.from_prior(ps.prior_for("veo-3.0-generate-preview"))
    assert d.jobs == pytest.approx(ps.DEFAULT_PRIOR.weight)
    assert d.quantile(0.5) == pytest.approx(60, rel=0.03)
    assert d.quantile(0.95) == pytest.approx(60 * math.exp(1.645 * 0.6), rel=0.05)
    assert ps.prior_for("veo-3.0-fast-generate-001").median_s < ps.DEFAULT_PRIOR.median_s
    assert ps.prior_for("veo-3.0-generate-001", median_s=5, sigma=0.2) == ps.Prior(5, 0.2, ps.DEFAULT_PRIOR.weight)


def test_plan_crowds_checks_where_jobs_end_and_respects_its_bounds():
    d = lognormal(75, 0.3)
    plan = ps.plan(d, delay_cost_checks=1.3, max_checks=10, min_gap_s=2, max_gap_s=30, first_max_s=60, horizon_s=1800)
    times = plan.times
    assert 30 < times[0] <= 60  # nothing spent while (almost) no job can be done
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(2 - 1e-6 <= g <= 30 + 1e-6 for g in gaps)
    near_median = [g for a, g in zip(times, gaps) if 60 <= a <= 90]
    assert len(near_median) >= 3 and max(near_median) < times[0] / 3
    wider = ps.plan(lognormal(75, 0.6), 1.3, 10, 2, 30, 60, 1800)
    assert wider.expected_checks > plan.expected_checks and wider.expected_delay_s > plan.expected_delay_s
    checks, delay = ps.evaluate(d, times)
    assert (checks, delay) == pytest.approx((plan.expected_checks, plan.expected_delay_s), rel=1e-4)


def test_plan_beats_the_reference_schedule_on_a_known_spread():
    rng = random.Random(3)
    durations = [rng.lognormvariate(math.log(75), 0.3) for _ in range(3000)]
    plan = ps.plan(lognormal(75, 0.3), 1.3, 10, 2, 30, 60, 1800)
    ours = [replay(plan.times, x) for x in durations]
    ref = [reference(x) for x in durations]
    mean = lambda rows, k: sum(r[k] for r in rows) / len(rows)  # noqa: E731
    assert mean(ours, 0) <= mean(ref, 0)
    assert mean(ours, 1) <= mean(ref, 1) / 3
    # The exact expectation agrees with replaying jobs.
    assert plan.expected_checks == pytest.approx(mean(ours, 0), rel=0.05)
    assert plan.expected_delay_s == pytest.approx(mean(ours, 1), rel=0.1)


def test_max_checks_caps_a_very_wide_spread():
    wide = lognormal(300, 1.5)
    uncapped = ps.plan(wide, 5.0, 1000, 1, 600, 600, 20000)
    capped = ps.plan(wide, 5.0, 8, 1, 600, 600, 20000)
    assert uncapped.expected_checks > 8
    assert capped.expected_checks == pytest.approx(8, rel=0.1)


def test_observation_spreads_one_job_over_its_interval_like_the_belief():
    d = lognormal(75, 0.3)
    w = d.observation(60, 80)
    assert sum(w.values()) == pytest.approx(1)
    assert min(w) == ps.bin_of(60) and max(w) == ps.bin_of(80)
    assert w[ps.bin_of(78)] > w[ps.bin_of(61)]  # more likely near the median
    assert d.observation(0, 0.1) == {0: pytest.approx(1)}
    assert sum(d.observation(10_000, 90_000).values()) == pytest.approx(1)


def test_learning_moves_the_schedule_to_the_new_spread():
    prior = ps.Durations.from_prior(ps.prior_for("veo-3.0-generate-preview"))
    learned: dict[int, float] = {}
    for _ in range(200):
        for i, w in prior.observation(118, 122).items():
            learned[i] = learned.get(i, 0.0) + w
    d = prior.plus(learned)
    assert 115 < d.quantile(0.5) < 125
    before, after = (ps.plan(x, 1.3, 10, 2, 30, 300, 1800) for x in (prior, d))
    assert any(118 < t <= 124 for t in after.times)
    assert after.expected_delay_s < before.expected_delay_s / 2


def test_next_delay_follows_the_plan_within_its_gaps():
    times = (40.0, 50.0, 52.0, 70.0)
    assert ps.next_delay(times, 0, 2, 30, first=True, first_max_s=60) == 40
    assert ps.next_delay(times, 0, 2, 30, first=True, first_max_s=0.5) == 0.5  # tests' tiny settings
    assert ps.next_delay(times, 40.3, 2, 30) == pytest.approx(9.7)
    assert ps.next_delay(times, 50.5, 2, 30) == pytest.approx(19.5)  # 52 is closer than min_gap
    assert ps.next_delay(times, 71, 2, 30) == 30  # past the plan
    assert ps.next_delay(times, 20, 2, 1) == 1  # max_gap always holds


def test_tiny_settings_poll_a_seconds_long_job_quickly():
    poll = Settings.from_env({"GOOGLE_CLOUD_PROJECT": "p", "VEO_BUCKET": "b", "VEO_POLL_INITIAL_DELAY_SECONDS": "0.5",
                              "VEO_POLL_MIN_DELAY_SECONDS": "0.5", "VEO_POLL_MAX_DELAY_SECONDS": "1"}).poll
    stats = DurationStats(None, poll, 1800)
    times = stats.plan("litellm-gemini", "veo-3.0-generate-preview").times
    assert times[0] <= 0.5 and all(b - a <= 1 + 1e-6 for a, b in itertools.pairwise(times))


def test_poll_settings_come_from_the_environment():
    s = Settings.from_env({"GOOGLE_CLOUD_PROJECT": "p", "VEO_BUCKET": "b", "VEO_POLL_DELAY_COST_CHECKS": "2",
                           "VEO_POLL_MAX_CHECKS": "7", "VEO_POLL_PRIOR_MEDIAN_SECONDS": "9", "VEO_POLL_STATS_TTL_SECONDS": "5"})
    assert (s.poll.delay_cost_checks, s.poll.max_checks, s.poll.prior_median_s, s.poll.stats_ttl_s) == (2, 7, 9, 5)
    assert s.poll.prior_sigma is None and s.poll == PollSettings(delay_cost_checks=2, max_checks=7, prior_median_s=9, stats_ttl_s=5)


def test_one_write_per_finished_job_and_reads_only_when_the_cache_expires():
    db, now = FakeDb(), [0.0]
    stats = DurationStats(db, PollSettings(stats_ttl_s=300), 1800, clock=lambda: now[0])
    stats.plan("p", "m")
    assert db.reads == 2 * SHARDS  # this week and last week, every shard
    for n in range(50):
        stats.record("p", "m", f"{n:032x}", 118, 122)
    assert len(db.writes) == 50 and db.reads == 2 * SHARDS
    path, data = db.writes[0]
    assert path.startswith("poll_stats/p|m|") and data["jobs"].value == 1
    assert set(data["bins"]) <= {bin_field(i) for i in range(ps.bin_of(118), ps.bin_of(122) + 1)}
    assert len({p for p, _ in db.writes}) > 1  # spread over shards
    now[0] = 301
    assert 110 < stats.current("p", "m")[0].quantile(0.5) < 125
    assert db.reads == 4 * SHARDS


def test_stats_documents_are_named_by_provider_model_week_and_shard():
    assert doc_id("litellm-gemini", "veo-3.0-generate-preview", "2026w47", 3) == "litellm-gemini|veo-3.0-generate-preview|2026w47|3"
    assert {shard_of(f"{n:032x}") for n in range(200)} == set(range(SHARDS))


def test_unreadable_statistics_fall_back_to_the_prior():
    class Broken(FakeDb):
        def get_all(self, refs, **_):
            raise RuntimeError("firestore down")

    stats = DurationStats(Broken(), PollSettings(), 1800)
    assert stats.plan("p", "veo-3.0-generate-preview").times == DurationStats(None, PollSettings(), 1800).plan("p", "veo-3.0-generate-preview").times
