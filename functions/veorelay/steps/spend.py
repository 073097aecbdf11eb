"""Spend control: a job's cost estimated and its client's budget reserved when it is admitted,
the reservation settled when it ends, and the usage report (GET /usage)."""
from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from veorelay.core import budget, cost
from veorelay.core.clock import utcnow
from veorelay.core.errors import ApiError, ErrorCode, TransientError
from veorelay.core.job import Job
from veorelay.core.views import iso_z
from veorelay.gcp import logs
from veorelay.runtime import Runtime

MAX_USAGE_DAYS = 92


def estimate_cost(rt: Runtime, job: Job) -> cost.Cost:
    caps = rt.providers[job["provider"]].capabilities
    return cost.estimate(caps.spec_for(job["model"]), job["request"])


def check_budget(rt: Runtime, job: Job) -> None:
    """Refuse early (BudgetExceeded) what the client's caps cannot take as they stand now."""
    limits = rt.settings.budgets.limits_for(job["client_id"])
    if limits.any and rt.budgets is not None:
        try:
            budget.admit(rt.budgets.state(job["client_id"]), utcnow(), float(job["cost"].get("estimated_usd") or 0.0), limits)
        except budget.BudgetExceeded as refused:
            _log_refusal(job, refused)
            raise


def _log_refusal(job: Job, refused: budget.BudgetExceeded) -> None:
    logs.info("budget refused", client_id=job["client_id"], cap=refused.cap, limit=refused.limit,
              left=round(refused.left, 6), model=job["model"], provider=job["provider"])


def admit(rt: Runtime, job: Job) -> None:
    """Record the new job: under its client's budget when it has caps (one transaction with the
    reservation), else as it is. BudgetExceeded (429): nothing is written."""
    limits = rt.settings.budgets.limits_for(job["client_id"])
    if not limits.any:
        rt.store.create(job)
        return
    if rt.budgets is None:
        raise ApiError(500, ErrorCode.INTERNAL, "budgets are configured but this deployment keeps no ledger")
    try:
        used = rt.budgets.admit(job, limits)
    except budget.BudgetExceeded as refused:
        _log_refusal(job, refused)
        raise
    logs.info("budget reserved", client_id=job["client_id"], used_fraction=used,
              reserved_usd=(job.get("cost") or {}).get("estimated_usd"))


def settle(rt: Runtime, job: Job) -> None:
    """Best effort at the end of a job: a failure leaves it unsettled for the sweep to settle."""
    if rt.budgets is None:
        return
    try:
        rt.budgets.settle(job["id"], job.get("client_id") if job.get("budget") else None)
    except TransientError as exc:
        logs.warning("budget not settled yet; the sweep settles it", job_id=job["id"], error_message=exc.message)


def usage_report(rt: Runtime, client_id: str, since: str | None, until: str | None) -> dict[str, Any]:
    """The client's spend and job counts per day (UTC), with totals by model and provider, and its
    budget as it stands. Days are those jobs ended on; `since`/`until` are YYYY-MM-DD, inclusive
    (default: this month so far)."""
    today = utcnow().date()
    first = _day("from", since) if since else today.replace(day=1)
    last = _day("to", until) if until else today
    if last < first:
        raise ApiError(400, ErrorCode.INVALID_REQUEST, "to must not be before from", "to")
    if (last - first).days + 1 > MAX_USAGE_DAYS:
        raise ApiError(400, ErrorCode.INVALID_REQUEST, f"a report covers at most {MAX_USAGE_DAYS} days", "from")
    days = [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]
    found = rt.budgets.usage(client_id, days) if rt.budgets is not None else []
    totals: dict[str, Any] = {"jobs": 0, "billed_jobs": 0, "usd": 0.0, "by_model": {}, "by_provider": {}}
    for doc in found:
        totals["jobs"] += doc.get("jobs", 0)
        totals["billed_jobs"] += doc.get("billed_jobs", 0)
        totals["usd"] = round(totals["usd"] + doc.get("usd", 0.0), 6)
        for key in ("by_model", "by_provider"):
            for name, entry in (doc.get(key) or {}).items():
                into = totals[key].setdefault(name, {"jobs": 0, "billed_jobs": 0, "usd": 0.0})
                into["jobs"] += entry.get("jobs", 0)
                into["billed_jobs"] += entry.get("billed_jobs", 0)
                into["usd"] = round(into["usd"] + entry.get("usd", 0.0), 6)
    limits = rt.settings.budgets.limits_for(client_id)
    state = rt.budgets.state(client_id) if rt.budgets is not None else budget.current(None, utcnow())
    return {
        "client_id": client_id, "from": first.isoformat(), "to": last.isoformat(), "currency": cost.CURRENCY,
        "total": totals,
        "days": [{k: doc.get(k) for k in ("day", "jobs", "billed_jobs", "usd", "by_model", "by_provider", "by_status")} for doc in found],
        "budget": {**limits.to_dict(), "day_usd": state["day_usd"], "month_usd": state["month_usd"], "in_flight": state["in_flight"],
                   "daily_resets_at": _resets("daily"),
                   "monthly_resets_at": _resets("monthly")},
    }


def _day(field: str, text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ApiError(400, ErrorCode.INVALID_REQUEST, f"{field} must be a date, YYYY-MM-DD", field) from None


def _resets(cap: str) -> str | None:
    moment = budget.resets_at(cap, utcnow())
    return iso_z(moment) if moment else None
