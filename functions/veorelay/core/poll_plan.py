"""When to check a running job: checks placed where its generation is likely to end.

Pure math, no I/O. A provider+model's generation time D is a `Durations` histogram over a
fixed log-spaced grid: a documented prior (pseudo-jobs) plus what finished jobs taught us
(see poll_stats.py). `plan()` turns it into check times, in seconds since submission.

How the checks are placed. With checks at t_1 < t_2 < ... (none at submission: a job is never
done at once), check k happens iff the job still ran at t_(k-1), so a job costs
E[checks] = sum_k S(t_(k-1)) (S: P(D > t)), and one ending at x waits until the first check at
or after it: E[delay] = sum_k ∫_(t_(k-1))^(t_k) (t_k - x) f(x) dx. `plan` minimises
E[checks] + w * E[delay] exactly, by dynamic programming over candidate times (_Planner:
a few per optimal gap where jobs end, and first_max then max_gap apart, for a plan that waits
as long as it may; each gap within [min_gap, max_gap], the first check no later than
first_max, max_gap checks past the spread's end as next_delay does). Checks crowd
where a job still running is likely to end soon, none are spent while no job can be done yet.

The check budget. A plan never expects more checks per job than the reference cadence
(reference_cadence: seed 000's loop, a check at once, then 10 s x1.2 up to 30 s, scaled with
max_gap) would spend on the same learned spread, nor more than max_checks. Within that it minimises the delay, paying at most w
= delay_cost_checks checks per second of delay saved: the optimum at w if that fits, else the
optimum at the largest w that fits (bisection), or, as the optimum's checks grow in jumps (one
more check starts to pay), the plan just past the jump moved to lower w until it fits, when that
waits less. The plan is made from the learned histogram smoothed over neighbouring bins.

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
import hashlib
import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass

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
# events are seen to come (first or after a check); each hour's counts weigh half as much PUSH_HALF_LIFE_H later.
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
        # The lognormal's CDF by math.erf: statistics.NormalDist would cost every function that
        # plans a check the import of statistics (and fractions) at its cold start.
        mu, scale = math.log(prior.median_s), prior.sigma * math.sqrt(2.0)
        cdf = [0.5 * (1.0 + math.erf((math.log(e) - mu) / scale)) for e in EDGES]
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

    def smoothed(self) -> Durations:
        """The mass spread over each bin and its neighbours (1/4, 1/2, 1/4), kept within the grid.

        What the schedule plans with and learns by: a histogram learned from interval-censored
        jobs has lumps where past plans put their checks (a job that ended between two checks is
        spread like the belief was, and the belief there came from the same checks), and an
        exact planner would keep its checks on them. One pass widens a spread by a few percent of
        its median at most (a bin is 5 %).
        """
        m = self.mass
        last = len(m) - 1
        return Durations(tuple((m[max(i - 1, 0)] + 2 * m[i] + m[min(i + 1, last)]) / 4 for i in range(len(m))))

    def observation(self, after_s: float, at_s: float) -> dict[int, float]:
        """One finished job, known only to have ended in (after_s, at_s] (between its last two
        checks), as weights per bin summing to 1: spread like the (smoothed) belief within that
        interval (one EM step for interval-censored data), so coarse checks do not blur it."""
        after_s, at_s = max(0.0, min(after_s, at_s)), max(after_s, at_s, GRID_MIN_S)
        belief = self.smoothed().mass
        weights: dict[int, float] = {}
        for i in range(bin_of(after_s), bin_of(at_s) + 1):
            lo, hi = max(EDGES[i], after_s), min(EDGES[i + 1], at_s)
            if hi > lo or i == bin_of(at_s):
                density = belief[i] / (EDGES[i + 1] - EDGES[i])
                weights[i] = max(hi - lo, 1e-9) * max(density, 1e-12)
        total = sum(weights.values())
        return {i: w / total for i, w in weights.items()}


class _Table:
    """Per-bin survival and its integral for one Durations, for fast evaluation."""

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

    def hazard(self, i: int) -> float:
        """P(ending per second | still running), in the middle of bin i."""
        alive = (self.S[i] + self.S[i + 1]) / 2
        return self.p[i] / (EDGES[i + 1] - EDGES[i]) / alive if alive > 0 else 0.0

    def quantile(self, q: float) -> float:
        target = 1.0 - q
        i = next((k for k in range(BINS) if self.S[k + 1] <= target), BINS - 1)
        if self.p[i] <= 0:
            return EDGES[i]
        return EDGES[i] + (self.S[i] - target) / self.p[i] * (EDGES[i + 1] - EDGES[i])


@dataclass(frozen=True)
class Plan:
    """Check times in seconds since submission, and what they are expected to cost (over the
    jobs: a budgeted plan may send a share of them along another set of times, `times_for`)."""

    times: tuple[float, ...]
    expected_checks: float
    expected_delay_s: float
    # The budget between two optima (plan(), _least_delay): jobs whose job_share is below
    # alternative_share follow `alternative` (more checks, less delay), the others `times`.
    alternative: tuple[float, ...] = ()
    alternative_share: float = 0.0

    def times_for(self, job_id: str) -> tuple[float, ...]:
        """The check times of one job: the same on every step of it (job_share is its id's)."""
        return self.alternative if job_share(job_id) < self.alternative_share else self.times


def job_share(job_id: str) -> float:
    """A job's fixed point in [0, 1): which of a mixed plan's two sets of times it follows."""
    return int.from_bytes(hashlib.blake2b(job_id.encode(), digest_size=8).digest(), "big") / 2.0 ** 64


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


def push_reliability(counts: Mapping[int, tuple[float, float, float]], now_hour: int) -> float:
    """How reliably a job's event comes: `counts` maps an hour (hours since the epoch) to (jobs
    that asked for push, jobs whose event came first, jobs whose event came after a check had
    found them done). An event that lost the race to a check still came: counting only the
    first would read dense polling, which wins more races, as unreliable events and keep it dense."""
    jobs = came = 0.0
    for hour, (n, first, after) in counts.items():
        weight = 0.5 ** (max(0, now_hour - hour) / PUSH_HALF_LIFE_H)
        n = max(0.0, n)
        jobs += weight * n
        came += weight * min(max(0.0, first) + max(0.0, after), n)
    return min(R_MAX, came / (jobs + PUSH_PRIOR_JOBS))


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


# The planner's candidate check times (_Planner): about _STEPS_PER_GAP per optimal gap where
# jobs end, never coarser than a quarter of max_gap, at most about _GRID_POINTS_MAX in all.
_STEPS_PER_GAP = 8
_GRID_POINTS_MAX = 4000
_SPARSE_BELOW = 1e-3  # P(still running) below which candidates are 4x sparser
_EPS = 1e-9  # seconds: gaps compared with this tolerance
_BISECTIONS = 10  # of the rate, from a factor 4 to within 0.2 %
_FOLLOW_STEP = 0.05  # log(rate) steps down while following a plan past a jump,
_FOLLOW_STEPS = 20  # at most this many (the rate down to 0.37x)
# The budget is the reference cadence's expected checks on the *learned* spread, which real jobs
# miss by a percent or so either way: the plan spends at most this share of it, so that the
# checks jobs actually take stay within what the reference would have taken.
BUDGET_SHARE = 0.98
_FIT_STEPS = 6  # regula falsi steps to bring a followed plan up to the budget
_FIT_SLACK = 2e-3  # checks per job: a plan this close under the budget is taken


@dataclass(frozen=True)
class Cadence:
    """A fixed schedule: a check at once, then gaps from `gap_s` growing by `growth` up to `max_gap_s`."""

    gap_s: float = 10.0
    growth: float = 1.2
    max_gap_s: float = 30.0

    def times(self, until_s: float) -> list[float]:
        """Its check times, the one at once (0) included, up to the first at or after until_s."""
        times, t, gap = [0.0], 0.0, self.gap_s
        while t < until_s:
            t, gap = t + gap, min(self.max_gap_s, gap * self.growth)
            times.append(t)
        return times

    def expected_checks(self, d: Durations | _Table, horizon_s: float) -> float:
        """Checks per job (the one at once included) this cadence spends on the spread `d`."""
        table = d if isinstance(d, _Table) else _Table(d)
        # The check after t happens iff the job still ran at t.
        return 1.0 + sum(max(0.0, table.survival(t)) for t in self.times(horizon_s)[:-1])


def reference_cadence(max_gap_s: float) -> Cadence:
    """The check budget's cadence: seed 000's loop (check at once, then 10 s x1.2 up to 30 s) at
    the default max gap of 30 s, in proportion to it otherwise (a deployment that allows longer
    gaps asks for fewer checks; the stack's scaled-down benchmarks keep the same budget)."""
    return Cadence(max_gap_s / 3, 1.2, max_gap_s)


@dataclass(frozen=True)
class _Bounds:
    """Where checks may go: gaps within [min_gap_s, max_gap_s], the first in [not_before_s, first_max_s], none past horizon_s."""

    min_gap_s: float
    max_gap_s: float
    first_max_s: float
    horizon_s: float
    not_before_s: float


class _Planner:
    """The exact optimum of E[checks] + w * E[delay] over candidate check times (dynamic programming).

    A job still running at a check at g_i (probability S_i) gets its next check at g_j: that
    costs S_i (the check happens iff the job ran at g_i) plus w * ∫_{g_i}^{g_j} (g_j - x) f(x) dx
    = w * ((g_j - g_i) * S_i - (I_j - I_i)) (I = ∫S) of delay for the jobs ending in between, then
    V_j onward: V_i = min over g_j in [g_i + min_gap, g_i + max_gap] of that sum. The first
    check comes from time 0 (no check there: a job is never done at once) no later than
    first_max. A time with no candidate in reach ends the plan: max_gap checks from there on,
    as next_delay does past a plan. The candidates run to `end`, where fewer than _TAIL of
    jobs still run (or the horizon).

    Speed: the pair cost is Monge (its only term in both i and j is w * S_i * g_j, and S
    falls), so the best next check never moves earlier for a later check: the scan for g_i
    stops at g_(i+1)'s choice. A solve touches a few candidates per candidate.
    """

    def __init__(self, table: _Table, finest_w: float, bounds: _Bounds):
        self.table, self.bounds, self.max_gap = table, bounds, bounds.max_gap_s
        self.lo, self.horizon = bounds.not_before_s, bounds.horizon_s
        self.end = min(bounds.horizon_s, max(table.quantile(1 - _TAIL), self.lo))
        g = self._candidates(finest_w, bounds.min_gap_s, bounds.max_gap_s, bounds.first_max_s)
        self.g = g
        self.alive = [table.survival(t) for t in g]  # S at each candidate
        self.area = [table.int_survival(t) for t in g]  # ∫S up to each candidate
        self.area0 = table.int_survival(0.0)
        self.first_last = bisect.bisect_right(g, bounds.first_max_s + _EPS) - 1  # the last candidate for check 1
        self.reach = [(bisect.bisect_left(g, t + bounds.min_gap_s - _EPS), bisect.bisect_right(g, t + bounds.max_gap_s + _EPS) - 1)
                      for t in g]
        self._tails: dict[int, tuple[list[float], float, float]] = {}

    def _candidates(self, w: float, min_gap_s: float, max_gap_s: float, first_max_s: float) -> list[float]:
        table, lo, end = self.table, self.lo, self.end
        coarsest = max_gap_s / 4
        if max_gap_s > min_gap_s:  # every reach [g + min_gap, g + max_gap] then holds a candidate
            coarsest = min(coarsest, (max_gap_s - min_gap_s) / 2)
        finest = (end - lo) / _GRID_POINTS_MAX
        points = [lo] if lo > 0 else []
        t, k = lo, bisect.bisect_right(EDGES, lo) - 1
        while t < end - _EPS:
            if k < 0:  # below the grid: nobody is done yet
                stop, step = min(EDGES[0], end), coarsest
            else:
                stop = min(EDGES[k + 1], end)
                h = table.hazard(k)
                # The continuous optimum's gap there (check density sqrt(w/2 * hazard)), split finer.
                step = math.sqrt(2 / (w * h)) / _STEPS_PER_GAP if h > 0 else coarsest
                if table.S[k] < _SPARSE_BELOW:  # hardly a job left to wait for: a coarser choice costs nothing
                    step *= 4
            step = max(min(step, coarsest), finest)
            n = max(1, math.ceil((stop - t) / step - 1e-9))
            points.extend(t + (stop - t) * m / n for m in range(1, n + 1))
            t, k = stop, k + 1
        if lo < first_max_s < end:
            # The first check at its latest, then checks max_gap apart: where no job is done yet,
            # the optimum waits as long as it may, and a grid without these times cannot.
            chain = itertools.takewhile(lambda t: t < end - _EPS, (first_max_s + m * max_gap_s for m in itertools.count()))
            points = sorted(set(points).union(chain))
        return points

    def _tail(self, i: int) -> tuple[list[float], float, float]:
        """max_gap checks after candidate i up to `end`: (times, expected checks, expected delay)."""
        if i not in self._tails:
            table, times, checks, delay = self.table, [], 0.0, 0.0
            t, alive, area = self.g[i], self.alive[i], self.area[i]
            while t < self.end - _EPS and t + self.max_gap <= self.horizon + _EPS:
                nxt = t + self.max_gap
                nxt_area = table.int_survival(nxt)
                checks += alive
                delay += self.max_gap * alive - (nxt_area - area)
                times.append(nxt)
                t, alive, area = nxt, table.survival(nxt), nxt_area
            self._tails[i] = (times, checks, delay)
        return self._tails[i]

    def solve(self, w: float) -> _Path:
        """The optimum at exchange rate w."""
        g, alive, area, reach = self.g, self.alive, self.area, self.reach
        n = len(g)
        if n == 0 or self.first_last < 0:
            return _Path((), 0.0, 0.0)
        cost = [0.0] * n  # V_i
        rest = [0.0] * n  # V_i - w * I_i: what a check before g_i adds to w * S_before * g_i
        nxt = [-1] * n
        bound = n - 1
        for i in range(n - 1, -1, -1):
            first, last = reach[i]
            last = min(last, bound)
            if first > last:
                _, checks, delay = self._tail(i)
                cost[i] = checks + w * delay
                bound = n - 1  # no choice here to bound the scan of g_(i-1) by
            else:
                slope = w * alive[i]
                best, pick = math.inf, first
                for j in range(first, last + 1):
                    v = rest[j] + slope * g[j]
                    if v < best:
                        best, pick = v, j
                cost[i] = alive[i] + w * (area[i] - alive[i] * g[i]) + best
                nxt[i] = bound = pick
            rest[i] = cost[i] - w * area[i]
        best, i = math.inf, -1
        for j in range(self.first_last + 1):  # the first check, from time 0 (alive: 1)
            v = 1.0 + w * (g[j] - (area[j] - self.area0)) + cost[j]
            if v < best:
                best, i = v, j
        path = [i]
        while nxt[i] >= 0:
            i = nxt[i]
            path.append(i)
        return self._path(path)

    def follow(self, path: _Path, w: float) -> _Path | None:
        """The optimum at rate w among plans with as many checks as `path`, each within half a
        gap of its own: `path` moved, not replaced, as the rate changes (None: no such plan
        keeps the bounds)."""
        g, alive, area, reach = self.g, self.alive, self.area, self.reach
        at = [g[i] for i in path.nodes]
        layers = []
        for k, t in enumerate(at):
            before = at[k - 1] if k else 0.0
            after = at[k + 1] if k + 1 < len(at) else t + self.max_gap
            r = max(min(t - before, after - t) / 2, _EPS)
            layers.append(range(bisect.bisect_left(g, t - r), bisect.bisect_right(g, t + r)))
        layers[0] = range(layers[0].start, min(layers[0].stop, self.first_last + 1))
        tails = [self._tail(j) for j in layers[-1]]
        cost = [checks + w * delay for _, checks, delay in tails]  # V_j over the layer after, from its start
        picks: list[list[int]] = []
        for k in range(len(layers) - 2, -1, -1):
            layer, following = layers[k], layers[k + 1]
            new, pick = [math.inf] * len(layer), [-1] * len(layer)
            bound = following.stop - 1  # Monge, as in solve: a later check's choice bounds an earlier one's
            for n in range(len(layer) - 1, -1, -1):
                i = layer[n]
                first, last = max(reach[i][0], following.start), min(reach[i][1], bound)
                slope, best, choice = w * alive[i], math.inf, -1
                for j in range(first, last + 1):
                    v = cost[j - following.start] + slope * g[j] - w * area[j]
                    if v < best:
                        best, choice = v, j
                if choice >= 0:
                    new[n], pick[n] = alive[i] + w * (area[i] - alive[i] * g[i]) + best, choice
                    bound = choice
            cost = new
            picks.append(pick)
        start = layers[0]
        i, best = -1, math.inf
        for n, c in enumerate(cost):
            v = 1.0 + w * (g[start[n]] - (area[start[n]] - self.area0)) + c
            if v < best:
                i, best = start[n], v
        if i < 0:
            return None
        nodes = [i]
        for k, pick in enumerate(reversed(picks)):
            i = pick[i - layers[k].start]
            nodes.append(i)
        return self._path(nodes)

    def _path(self, nodes: list[int]) -> _Path:
        g, alive, area = self.g, self.alive, self.area
        checks, delay = 1.0, g[nodes[0]] - (area[nodes[0]] - self.area0)
        for i, j in itertools.pairwise(nodes):
            checks += alive[i]
            delay += (g[j] - g[i]) * alive[i] - (area[j] - area[i])
        _, tail_checks, tail_delay = self._tail(nodes[-1])
        return _Path(tuple(nodes), checks + tail_checks, delay + tail_delay)

    def times(self, path: _Path) -> list[float]:
        return [self.g[i] for i in path.nodes] + self._tail(path.nodes[-1])[0] if path.nodes else []

    def plan(self, path: _Path) -> Plan:
        """The path as check times, with their exact expectation (evaluate)."""
        times = tuple(self.times(path))
        return Plan(times, *evaluate(self.table, times))


@dataclass(frozen=True)
class _Path:
    """A plan as candidate indices (then max_gap checks to the end), and its expected checks and delay."""

    nodes: tuple[int, ...]
    checks: float
    delay: float


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
    table = _Table(d.smoothed())  # the belief plan() planned with
    base = Plan(p.times, *evaluate_push(table, p.times, r))
    if not p.alternative:
        return base
    return _blend(base, Plan(p.alternative, *evaluate_push(table, p.alternative, r)), p.alternative_share)


def plan(d: Durations, delay_cost_checks: float, max_checks: float, min_gap_s: float,  # noqa: PLR0913
         max_gap_s: float, first_max_s: float, horizon_s: float, not_before_s: float = 0.0,
         budgeted: bool = True) -> Plan:
    """Check times minimising E[delay] within a check budget, at most delay_cost_checks checks per second saved.

    The budget: `max_checks`, and (`budgeted`) what reference_cadence(max_gap_s) would spend on this spread. The
    plan is the optimum of E[checks] + w * E[delay] at w = delay_cost_checks, or, if that costs
    more than the budget, the least-delay plan found that fits it (_least_delay). The first
    check comes no later than first_max_s (and no earlier than not_before_s); gaps stay within
    [min_gap_s, max_gap_s]; nothing is planned past horizon_s.
    """
    table = _Table(d.smoothed())
    bounds = _Bounds(min_gap_s, max_gap_s, max(first_max_s, not_before_s, 0.0), horizon_s, max(not_before_s, 0.0))
    if bounds.not_before_s > horizon_s:
        return Plan((), 0.0, 0.0)
    reference = BUDGET_SHARE * reference_cadence(max_gap_s).expected_checks(table, horizon_s)
    budget = min(max_checks, reference) if budgeted else max_checks
    w = max(delay_cost_checks, 1e-6)
    return _within_budget(_Planner(table, w, bounds), w, budget)


def _within_budget(planner: _Planner, w: float, budget: float, regrid: bool = True) -> Plan:
    """The optimum at w on the planner's candidates if it fits the budget, else _least_delay."""
    path = planner.solve(w)
    return planner.plan(path) if path.checks <= budget else _least_delay(planner, w, budget, regrid)


def _least_delay(planner: _Planner, w: float, budget: float, regrid: bool = True) -> Plan:
    """The least-delay plan found within the budget, when the optimum at w costs more.

    The optimum's checks grow with the rate, but in jumps (where one more check starts to pay:
    up to half a check at Veo's spreads), so the largest rate whose optimum fits (bisection)
    can leave much of the budget unspent. Two ways spend it, the lesser expected delay wins:
    the optimum just past the jump, followed to lower rates with its checks kept (`follow`)
    until it just fits; or the optima on both sides of the jump, each for a share of the jobs
    that meets the budget on average (Plan.alternative). The mix lies on the line between two
    optima, the lower hull of what any one set of times can reach, so it usually wins.
    """
    hi, lo = w, w
    while True:  # bracket: quarter the rate until the optimum fits
        lo /= 4
        fits = planner.solve(lo)
        if fits.checks <= budget:
            break
        if lo < w * 1e-9:  # the gap bounds alone cost more than the budget on this grid
            if regrid:
                # Its candidates crowd where jobs end, so no gap there is exactly max_gap: the
                # coarse grid of a low rate can space checks as widely as the bounds allow.
                return _within_budget(_Planner(planner.table, lo, planner.bounds), w, budget, regrid=False)
            return planner.plan(fits)  # the fewest checks the bounds allow
        hi = lo
    over = planner.solve(hi)
    for _ in range(_BISECTIONS):
        mid = math.sqrt(lo * hi)
        path = planner.solve(mid)
        if path.checks <= budget:
            lo, fits = mid, path
        else:
            hi, over = mid, path
    candidates = [_mixed(planner.plan(fits), planner.plan(over), budget)]
    followed = _follow_down(planner, over, hi, budget)
    if followed is not None:
        candidates.append(planner.plan(followed))
    return min(candidates, key=lambda p: p.expected_delay_s)


def _mixed(fits: Plan, over: Plan, budget: float) -> Plan:
    """`fits` for some jobs, `over` for the others, in the shares that spend the budget."""
    spread = over.expected_checks - fits.expected_checks
    share = (budget - fits.expected_checks) / spread if spread > 0 else 0.0
    if share <= 0.0:  # `fits` alone spends the budget (or is all the bounds allow)
        return fits
    if share >= 1.0:
        return over
    return _blend(fits, over, share)


def _blend(base: Plan, more: Plan, share: float) -> Plan:
    """`more` for `share` of the jobs, `base` for the rest: the expectations weighted alike."""
    return Plan(base.times, base.expected_checks + share * (more.expected_checks - base.expected_checks),
                base.expected_delay_s + share * (more.expected_delay_s - base.expected_delay_s),
                alternative=more.times, alternative_share=share)


def _follow_down(planner: _Planner, over: _Path, w: float, budget: float) -> _Path | None:
    """`over` (more checks than the budget, at rate w) followed to lower rates until it fits:
    regula falsi on log(rate) for the rate where its checks meet the budget."""
    hi, hi_over, lo = math.log(w), over.checks - budget, math.log(w)
    fit: _Path | None = None
    for _ in range(_FOLLOW_STEPS):  # step down until it fits
        lo -= _FOLLOW_STEP
        path = planner.follow(over, math.exp(lo))
        if path is None:
            return None
        if path.checks <= budget:
            fit, lo_over = path, path.checks - budget
            break
        hi, hi_over, over = lo, path.checks - budget, path
    if fit is None:
        return None
    for _ in range(_FIT_STEPS):
        if lo_over > -_FIT_SLACK:
            break
        mid = hi - hi_over * (hi - lo) / (hi_over - lo_over)  # where the line through both meets the budget
        mid = min(max(mid, lo + 0.1 * (hi - lo)), hi - 0.1 * (hi - lo))
        path = planner.follow(over, math.exp(mid))
        if path is None:
            break
        if path.checks <= budget:
            lo, lo_over, fit = mid, path.checks - budget, path
        else:
            hi, hi_over, over = mid, path.checks - budget, path
    return fit


def next_delay(times: tuple[float, ...], elapsed_s: float, min_gap_s: float, max_gap_s: float,
               first: bool = False, first_max_s: float | None = None) -> float:
    """Seconds from now (elapsed_s since submission) until the next check."""
    if first:
        upcoming = times[0] if times else max_gap_s
        return max(0.0, min(upcoming - elapsed_s, first_max_s if first_max_s is not None else max_gap_s))
    # A planned gap of exactly min_gap counts as reachable (the sums of floats differ in the last bit).
    upcoming = next((t for t in times if t >= elapsed_s + min_gap_s - _EPS), elapsed_s + max_gap_s)
    return min(max(upcoming - elapsed_s, min_gap_s), max_gap_s)
