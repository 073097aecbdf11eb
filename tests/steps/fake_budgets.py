"""BudgetLedger (gcp/budgets.py) in memory: the same arithmetic (core/budget.py) and usage
documents (gcp/budgets.add_usage), one lock standing for Firestore's transaction."""
from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from veorelay.core import budget, cost
from veorelay.core.clock import utcnow
from veorelay.core.job import TERMINAL
from veorelay.gcp.budgets import apply_increments, usage_id, usage_increments

from .fakes import FakeStore


class FakeLedger:
    def __init__(self, store: FakeStore):
        self.store = store
        self.budgets: dict[str, dict[str, Any]] = {}
        self.usage_docs: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def admit(self, job: dict[str, Any], limits: budget.BudgetLimits) -> float:
        usd = float((job.get("cost") or {}).get("estimated_usd") or 0.0)
        with self._lock:
            now = utcnow()
            state, used = budget.admit(self.budgets.get(job["client_id"]), now, usd, limits)
            day, month = budget.periods(now)
            self.store.create({**job, "budget": budget.Reservation(usd=usd, day=day, month=month)})  # Conflict: nothing reserved
            self.budgets[job["client_id"]] = dict(state)
            return used

    def settle(self, job_id: str, client_id: str | None = None) -> bool:
        with self._lock:
            job = self.store.get(job_id)
            if job is None or job.get("status") not in TERMINAL or job.get("settled_at"):
                return False
            now = utcnow()
            reservation = job.get("budget")
            if reservation:
                held = budget.Reservation(usd=reservation["usd"], day=reservation["day"], month=reservation["month"])
                self.budgets[job["client_id"]] = dict(budget.settle(self.budgets.get(job["client_id"]), now, held, cost.billed_usd(job)))
            day = budget.periods(now)[0]
            key = usage_id(job["client_id"], day)
            base = self.usage_docs.get(key) or {"client_id": job["client_id"], "day": day}
            self.usage_docs[key] = apply_increments(base, usage_increments(job, day))
            self.store.edit(job_id, settled_at=now, settle_due_at=None)
            return True

    def state(self, client_id: str) -> budget.BudgetState:
        return budget.current(self.budgets.get(client_id), utcnow())

    def usage(self, client_id: str, days: Sequence[str]) -> list[dict[str, Any]]:
        return [self.usage_docs[usage_id(client_id, d)] for d in days if usage_id(client_id, d) in self.usage_docs]
