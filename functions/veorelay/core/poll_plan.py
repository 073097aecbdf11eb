"""When to check a running job: checks placed where its generation is likely to end.

Pure math, no I/O. A provider+model's generation time D is a `Durations` histogram over a
fixed log-spaced grid: a documented prior (pseudo-jobs) plus what finished jobs taught us
(see poll_stats.py). `plan()` turns it into check times, in seconds since submission.

How the checks are placed. With check density rho(t), a job costs about 1 + ∫ rho·S checks
and waits about ∫ f / (2·rho) seconds for its end to be seen (f: density of D, S: P(D > t)).
Minimising E[checks] + w·E[delay] gives rho = sqrt(w/2) · sqrt(f / S) = sqrt(w/2 · hazard):
checks crowd where a job still running is likely to end soon, none are spent while no job
can be done yet. A narrow spread thus gets few checks and a small delay, a wide one more of
both. Check k goes
where ∫ rho = k - 1/2; a few sweeps of coordinate descent on the exact discrete objective
then polish the handful of checks (the continuous picture is only approximate at 5-10
checks). Gaps are held within [min_gap, max_gap], and a cap on expected checks keeps very
wide spreads affordable.

The backstop under completion events (`push_plan`). When a provider pushes an event with
probability r as its job ends (learned per provider+model: `push_reliability`), a check is still
paid while the job runs, but its delay only counts for the (1 - r) of jobs whose event never
comes: the same optimum with the delay weighted w·(1 - r). While events arrive (r above
R_DENSE) the checks also wait for the tail of the spread: none before its quantile
TAIL_Q·(r - R_DENSE)/(R_MAX - R_DENSE) (the 90th percentile at r = R_MAX), so they are placed
where a job whose event was lost is overdue, not where jobs usually end. r is capped at R_MAX:
the backstop never stops, and a job whose event never comes still finishes. When events stop
arriving, r falls and the plan is the dense one again (r = 0: exactly `plan`).
"""
from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from statistics import NormalDist

# The grid: bin i covers [EDGES[i], EDGES[i+1]). 0.5 s to 4 h in 5 % steps (~200 bins):
# fine enough for seconds-long test jobs and for Veo's minutes.
GRID_MIN_S = 0.5
GRID_MAX_S = 4 * 3600.0
GRID_RATIO = 1.05
BINS = math.ceil(math.log(GRID_MAX_S / GRID_MIN_S) / math.log(GRID_RATIO))
EDGES: tuple[float, ...] = tuple(GRID_MIN_S * GRID_RATIO ** i for i in range(BINS + 1))

_TAIL = 1e-4  # the plan stops once P(not done yet) is below this; max_gap checks follow

# The push backstop (module docstring). Before any job of a provider+model told us, its events
# count as unreliable (a Beta(0, PUSH_PRIOR_JOBS) prior): polling starts dense and thins out as
# events are seen to come first; each hour's counts weigh half as much PUSH_HALF_LIFE_H later.
R_DENSE = 0.5
R_MAX = 0.95
TAIL_Q = 0.9
PUSH_PRIOR_JOBS = 2.0
PUSH_HALF_LIFE_H = 2.0


@dataclass(frozen=True)
class Prior:
    """Lognormal belief about D before any job finished, worth `weight` finished jobs."""

    median_s: float
    sigma: float
    weight: float = 5.0


# Google documents Veo latency as "min 11 seconds, max 6 minutes (during peak hours)"; Veo 3
# usually answers in 1-2 minutes, the fast variants sooner. A wide lognormal (sigma 0.6:
# 90 % between 0.37x and 2.7x the median) worth 5 jobs: learning overrides it within a few
# dozen jobs, and a wrong prior costs a few extra checks, never a missed result.
DEFAULT_PRIOR = Prior(median_s=60.0, sigma=0.6)
FAST_MODEL_PRIOR = Prior(median_s=40.0, sigma=0.6)


def prior_for(model: str, median_s: float | None = None, sigma: float | None = None) -> Prior:
    """The prior for a model; `median_s`/`sigma` (from settings) override the table."""
    base = FAST_MODEL_PRIOR if "fast" in model.lower() else DEFAULT_PRIOR
    return Prior(median_s or base.median_s, sigma or base.sigma, base.weight)


