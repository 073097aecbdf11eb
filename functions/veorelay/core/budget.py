"""Budgets per client, pure arithmetic: a day's and a month's spend (UTC) and the jobs in flight,
against the client's caps. Admission reserves a job's estimated cost; when the job ends the
reservation is settled: kept if it was billed, given back if not, and the job leaves the flight.

The state is one small document per client (gcp/budgets.py keeps it in Firestore and changes it
in a transaction with the job's own creation, so a burst never overshoots a cap)."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict

from veorelay.core.errors import ApiError, ErrorCode
from veorelay.core.views import iso_z

CAPS = ("daily", "monthly", "in_flight")


@dataclass(frozen=True)
class BudgetLimits:
    """A client's caps; None: no cap of that kind."""

    daily_usd: float | None = None
    monthly_usd: float | None = None
    max_in_flight: int | None = None

    @property
    def any(self) -> bool:
        return any(v is not None for v in (self.daily_usd, self.monthly_usd, self.max_in_flight))

    def to_dict(self) -> dict[str, Any]:
        return {"daily_usd": self.daily_usd, "monthly_usd": self.monthly_usd, "max_in_flight": self.max_in_flight}


class BudgetState(TypedDict):
    day: str  # 2026-12-01 (UTC): the day day_usd counts
    day_usd: float  # reserved and billed spend of that day
    month: str  # 2026-12
    month_usd: float
    in_flight: int  # jobs admitted and not yet ended


class Reservation(TypedDict):
    usd: float  # the estimate reserved (0 when the catalog lists no price)
    day: str
    month: str


def periods(now: datetime) -> tuple[str, str]:
    now = now.astimezone(UTC)
    return now.strftime("%Y-%m-%d"), now.strftime("%Y-%m")


def resets_at(cap: str, now: datetime) -> datetime | None:
    """When a refused cap frees itself: the next UTC midnight, the next month; None for in-flight
    (it frees when one of the client's jobs ends)."""
    now = now.astimezone(UTC)
    if cap == "daily":
        return datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)
    if cap == "monthly":
        return datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=UTC)
    return None


def current(state: Mapping[str, Any] | None, now: datetime) -> BudgetState:
    """The state as of `now`: a new day or month starts from zero spend; jobs in flight stay."""
    day, month = periods(now)
    state = state or {}
    return BudgetState(
        day=day, day_usd=float(state.get("day_usd") or 0.0) if state.get("day") == day else 0.0,
        month=month, month_usd=float(state.get("month_usd") or 0.0) if state.get("month") == month else 0.0,
        in_flight=max(int(state.get("in_flight") or 0), 0),
    )


class BudgetExceeded(ApiError):
    """429 budget_exceeded, naming the cap, what is left of it and when it resets."""

    def __init__(self, cap: str, limit: float, left: float, resets: datetime | None):
        if cap == "in_flight":
            message = f"the client's max_in_flight cap of {int(limit)} jobs is reached; it frees when one of its jobs ends"
        else:
            message = (f"the client's {cap} budget of {limit:.2f} USD would be exceeded: {max(left, 0.0):.2f} USD left, "
                       f"resets at {iso_z(resets) if resets else 'never'}")
        super().__init__(429, ErrorCode.BUDGET_EXCEEDED, message, "budget")
        self.cap, self.limit, self.left, self.resets = cap, limit, max(left, 0.0), resets

    def retry_after_s(self, now: datetime) -> int:
        return max(1, int((self.resets - now).total_seconds()) + 1) if self.resets else 60

    def details(self) -> dict[str, Any]:
        return {"cap": self.cap, "limit": self.limit, "left": round(self.left, 6),
                "resets_at": iso_z(self.resets) if self.resets else None}


def admit(state: Mapping[str, Any] | None, now: datetime, usd: float, limits: BudgetLimits) -> tuple[BudgetState, float]:
    """The state with this job admitted and the highest fraction of a cap now used; raises
    BudgetExceeded (the first cap it would break) and changes nothing."""
    state_now = current(state, now)
    if limits.max_in_flight is not None and state_now["in_flight"] + 1 > limits.max_in_flight:
        raise BudgetExceeded("in_flight", limits.max_in_flight, limits.max_in_flight - state_now["in_flight"], None)
    for cap, spent, limit in (("daily", state_now["day_usd"], limits.daily_usd), ("monthly", state_now["month_usd"], limits.monthly_usd)):
        if limit is not None and spent + usd > limit + 1e-9:
            raise BudgetExceeded(cap, limit, limit - spent, resets_at(cap, now))
    admitted = BudgetState(day=state_now["day"], day_usd=round(state_now["day_usd"] + usd, 6), month=state_now["month"],
                           month_usd=round(state_now["month_usd"] + usd, 6), in_flight=state_now["in_flight"] + 1)
    return admitted, used_fraction(admitted, limits)


def used_fraction(state: BudgetState, limits: BudgetLimits) -> float:
    fractions = [state["day_usd"] / limits.daily_usd if limits.daily_usd else 0.0,
                 state["month_usd"] / limits.monthly_usd if limits.monthly_usd else 0.0,
                 state["in_flight"] / limits.max_in_flight if limits.max_in_flight else 0.0]
    return round(max(fractions), 4)


def settle(state: Mapping[str, Any] | None, now: datetime, reservation: Reservation, billed_usd: float) -> BudgetState:
    """The state once the job ended: out of the flight; its reservation replaced by what it was
    billed (nothing when not billed), in the day and month it was reserved in, if still current."""
    state_now = current(state, now)
    change = billed_usd - float(reservation["usd"])
    day_usd = state_now["day_usd"] + change if reservation["day"] == state_now["day"] else state_now["day_usd"]
    month_usd = state_now["month_usd"] + change if reservation["month"] == state_now["month"] else state_now["month_usd"]
    return BudgetState(day=state_now["day"], day_usd=round(max(day_usd, 0.0), 6), month=state_now["month"],
                       month_usd=round(max(month_usd, 0.0), 6), in_flight=max(state_now["in_flight"] - 1, 0))
