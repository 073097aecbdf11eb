"""What finished jobs taught us about each provider+model's generation time, in Firestore.

Write budget: one document write per succeeded job, with no read: the job's weights are
added to histogram bins with Firestore increments (`poll_schedule.Durations.observation`).
Documents are sharded by job id, so a burst of jobs of one model does not exceed a
document's sustained write rate (about one a second), and bucketed by ISO week: reading
this week and the last one lets the schedule follow a provider that got slower or faster.

Reads: an instance reads the 2 x SHARDS documents of a provider+model once per
`stats_ttl_s` and keeps the resulting plan in memory.

Completion events (the push backstop, core/poll_plan.py push_plan): the same write of a job
that asked for push also counts, under `push.h<hour since the epoch>`, the job (`jobs`) and
whether its event came before a check found it done (`first`); an event that comes after a
check found its job done adds `after` (one write, at most once per job); the plan of such jobs
follows how reliably the events come.
"""
from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from google.cloud import firestore

from veorelay.config import PollSettings
from veorelay.core import poll_plan as ps
from veorelay.gcp import logs
from veorelay.gcp.deadlines import FIRESTORE_CALL_S, FIRESTORE_RETRY

COLLECTION = "poll_stats"
SHARDS = 8
EXPIRE_DAYS = 21  # two weeks are read; a third keeps a margin


def week_of(now: datetime) -> str:
    year, week, _ = now.isocalendar()
    return f"{year}w{week:02d}"


def doc_id(provider: str, model: str, week: str, shard: int) -> str:
    return f"{provider}|{model}|{week}|{shard}"


def shard_of(job_id: str) -> int:
    return int(hashlib.sha256(job_id.encode()).hexdigest()[:8], 16) % SHARDS


def bin_field(i: int) -> str:
    return f"b{i:03d}"