def bin_of(seconds: float) -> int:
    if seconds <= GRID_MIN_S:
        return 0
    return min(BINS - 1, int(math.log(seconds / GRID_MIN_S) / math.log(GRID_RATIO)))


@dataclass(frozen=True)
class Durations:
    """Mass per grid bin (pseudo-jobs of the prior + learned jobs); density uniform in a bin."""

    mass: tuple[float, ...]

    @classmethod
    def from_prior(cls, prior: Prior) -> Durations:
        dist = NormalDist(math.log(prior.median_s), prior.sigma)
        cdf = [dist.cdf(math.log(e)) for e in EDGES]
        cdf[0], cdf[-1] = 0.0, 1.0  # whatever the lognormal puts outside the grid lands in the end bins
        return cls(tuple(prior.weight * (hi - lo) for lo, hi in itertools.pairwise(cdf)))

    def plus(self, learned: Mapping[int, float]) -> Durations:
        mass = list(self.mass)
        for i, w in learned.items():
            if 0 <= i < BINS and w > 0:
                mass[i] += w
        return Durations(tuple(mass))

    @property
    def jobs(self) -> float:
        return sum(self.mass)

    def quantile(self, q: float) -> float:
        return _Table(self).quantile(q)

    def observation(self, after_s: float, at_s: float) -> dict[int, float]:
        """One finished job, known only to have ended in (after_s, at_s] (between its last two
        checks), as weights per bin summing to 1: spread like the current belief within that
        interval (one EM step for interval-censored data), so coarse checks do not blur it."""
        after_s, at_s = max(0.0, min(after_s, at_s)), max(after_s, at_s, GRID_MIN_S)
        weights: dict[int, float] = {}
        for i in range(bin_of(after_s), bin_of(at_s) + 1):
            lo, hi = max(EDGES[i], after_s), min(EDGES[i + 1], at_s)
            if hi > lo or i == bin_of(at_s):
                density = self.mass[i] / (EDGES[i + 1] - EDGES[i])
                weights[i] = max(hi - lo, 1e-9) * max(density, 1e-12)
        total = sum(weights.values())
        return {i: w / total for i, w in weights.items()}


class _Table:
    """Per-bin survival and integrals of one Durations, for fast evaluation."""

    def __init__(self, d: Durations):
        total = sum(d.mass) or 1.0
        self.p = [m / total for m in d.mass]
        self.S = [1.0]  # S at each edge
        for p in self.p:
            self.S.append(max(0.0, self.S[-1] - p))
        self.S[-1] = 0.0
        # ∫ S dt up to each edge (S is linear inside a bin).
        self.intS = [0.0]
        for i in range(BINS):
            self.intS.append(self.intS[-1] + (EDGES[i + 1] - EDGES[i]) * (self.S[i] + self.S[i + 1]) / 2)
        # A(t) = ∫ sqrt(f/S) dt up to each edge, and J = ∫ sqrt(f·S) dt over everything.
        self.A = [0.0]
        self.J = 0.0
        for i in range(BINS):
            f = self.p[i] / (EDGES[i + 1] - EDGES[i])
            s0, s1 = self.S[i], self.S[i + 1]
            if f > 0:
                self.A.append(self.A[-1] + 2 / math.sqrt(f) * (math.sqrt(s0) - math.sqrt(s1)))
                self.J += 2 / (3 * math.sqrt(f)) * (s0 ** 1.5 - s1 ** 1.5)
            else:
                self.A.append(self.A[-1])

    def survival(self, t: float) -> float:
        if t <= EDGES[0]:
            return 1.0
        if t >= EDGES[-1]:
            return 0.0
        i = bisect.bisect_right(EDGES, t) - 1
        return self.S[i] - self.p[i] * (t - EDGES[i]) / (EDGES[i + 1] - EDGES[i])

    def int_survival(self, t: float) -> float:
        """∫_0^t S(x) dx (S = 1 below the grid)."""
        if t <= EDGES[0]:
            return t - EDGES[0]  # negative offset, cancels in differences
        if t >= EDGES[-1]:
            return self.intS[-1]
        i = bisect.bisect_right(EDGES, t) - 1
        return self.intS[i] + (t - EDGES[i]) * (self.S[i] + self.survival(t)) / 2

    def at_A(self, a: float) -> float:  # noqa: N802 (A(t) as in the module's formulas)
        """The time t with A(t) = a (inf when a is beyond the distribution's end)."""
        if a <= 0:
            return EDGES[0]
        if a >= self.A[-1]:
            return math.inf
        i = bisect.bisect_right(self.A, a) - 1
        while self.A[i + 1] <= self.A[i]:  # a zero-mass bin cannot hold the point
            i += 1
        f = self.p[i] / (EDGES[i + 1] - EDGES[i])
        root = math.sqrt(self.S[i]) - (a - self.A[i]) * math.sqrt(f) / 2
        s = max(0.0, root) ** 2
        return EDGES[i] + (self.S[i] - s) / f

    def quantile(self, q: float) -> float:
        target = 1.0 - q
        i = next((k for k in range(BINS) if self.S[k + 1] <= target), BINS - 1)
        if self.p[i] <= 0:
            return EDGES[i]
        return EDGES[i] + (self.S[i] - target) / self.p[i] * (EDGES[i + 1] - EDGES[i])


