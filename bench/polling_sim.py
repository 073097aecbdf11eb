"""Part 2: polling on a simulated clock, veo-relay's schedule vs the seed-000 reference.

No stack, no sleeping: generation times are drawn from a spread, each schedule's checks are
replayed against them, and the learning loop runs as in production (a finished job is
recorded as "ended between its last two checks"; the schedule sees new data only when its
cache refreshes, every `refresh_every` jobs).
"""
from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

from veorelay.config import PollSettings
from veorelay.core import poll_plan as ps

from .results import Figure

SEED_CADENCE = ps.Cadence()  # seed 000's loop: check at once, then 10 s growing x1.2 up to 30 s


def reference_checks(duration_s: float) -> tuple[int, float]:
    """Seed 000's checks on a job that takes duration_s, and how long after its end it saw it."""
    times = SEED_CADENCE.times(duration_s)
    return len(times), times[-1] - duration_s


def replay(p: PollSettings, times: tuple[float, ...], duration_s: float) -> tuple[int, float, float]:
    """A job that takes duration_s checked as poll_job checks it along `times`: (checks, the
    last check before its end, the check that saw it done)."""
    t = ps.next_delay(times, 0.0, p.min_delay_s, p.max_delay_s, first=True, first_max_s=p.initial_delay_s)
    prev, checks = 0.0, 1
    while t < duration_s:
        prev = t
        t += ps.next_delay(times, t, p.min_delay_s, p.max_delay_s)
        checks += 1
    return checks, prev, t


def sim_job_id(i: int) -> str:
    """The i-th simulated job's id: which share of a mixed plan it follows (Plan.times_for)."""
    return f"sim-{i:05d}"


@dataclass
class Learner:
    """veo-relay's schedule with its learning loop, as poll_job + poll_stats run it (the check
    budget included: ps.plan's default reference cadence, as in production)."""

    poll: PollSettings
    model: str = "veo-3.0-generate-preview"
    refresh_every: int = 20
    horizon_s: float = 1800.0

    def __post_init__(self):
        self.prior = ps.Durations.from_prior(ps.prior_for(self.model, self.poll.prior_median_s, self.poll.prior_sigma))
        self.learned: dict[int, float] = {}
        self.seen = 0
        self._refresh()

    def _refresh(self) -> None:
        self.durations = self.prior.plus(self.learned)
        p = self.poll
        self.plan = ps.plan(self.durations, p.delay_cost_checks, p.max_checks, p.min_delay_s, p.max_delay_s,
                            p.initial_delay_s, self.horizon_s)

    def next_times(self) -> tuple[float, ...]:
        """The next job's check times: its own share of a mixed plan, as poll_job picks it."""
        return self.plan.times_for(sim_job_id(self.seen))

    def run(self, duration_s: float) -> tuple[int, float]:
        checks, prev, t = replay(self.poll, self.next_times(), duration_s)
        for i, w in self.durations.observation(prev, t).items():
            self.learned[i] = self.learned.get(i, 0.0) + w
        self.seen += 1
        if self.seen % self.refresh_every == 0:
            self._refresh()
        return checks, t - duration_s


FIGURE_SEED = 7  # the draw of generation times the figures are measured on

SPREADS: dict[str, Callable[[random.Random], float]] = {
    "a": lambda rng: rng.lognormvariate(math.log(75.0), 0.3),
    "b": lambda rng: rng.uniform(40.0, 360.0),
}
SPREAD_TEXT = {"a": "lognormal median 75 s, sigma 0.3", "b": "uniform 40 s - 6 min"}


def draw(spread: str, jobs: int, seed: int) -> list[float]:
    """The generation times of one draw: the same jobs for every schedule replayed on it."""
    rng = random.Random(seed)
    return [SPREADS[spread](rng) for _ in range(jobs)]


def _uniform(lo_s: float, hi_s: float) -> ps.Durations:
    return ps.Durations(tuple(max(0.0, min(hi, hi_s) - max(lo, lo_s)) for lo, hi in zip(ps.EDGES, ps.EDGES[1:])))


# Each spread as the planner's histogram, to score plans without sampling noise.
TRUE_SPREADS: dict[str, ps.Durations] = {
    "a": ps.Durations.from_prior(ps.Prior(75.0, 0.3, weight=1e6)),
    "b": _uniform(40.0, 360.0),
}


def simulate(spread: str, jobs: int, poll: PollSettings, seed: int = FIGURE_SEED, steady_from: int | None = None) -> dict:
    durations = draw(spread, jobs, seed)
    learner = Learner(poll)
    # What each job's plan costs on the true spread, exactly: the sample's own luck left out (a
    # ratio of two sample means of 2000 jobs moves by about 0.01 from one draw to the next).
    truth = ps._Table(TRUE_SPREADS[spread])
    expected, ours = [], []
    for d in durations:
        expected.append(ps.evaluate(truth, learner.next_times()))
        ours.append(learner.run(d))
    ref_checks, ref_delay = ps.evaluate(truth, SEED_CADENCE.times(learner.horizon_s))
    ref = [reference_checks(d) for d in durations]
    steady_from = jobs // 2 if steady_from is None else steady_from

    def mean(rows, k, start=0):
        rows = rows[start:]
        return sum(r[k] for r in rows) / len(rows)

    return {
        "jobs": jobs,
        "ours_checks": mean(ours, 0), "ours_delay": mean(ours, 1),
        "ours_checks_steady": mean(ours, 0, steady_from), "ours_delay_steady": mean(ours, 1, steady_from),
        "ours_checks_first50": mean(ours, 0, 0) if jobs < 50 else sum(r[0] for r in ours[:50]) / 50,
        "ours_delay_first50": mean(ours, 1, 0) if jobs < 50 else sum(r[1] for r in ours[:50]) / 50,
        "ref_checks": mean(ref, 0), "ref_delay": mean(ref, 1),
        "expected_checks_ratio": mean(expected, 0) / ref_checks, "expected_delay_ratio": mean(expected, 1) / ref_delay,
        "plan": learner.plan,
    }


