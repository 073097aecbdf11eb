"""The polling part's yardsticks: a replayed job is checked as poll_job checks it, and the
known-spread optimum replayed on a large draw scores what its exact expectation says."""
from __future__ import annotations

from bench import polling_sim
from veorelay.config import PollSettings


def test_replay_checks_along_the_plan_until_a_check_sees_the_job_done():
    poll = PollSettings(initial_delay_s=60.0, min_delay_s=2.0, max_delay_s=30.0)
    assert polling_sim.replay(poll, (10.0, 20.0, 30.0), 25.0) == (3, 20.0, 30.0)
    # Past the plan's last time, checks come every max_delay_s.
    assert polling_sim.replay(poll, (10.0,), 45.0) == (3, 40.0, 70.0)


def test_the_known_optimum_on_a_large_draw_scores_its_expectation():
    poll = PollSettings()
    checks, delay = polling_sim.optimum_on_draw(poll, "a", 20_000, seed=1)
    assert abs(delay - polling_sim.frontier(poll)) < 0.01
    assert abs(checks - 1.0) < 0.02  # the plan spends the seed's expected checks in full


def test_a_larger_budget_buys_the_known_optimum_less_delay_on_the_same_draw():
    poll = PollSettings()
    base, more = (polling_sim.optimum_on_draw(poll, "a", 2000, seed=7, budget_scale=k) for k in (1.0, 1.03))
    assert more[0] > base[0] and more[1] < base[1]