@dataclass(frozen=True)
class Plan:
    """Check times in seconds since submission, and what they are expected to cost."""

    times: tuple[float, ...]
    expected_checks: float
    expected_delay_s: float


def evaluate(d: Durations | _Table, times: tuple[float, ...] | list[float]) -> tuple[float, float]:
    """(expected checks, expected delay) of checking at `times` (then never again)."""
    table = d if isinstance(d, _Table) else _Table(d)
    checks, delay, prev = 0.0, 0.0, 0.0
    for t in times:
        alive = table.survival(prev)  # check at t happens iff the job was not done at prev
        checks += alive
        # ∫_prev^t (t - x) f(x) dx = ∫_prev^t (S(prev) - S(x)) dx
        delay += (t - prev) * alive - (table.int_survival(t) - table.int_survival(prev))
        prev = t
    return checks, delay


def push_reliability(counts: Mapping[int, tuple[float, float]], now_hour: int) -> float:
    """How reliably events come before a check finds the job done: `counts` maps an hour
    (hours since the epoch) to (jobs that asked for push, jobs whose event came first)."""
    jobs = first = 0.0
    for hour, (n, k) in counts.items():
        weight = 0.5 ** (max(0, now_hour - hour) / PUSH_HALF_LIFE_H)
        jobs += weight * max(0.0, n)
        first += weight * min(max(0.0, k), max(0.0, n))
    return min(R_MAX, first / (jobs + PUSH_PRIOR_JOBS))


def evaluate_push(d: Durations | _Table, times: tuple[float, ...] | list[float], reliability: float) -> tuple[float, float]:
    """(expected checks, expected delay) of checking at `times` when the event comes at the end
    with probability `reliability`: check i happens if the job still runs at t_i, or if it
    ended since t_(i-1) and its event was lost; only lost events wait for a check."""
    table = d if isinstance(d, _Table) else _Table(d)
    r = min(max(reliability, 0.0), 1.0)
    checks, prev = 0.0, 0.0
    for t in times:
        checks += r * table.survival(t) + (1 - r) * table.survival(prev)
        prev = t
    return checks, (1 - r) * evaluate(table, times)[1]


def push_plan(d: Durations, reliability: float, delay_cost_checks: float, max_checks: float, min_gap_s: float,
              max_gap_s: float, first_max_s: float, horizon_s: float) -> Plan:
    """The backstop checks of a job whose provider pushes an event with probability `reliability`."""
    r = min(max(reliability, 0.0), R_MAX)
    if r <= 0:
        return plan(d, delay_cost_checks, max_checks, min_gap_s, max_gap_s, first_max_s, horizon_s)
    tail_q = TAIL_Q * max(0.0, (r - R_DENSE) / (R_MAX - R_DENSE))
    not_before = min(d.quantile(tail_q), horizon_s) if tail_q > 0 else 0.0
    p = plan(d, delay_cost_checks * (1 - r), max_checks, min_gap_s, max_gap_s, max(first_max_s, not_before), horizon_s,
             not_before_s=not_before)
    checks, delay = evaluate_push(d, p.times, r)
    return Plan(p.times, checks, delay)