def known_optimum(poll: PollSettings, horizon_s: float = 1800.0, budget_scale: float = 1.0) -> ps.Plan:
    """Spread (a) known exactly: veo-relay's planner given the seed's expected checks in full
    (no learning, no margin; `budget_scale` times them): about the least delay any schedule
    that only learns "still running" from a check can reach at that cost."""
    true = TRUE_SPREADS["a"]
    ref_checks, _ = ps.evaluate(ps._Table(true), SEED_CADENCE.times(horizon_s))
    return ps.plan(true, poll.delay_cost_checks, budget_scale * ref_checks, poll.min_delay_s, poll.max_delay_s,
                   poll.initial_delay_s, horizon_s, budgeted=False)


def frontier(poll: PollSettings, horizon_s: float = 1800.0) -> float:
    """known_optimum's mean delay on the true spread, as a ratio to the seed schedule's."""
    table = ps._Table(TRUE_SPREADS["a"])
    _, ref_delay = ps.evaluate(table, SEED_CADENCE.times(horizon_s))
    best = known_optimum(poll, horizon_s)
    share = best.alternative_share
    delays = [(1 - share, ps.evaluate(table, best.times)[1])] + ([(share, ps.evaluate(table, best.alternative)[1])] if share else [])
    return sum(w * d for w, d in delays) / ref_delay


def optimum_on_draw(poll: PollSettings, spread: str, jobs: int, seed: int, budget_scale: float = 1.0) -> tuple[float, float]:
    """known_optimum replayed on a draw's own jobs (job i follows the share job i would):
    (checks ratio, delay ratio) to the seed schedule on the same jobs: how far the draw's luck
    alone moves a ratio that no learning can improve on. `budget_scale` above 1 finds the budget
    at which the optimum spends exactly the draw's own seed checks."""
    durations = draw(spread, jobs, seed)
    best = known_optimum(poll, budget_scale=budget_scale)
    ours = [replay(poll, best.times_for(sim_job_id(i)), d) for i, d in enumerate(durations)]
    ref = [reference_checks(d) for d in durations]
    return (sum(c for c, _, _ in ours) / sum(c for c, _ in ref),
            sum(t - d for (_, _, t), d in zip(ours, durations)) / sum(late for _, late in ref))


# Other draws of the same spreads, reported beside the figure (the figure is seed 7's): a ratio
# of two sample means moves by a few percent from one draw of 2000 jobs to the next.
OTHER_SEEDS = (1, 2, 3, 4)


def _ratios(spread: str, jobs: int, poll: PollSettings, seeds: tuple[int, ...]) -> str:
    rows = [simulate(spread, jobs, poll, seed=s) for s in seeds]
    checks = [r["ours_checks"] / r["ref_checks"] for r in rows]
    delays = [r["ours_delay"] / r["ref_delay"] for r in rows]
    return (f"seeds {','.join(map(str, seeds))}: checks ratio {min(checks):.3f}-{max(checks):.3f}, "
            f"delay ratio {min(delays):.3f}-{max(delays):.3f}")


def run(quick: bool = False) -> list[Figure]:
    jobs = 60 if quick else 2000
    poll = PollSettings()  # production defaults (config.py)
    figures: list[Figure] = []
    # Poll-only providers: no more checks than the seed schedule, and (realistic spread a) at
    # most a quarter of its delay (issue 13).
    for spread, delay_target in (("a", "<= 0.25"), ("b", "< 1")):
        r = simulate(spread, jobs, poll)
        text = f"({spread}) {SPREAD_TEXT[spread]}"
        learn = (f"{jobs} jobs in sequence, learning from the prior up (cache refreshed every 20 jobs); "
                 f"first 50 jobs {r['ours_checks_first50']:.2f} checks, {r['ours_delay_first50']:.2f} s; "
                 f"last half {r['ours_checks_steady']:.2f} checks, {r['ours_delay_steady']:.2f} s")
        others = (f"; each job's plan scored exactly on the true spread (no sampling noise): checks ratio "
                  f"{r['expected_checks_ratio']:.3f}, delay ratio {r['expected_delay_ratio']:.3f}")
        others += "" if quick else "; " + _ratios(spread, jobs, poll, OTHER_SEEDS)
        if spread == "a":
            drawn = optimum_on_draw(poll, spread, jobs, FIGURE_SEED)
            others += (f"; spread known exactly, at the seed's expected checks: {frontier(poll):.3f} "
                       f"(that plan replayed on this draw's jobs: checks ratio {drawn[0]:.3f}, delay ratio {drawn[1]:.3f})")
        figures.append(Figure("2 polling", f"status checks per job, {text}", r["ours_checks"], "checks",
                              baseline=r["ref_checks"], target="<= 1", target_on="ratio",
                              note="baseline: seed 000 (check at once, then 10 s x1.2 up to 30 s); " + learn))
        figures.append(Figure("2 polling", f"detection delay (done -> seen), mean, {text}", r["ours_delay"], "s",
                              baseline=r["ref_delay"], target=delay_target, target_on="ratio",
                              note=f"simulated clock; same generation times for both schedules (seed {FIGURE_SEED})" + others))
    return figures