class DurationStats:
    """Learned durations and the check plan they give, per provider+model, cached."""

    def __init__(self, db: firestore.Client | None, poll: PollSettings, horizon_s: float,
                 clock: Callable[[], float] = time.monotonic, now: Callable[[], datetime] | None = None):
        self._db = db
        self._poll = poll
        self._horizon_s = horizon_s
        self._clock = clock
        self._now = now or (lambda: datetime.now(UTC))
        self._cache: dict[tuple[str, str], tuple[float, ps.Durations, ps.Plan]] = {}
        self._push: dict[tuple[str, str], tuple[float, float, ps.Plan]] = {}  # (fetched, reliability, plan)
        self._counts: dict[tuple[str, str], dict[int, tuple[float, float, float]]] = {}  # push counts, as last read
        self._lock = threading.Lock()

    def prior(self, model: str) -> ps.Durations:
        return ps.Durations.from_prior(ps.prior_for(model, self._poll.prior_median_s, self._poll.prior_sigma))

    def current(self, provider: str, model: str) -> tuple[ps.Durations, ps.Plan]:
        key = (provider, model)
        with self._lock:
            hit = self._cache.get(key)
        if hit and self._clock() - hit[0] < self._poll.stats_ttl_s:
            return hit[1], hit[2]
        try:
            learned = self._learned(provider, model)
        except Exception as exc:
            logs.warning("learned generation times unavailable; planning from the prior", error=type(exc).__name__)
            learned = {}
        durations = self.prior(model).plus(learned)
        p = self._poll
        plan = ps.plan(durations, p.delay_cost_checks, p.max_checks, p.min_delay_s, p.max_delay_s,
                       p.initial_delay_s, self._horizon_s)
        with self._lock:
            self._cache[key] = (self._clock(), durations, plan)
        return durations, plan

    def plan(self, provider: str, model: str, push: bool = False) -> ps.Plan:
        """The checks of a job; `push`: of one whose provider was asked to push its end."""
        if not push:
            return self.current(provider, model)[1]
        key = (provider, model)
        with self._lock:
            hit = self._push.get(key)
        if hit and self._clock() - hit[0] < self._poll.stats_ttl_s:
            return hit[2]
        durations, _ = self.current(provider, model)  # (re)reads the push counts too, when stale
        r = self.reliability(provider, model)
        p = self._poll
        plan = ps.push_plan(durations, r, p.delay_cost_checks, p.max_checks, p.min_delay_s, p.max_delay_s,
                            p.initial_delay_s, self._horizon_s)
        with self._lock:
            self._push[key] = (self._clock(), r, plan)
        return plan

    def reliability(self, provider: str, model: str) -> float:
        """How reliably this provider+model's events came (core/poll_plan.py push_reliability)."""
        with self._lock:
            counts = dict(self._counts.get((provider, model)) or {})
        return ps.push_reliability(counts, int(self._now().timestamp() // 3600))

    def record(self, provider: str, model: str, job_id: str, after_s: float, at_s: float,
               pushed: bool | None = None) -> None:
        """A job of this provider+model ended in (after_s, at_s] seconds after submission;
        `pushed` (jobs that asked for push): whether its event came before a check saw it (if not,
        the event may still come: event_came_after_check)."""
        if self._db is None:
            return
        durations, _ = self.current(provider, model)
        weights = durations.observation(after_s, at_s)
        now = self._now()
        week = week_of(now)
        ref = self._db.collection(COLLECTION).document(doc_id(provider, model, week, shard_of(job_id)))
        push: dict[str, Any] = {}
        if pushed is not None:
            push = {"push": {f"h{int(now.timestamp() // 3600)}": {
                "jobs": firestore.Increment(1), "first": firestore.Increment(1 if pushed else 0)}}}
        ref.set({
            **push,
            "provider": provider, "model": model, "week": week, "updated_at": now,
            "expire_at": now + timedelta(days=EXPIRE_DAYS),  # for a Firestore TTL policy: old weeks go
            "jobs": firestore.Increment(1),
            "bins": {bin_field(i): firestore.Increment(w) for i, w in weights.items()},
        }, merge=True, timeout=FIRESTORE_CALL_S, retry=None)  # increments: never applied twice

    def event_came_after_check(self, provider: str, model: str, job_id: str, detected_at: datetime) -> None:
        """The event of a job a check had found done (at `detected_at`, when record() counted it)
        came after all: counted in the same document and hour as the job, once per job (the
        caller marks the job first, steps/events_in.py)."""
        if self._db is None:
            return
        ref = self._db.collection(COLLECTION).document(doc_id(provider, model, week_of(detected_at), shard_of(job_id)))
        ref.set({"push": {f"h{int(detected_at.timestamp() // 3600)}": {"after": firestore.Increment(1)}}},
                merge=True, timeout=FIRESTORE_CALL_S, retry=None)

    def _learned(self, provider: str, model: str) -> dict[int, float]:
        if self._db is None:
            return {}
        now = self._now()
        weeks = [week_of(now), week_of(now - timedelta(days=7))]
        refs = [self._db.collection(COLLECTION).document(doc_id(provider, model, w, s)) for w in weeks for s in range(SHARDS)]
        learned: dict[int, float] = {}
        counts: dict[int, tuple[float, float, float]] = {}
        for snap in self._db.get_all(refs, timeout=FIRESTORE_CALL_S, retry=FIRESTORE_RETRY):
            if not snap.exists:
                continue
            doc = snap.to_dict() or {}
            for hour, row in (doc.get("push") or {}).items():
                if isinstance(hour, str) and hour[1:].isdigit() and isinstance(row, dict):
                    seen = counts.get(int(hour[1:]), (0.0, 0.0, 0.0))
                    row_counts = [row.get(name) for name in ("jobs", "first", "after")]
                    numbers = [float(v) if isinstance(v, (int, float)) else 0.0 for v in row_counts]
                    counts[int(hour[1:])] = (seen[0] + numbers[0], seen[1] + numbers[1], seen[2] + numbers[2])
            bins: dict[str, Any] = doc.get("bins") or {}
            for name, weight in bins.items():
                if name.startswith("b") and name[1:].isdigit() and isinstance(weight, (int, float)):
                    i = int(name[1:])
                    learned[i] = learned.get(i, 0.0) + float(weight)
        with self._lock:
            self._counts[(provider, model)] = counts
        return learned