def plan(d: Durations, delay_cost_checks: float, max_checks: float, min_gap_s: float,
         max_gap_s: float, first_max_s: float, horizon_s: float, not_before_s: float = 0.0) -> Plan:
    """Check times minimising E[checks] + delay_cost_checks * E[delay in seconds].

    That optimum has rho = sqrt(delay_cost_checks / 2) * sqrt(f / S). If it would cost more
    than `max_checks` expected checks (a very wide spread), the density is lowered until it
    costs exactly that. The first check comes no later than first_max_s (and no earlier than
    not_before_s); gaps stay within [min_gap_s, max_gap_s]; nothing is planned past horizon_s.
    """
    table = _Table(d)

    def times_for(c: float) -> list[float]:
        out: list[float] = []
        prev, k = 0.0, 1
        while True:
            raw = table.at_A((k - 0.5) / c)
            t = min(max(raw, prev + min_gap_s, not_before_s), prev + (max_gap_s if out else first_max_s))
            if t > horizon_s:
                break
            out.append(t)
            prev, k = t, k + 1
            while table.at_A((k - 0.5) / c) <= prev and k < 100_000:  # a min_gap pushed past them
                k += 1
            if table.survival(t) < _TAIL:
                break
        return out

    c = math.sqrt(max(delay_cost_checks, 1e-6) / 2)
    times = times_for(c)
    if evaluate(table, times)[0] > max_checks:
        lo, hi = 1e-6, c
        for _ in range(30):  # bisection: expected checks grow with the density constant
            mid = math.sqrt(lo * hi)
            if evaluate(table, times_for(mid))[0] > max_checks:
                hi = mid
            else:
                lo = mid
        c = lo
        times = times_for(c)
    times = _refine(table, times, 2 * c * c, min_gap_s, max_gap_s, first_max_s, horizon_s, not_before_s=not_before_s)
    checks, delay = evaluate(table, times)
    return Plan(tuple(round(t, 3) for t in times), checks, delay)


def _refine(table: _Table, times: list[float], weight: float, min_gap_s: float, max_gap_s: float,  # noqa: PLR0913
            first_max_s: float, horizon_s: float, sweeps: int = 6, not_before_s: float = 0.0) -> list[float]:
    """Coordinate descent on the exact discrete objective E[checks] + weight * E[delay].

    The continuous placement is close but not optimal at a handful of checks. With its
    neighbours fixed, check k only changes S(t_k) * (1 + weight * (t_{k+1} - t_k)) +
    weight * t_k * S(t_{k-1}) (the rest is constant), a 1-D problem: golden-section search.
    """
    times = list(times)
    for _ in range(sweeps):
        for k in range(len(times)):
            prev = times[k - 1] if k else 0.0
            nxt = times[k + 1] if k + 1 < len(times) else None
            lo = prev + (min_gap_s if k else not_before_s)
            hi = prev + (max_gap_s if k else first_max_s)
            if nxt is not None:
                lo, hi = max(lo, nxt - max_gap_s), min(hi, nxt - min_gap_s)
            hi = min(hi, horizon_s)
            if hi <= lo:
                continue
            alive_before = table.survival(prev)

            # Bound now: local() is only called in this iteration, the defaults make that plain.
            def local(t: float, nxt: float | None = nxt, alive_before: float = alive_before) -> float:
                after = 1 + weight * (nxt - t) if nxt is not None else 1.0
                return table.survival(t) * after + weight * t * alive_before

            a, b = lo, hi
            for _ in range(30):
                m1, m2 = a + (b - a) * 0.382, a + (b - a) * 0.618
                if local(m1) < local(m2):
                    b = m2
                else:
                    a = m1
            best = (a + b) / 2
            if local(best) < local(times[k]):
                times[k] = best
    return times


def next_delay(times: tuple[float, ...], elapsed_s: float, min_gap_s: float, max_gap_s: float,
               first: bool = False, first_max_s: float | None = None) -> float:
    """Seconds from now (elapsed_s since submission) until the next check."""
    if first:
        upcoming = times[0] if times else max_gap_s
        return max(0.0, min(upcoming - elapsed_s, first_max_s if first_max_s is not None else max_gap_s))
    upcoming = next((t for t in times if t >= elapsed_s + min_gap_s), elapsed_s + max_gap_s)
    return min(max(upcoming - elapsed_s, min_gap_s), max_gap_s)
